//! Email Configuration Settings: the organization's defaults for new mailboxes,
//! approval requirements, tracking tokens, correlation, attachment and message
//! size limits, read and saved through the API (`email-settings`) with its field
//! messages.

use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::api::ApiFailure;
use super::error::{WebError, see_other};
use super::form_values::{Field, Kind, Values, conditions, from_json, parse_form, shown, to_json};
use super::render::html;
use super::session::Session;

pub fn routes() -> Router<WebState> {
    Router::new().route("/settings", get(page).post(save))
}

const TOKEN: &str = "tracking_token_enabled=true";

/// Every field of the API's settings input.
const FIELDS: &[Field] = &[
    Field::new("default_profile_id", Kind::Optional),
    Field::new("default_incoming_method", Kind::Choice),
    Field::new("default_outgoing_method", Kind::Choice),
    Field::new("default_act_method", Kind::Choice),
    Field::new("process_email_for_approved_users_only", Kind::Bool),
    Field::new("process_email_for_approved_queues_only", Kind::Bool),
    Field::new("tracking_token_enabled", Kind::Bool),
    Field::new("tracking_token_prefix", Kind::Text).when(TOKEN),
    Field::new("tracking_token_base_number", Kind::Int).when(TOKEN),
    Field::new("tracking_token_user_digits", Kind::Int).when(TOKEN),
    Field::new("tracking_token_counter_digits", Kind::Int).when(TOKEN),
    Field::new("similarity_correlation", Kind::Bool),
    Field::new("email_between_users", Kind::Choice),
    Field::new("max_attachment_size_kb", Kind::Int),
    Field::new("max_message_size_kb", Kind::Int),
];

/// The labels of Dynamics' Email settings.
const LABELS: &[(&str, &str)] = &[
    ("default_profile_id", "Server Profile"),
    ("default_incoming_method", "Incoming Email"),
    ("default_outgoing_method", "Outgoing Email"),
    ("default_act_method", "Appointments, Contacts, and Tasks"),
    (
        "process_email_for_approved_users_only",
        "Process Emails Only for Approved Users",
    ),
    (
        "process_email_for_approved_queues_only",
        "Process Emails Only for Approved Queues",
    ),
    ("tracking_token_enabled", "Use Tracking Token"),
    ("tracking_token_prefix", "Tracking Token Prefix"),
    ("tracking_token_base_number", "Tracking Token Base Number"),
    (
        "tracking_token_user_digits",
        "Number of Digits for User Numbers",
    ),
    (
        "tracking_token_counter_digits",
        "Number of Digits for Incremental Message Counter",
    ),
    (
        "similarity_correlation",
        "Use Correlation by Subject and Recipients",
    ),
    ("email_between_users", "Track Email Sent Between Users"),
    (
        "max_attachment_size_kb",
        "Maximum File Size for Attachments (KB)",
    ),
    ("max_message_size_kb", "Maximum Message Size (KB)"),
];

const DELIVERY_METHODS: &[(&str, &str)] = &[
    ("none", "None"),
    ("server_side_sync", "Server-Side Synchronization"),
    ("router", "Email Router (mail pushed to mailbridge)"),
];

const BETWEEN_USERS: &[(&str, &str)] = &[
    ("one_activity", "As one email activity"),
    (
        "two_activities",
        "As two email activities (one for the sender, one for the recipient)",
    ),
];

fn pairs(table: &[(&str, &str)]) -> Value {
    Value::Array(table.iter().map(|(k, t)| json!([k, t])).collect())
}

/// A token as the saved settings write it, for the sender number 7 and message 42.
fn token_example(settings: &Value) -> Option<String> {
    if settings["tracking_token_enabled"] != true {
        return None;
    }
    let prefix = settings["tracking_token_prefix"].as_str()?;
    let base = settings["tracking_token_base_number"].as_i64()?;
    let uw = settings["tracking_token_user_digits"].as_u64()?.clamp(1, 9) as usize;
    let cw = settings["tracking_token_counter_digits"]
        .as_u64()?
        .clamp(1, 9) as usize;
    Some(format!("{prefix}{base}{:0uw$}{:0cw$}", 7, 42))
}

#[derive(Deserialize, Default)]
struct Notice {
    saved: Option<String>,
}

async fn render(
    s: &Session,
    values: Values,
    stored: &Value,
    error: Option<ApiFailure>,
    saved: bool,
) -> Result<Response, WebError> {
    let profiles: Value = s
        .api
        .get(&format!("{}?limit=500", s.org_api("email-server-profiles")))
        .await?;
    let mut profile_options = vec![json!(["", "— None —"])];
    for p in profiles["items"].as_array().into_iter().flatten() {
        profile_options.push(json!([p["id"], p["name"]]));
    }
    let errors = error
        .as_ref()
        .map(ApiFailure::field_messages)
        .unwrap_or_else(|| json!({}));
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = html(
        "settings.html",
        json!({
            "layout": s.layout("settings", "Email Configuration Settings"),
            "f": {
                "v": values,
                "shown": shown(FIELDS, &values),
                "when": conditions(FIELDS),
                "errors": errors,
            },
            "error": error,
            "saved": saved,
            "labels": LABELS.iter().map(|(k, t)| (k.to_string(), *t)).collect::<std::collections::BTreeMap<_, _>>(),
            "profile_options": profile_options,
            "delivery_methods": pairs(DELIVERY_METHODS),
            "between_users": pairs(BETWEEN_USERS),
            "token_example": token_example(stored),
        }),
    )?;
    Ok((status, page).into_response())
}

async fn page(s: Session, Query(n): Query<Notice>) -> Result<Response, WebError> {
    let stored: Value = s.api.get(&s.org_api("email-settings")).await?;
    render(
        &s,
        from_json(FIELDS, &stored),
        &stored,
        None,
        n.saved.is_some(),
    )
    .await
}

async fn save(s: Session, body: Bytes) -> Result<Response, WebError> {
    let values = parse_form(&body);
    let body = Value::Object(to_json(FIELDS, &values));
    let saved: Result<Value, ApiFailure> = s.api.patch(&s.org_api("email-settings"), &body).await;
    match saved {
        Ok(_) => Ok(see_other("/settings?saved=1")),
        Err(f) if matches!(f.status, 400 | 409 | 422) => {
            let stored: Value = s.api.get(&s.org_api("email-settings")).await?;
            render(&s, values, &stored, Some(f), false).await
        }
        Err(f) => Err(f.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_settings_form_becomes_the_api_body() {
        let v = form(&[
            ("default_profile_id", ""),
            ("default_incoming_method", "server_side_sync"),
            ("default_outgoing_method", "none"),
            ("default_act_method", "none"),
            ("process_email_for_approved_users_only", "true"),
            ("process_email_for_approved_queues_only", "false"),
            ("tracking_token_enabled", "true"),
            ("tracking_token_prefix", "CRM:"),
            ("tracking_token_base_number", "0"),
            ("tracking_token_user_digits", "3"),
            ("tracking_token_counter_digits", "12"),
            ("similarity_correlation", "false"),
            ("email_between_users", "one_activity"),
            ("max_attachment_size_kb", "5120"),
            ("max_message_size_kb", "25600"),
        ]);
        assert_eq!(
            Value::Object(to_json(FIELDS, &v)),
            json!({
                "default_profile_id": null,
                "default_incoming_method": "server_side_sync",
                "default_outgoing_method": "none",
                "default_act_method": "none",
                "process_email_for_approved_users_only": true,
                "process_email_for_approved_queues_only": false,
                "tracking_token_enabled": true,
                "tracking_token_prefix": "CRM:",
                "tracking_token_base_number": 0,
                "tracking_token_user_digits": 3,
                "tracking_token_counter_digits": 12,
                "similarity_correlation": false,
                "email_between_users": "one_activity",
                "max_attachment_size_kb": 5120,
                "max_message_size_kb": 25600,
            })
        );
        // Without tracking tokens, their hidden settings are not sent.
        let mut v = v;
        v.insert("tracking_token_enabled".into(), "false".into());
        let body = to_json(FIELDS, &v);
        assert_eq!(body["tracking_token_enabled"], false);
        assert!(
            !body
                .keys()
                .any(|k| k.starts_with("tracking_token_") && k != "tracking_token_enabled")
        );
    }

    #[test]
    fn the_token_example_follows_the_saved_format() {
        let s = json!({
            "tracking_token_enabled": true, "tracking_token_prefix": "CRM:",
            "tracking_token_base_number": 0, "tracking_token_user_digits": 3,
            "tracking_token_counter_digits": 4,
        });
        assert_eq!(token_example(&s).as_deref(), Some("CRM:00070042"));
        let off = json!({"tracking_token_enabled": false});
        assert_eq!(token_example(&off), None);
    }

    #[test]
    fn every_field_has_a_label() {
        for f in FIELDS {
            assert!(LABELS.iter().any(|(k, _)| *k == f.name), "{}", f.name);
        }
    }
}
