//! Webhooks: the organization's subscriptions, each with its delivery log. The
//! signing secret is shown once, on the page that answers its creation or rotation.

use axum::extract::{Path, Query};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mailbridge_domain::WebhookEventType;
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::error::{WebError, see_other};
use super::render::html;
use super::session::Session;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{id}", get(detail).post(save))
        .route("/webhooks/{id}/rotate-secret", post(rotate))
        .route("/webhooks/{id}/test", post(send_test))
        .route("/webhooks/{id}/delete", post(delete))
        .route("/webhooks/{id}/deliveries/{event_id}/retry", post(retry))
}

/// The event types a subscription may choose, with what each means.
fn event_choices() -> Value {
    let about = |t: WebhookEventType| match t {
        WebhookEventType::EmailTracked => "an email was tracked by incoming synchronization",
        WebhookEventType::EmailSent => "an outgoing email was sent",
        WebhookEventType::EmailFailed => "an outgoing email gave up",
        WebhookEventType::MailboxStatusChanged => "a mailbox's incoming or outgoing status changed",
        WebhookEventType::AlertRaised => "an alert was raised",
        WebhookEventType::ActItemChanged => "an appointment, contact or task changed",
    };
    WebhookEventType::ALL
        .iter()
        .map(|t| json!({"value": t.as_str(), "about": about(*t)}))
        .collect()
}

/// Reads the form from its pairs: `event_types` repeats once per ticked box.
fn form_body(pairs: &[(String, String)]) -> Value {
    let get = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let events: Vec<&str> = pairs
        .iter()
        .filter(|(n, _)| n == "event_types")
        .map(|(_, v)| v.as_str())
        .collect();
    let description = get("description");
    json!({
        "url": get("url"),
        "description": if description.is_empty() { Value::Null } else { Value::String(description) },
        "event_types": events,
        "enabled": get("enabled") == "true",
    })
}

async fn list(s: Session) -> Result<Html<String>, WebError> {
    let subs: Value = s.api.get(&s.org_api("webhooks?limit=200")).await?;
    html(
        "webhooks.html",
        json!({
            "layout": s.layout("webhooks", "Webhooks"),
            "subscriptions": subs["items"],
            "events": event_choices(),
            "form": {"url": "", "description": "", "event_types": [], "enabled": true},
            "errors": {},
            "error": null,
        }),
    )
}

async fn create(
    s: Session,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let body = form_body(&pairs);
    match s.api.post::<Value>(&s.org_api("webhooks"), &body).await {
        Ok(created) => {
            Ok(secret_page(&s, &created, &created["secret"], "created")?.into_response())
        }
        Err(e) if e.status == 422 || e.status == 400 => {
            let subs: Value = s.api.get(&s.org_api("webhooks?limit=200")).await?;
            Ok(html(
                "webhooks.html",
                json!({
                    "layout": s.layout("webhooks", "Webhooks"),
                    "subscriptions": subs["items"],
                    "events": event_choices(),
                    "form": body,
                    "errors": e.field_messages(),
                    "error": e,
                }),
            )?
            .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The subscription page with its new secret, shown this once.
fn secret_page(
    s: &Session,
    sub: &Value,
    secret: &Value,
    what: &str,
) -> Result<Html<String>, WebError> {
    html(
        "webhook_secret.html",
        json!({
            "layout": s.layout("webhooks", "Webhook secret"),
            "subscription": sub,
            "secret": secret,
            "what": what,
        }),
    )
}

#[derive(Deserialize, Default)]
struct LogQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    notice: String,
}

async fn detail(
    s: Session,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Html<String>, WebError> {
    let sub: Value = s.api.get(&s.org_api(&format!("webhooks/{id}"))).await?;
    detail_page(&s, &id, sub, &q, json!({}), Value::Null).await
}

/// The delivery log's API query for the page's filter and cursor.
fn log_query(q: &LogQuery) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", "25");
    if !q.status.is_empty() {
        query.append_pair("status", &q.status);
    }
    if !q.cursor.is_empty() {
        query.append_pair("cursor", &q.cursor);
    }
    query.finish()
}

async fn detail_page(
    s: &Session,
    id: &str,
    form: Value,
    q: &LogQuery,
    errors: Value,
    error: Value,
) -> Result<Html<String>, WebError> {
    let sub: Value = s.api.get(&s.org_api(&format!("webhooks/{id}"))).await?;
    let query = log_query(q);
    let log: Value = s
        .api
        .get(&s.org_api(&format!("webhooks/{id}/deliveries?{query}")))
        .await?;
    html(
        "webhook.html",
        json!({
            "layout": s.layout("webhooks", "Webhook"),
            "subscription": sub,
            "form": form,
            "events": event_choices(),
            "deliveries": log["items"],
            "next_cursor": log["next_cursor"],
            "status": q.status,
            "statuses": ["pending", "delivering", "delivered", "failed"],
            "notice": q.notice,
            "errors": errors,
            "error": error,
        }),
    )
}

async fn save(
    s: Session,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let body = form_body(&pairs);
    match s
        .api
        .patch::<Value>(&s.org_api(&format!("webhooks/{id}")), &body)
        .await
    {
        Ok(_) => Ok(see_other(&format!("/webhooks/{id}?notice=saved"))),
        Err(e) if e.status == 422 || e.status == 400 => Ok(detail_page(
            &s,
            &id,
            body,
            &LogQuery::default(),
            e.field_messages(),
            serde_json::to_value(&e).unwrap_or_default(),
        )
        .await?
        .into_response()),
        Err(e) => Err(e.into()),
    }
}

async fn rotate(s: Session, Path(id): Path<String>) -> Result<Response, WebError> {
    let rotated: Value = s
        .api
        .post(
            &s.org_api(&format!("webhooks/{id}/rotate-secret")),
            &json!({}),
        )
        .await?;
    let sub: Value = s.api.get(&s.org_api(&format!("webhooks/{id}"))).await?;
    Ok(secret_page(&s, &sub, &rotated["secret"], "rotated")?.into_response())
}

async fn send_test(s: Session, Path(id): Path<String>) -> Result<Response, WebError> {
    let _: Value = s
        .api
        .post(&s.org_api(&format!("webhooks/{id}/test")), &json!({}))
        .await?;
    Ok(see_other(&format!("/webhooks/{id}?notice=test")))
}

async fn delete(s: Session, Path(id): Path<String>) -> Result<Response, WebError> {
    s.api.delete(&s.org_api(&format!("webhooks/{id}"))).await?;
    Ok(see_other("/webhooks"))
}

async fn retry(
    s: Session,
    Path((id, event_id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let _: Value = s
        .api
        .post(
            &s.org_api(&format!("webhooks/{id}/deliveries/{event_id}/retry")),
            &json!({}),
        )
        .await?;
    Ok(see_other(&format!("/webhooks/{id}?notice=retry")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_form_becomes_the_api_body() {
        let body = form_body(&pairs(&[
            ("_csrf", "x"),
            ("url", " https://crm.example/hooks "),
            ("description", ""),
            ("event_types", "email.tracked"),
            ("event_types", "alert.raised"),
            ("enabled", "false"),
            ("enabled", "true"),
        ]));
        assert_eq!(
            body,
            json!({"url": "https://crm.example/hooks", "description": null,
                   "event_types": ["email.tracked", "alert.raised"], "enabled": true})
        );
        let body = form_body(&pairs(&[("url", "x"), ("enabled", "false")]));
        assert_eq!(body["event_types"], json!([]));
        assert_eq!(body["enabled"], json!(false));
    }

    #[test]
    fn every_event_type_is_offered_with_its_meaning() {
        let choices = event_choices();
        assert_eq!(
            choices.as_array().unwrap().len(),
            WebhookEventType::ALL.len()
        );
        assert!(
            choices
                .as_array()
                .unwrap()
                .iter()
                .all(|c| !c["about"].as_str().unwrap().is_empty())
        );
    }
}
