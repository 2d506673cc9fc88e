//! Tracked emails: the list (newest first, searchable, filterable by direction,
//! correlation method and mailbox) and one email's page with its parties and what
//! each resolved to, the regarding record, how it was correlated, and the decision
//! trail that tracked it.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::Html;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::error::WebError;
use super::render::html;
use super::session::Session;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/emails", get(list))
        .route("/emails/{id}", get(detail))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    correlation_method: String,
    #[serde(default)]
    mailbox_id: String,
    #[serde(default)]
    cursor: String,
}

const DIRECTIONS: &[&str] = &["incoming", "outgoing"];
const CORRELATIONS: &[(&str, &str)] = &[
    ("in_reply_to", "In-Reply-To / References"),
    ("tracking_token", "Tracking token"),
    ("conversation", "Conversation (Thread-Index)"),
    ("similarity", "Smart matching"),
    ("none", "None"),
];

/// The API query for the list's filters (unknown choices are dropped).
fn api_query(f: &ListQuery) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("limit", "50")
        .append_pair("order", "newest_first");
    if !f.q.trim().is_empty() {
        q.append_pair("search", f.q.trim());
    }
    if DIRECTIONS.contains(&f.direction.as_str()) {
        q.append_pair("direction", &f.direction);
    }
    if CORRELATIONS.iter().any(|(k, _)| *k == f.correlation_method) {
        q.append_pair("correlation_method", &f.correlation_method);
    }
    for (k, v) in [("mailbox_id", &f.mailbox_id), ("cursor", &f.cursor)] {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    q.finish()
}

/// The page's own query string without the cursor.
fn page_query(f: &ListQuery) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("q", f.q.trim()),
        ("direction", f.direction.as_str()),
        ("correlation_method", f.correlation_method.as_str()),
        ("mailbox_id", f.mailbox_id.as_str()),
    ] {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    q.finish()
}

/// The API collection of a record type, and the field holding its name.
fn record_api(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "user" => ("users", "full_name"),
        "queue" => ("queues", "name"),
        "contact" => ("contacts", "name"),
        "account" => ("accounts", "name"),
        "lead" => ("leads", "name"),
        "email" => ("emails", "subject"),
        _ => return None,
    })
}

/// Names of records, looked up once each through the API.
struct Names<'a> {
    s: &'a Session,
    cache: HashMap<(String, String), Option<String>>,
}

impl<'a> Names<'a> {
    fn new(s: &'a Session) -> Self {
        Names {
            s,
            cache: HashMap::new(),
        }
    }

    async fn of(&mut self, kind: &str, id: &str) -> Option<String> {
        let key = (kind.to_owned(), id.to_owned());
        if let Some(n) = self.cache.get(&key) {
            return n.clone();
        }
        let name = match kind {
            "mailbox" => self
                .s
                .api
                .get::<Value>(&self.s.org_api(&format!("mailboxes/{id}")))
                .await
                .ok()
                .and_then(|v| v["name"].as_str().map(str::to_owned)),
            _ => match record_api(kind) {
                Some((collection, field)) => self
                    .s
                    .api
                    .get::<Value>(&self.s.org_api(&format!("{collection}/{id}")))
                    .await
                    .ok()
                    .and_then(|v| v[field].as_str().map(str::to_owned)),
                None => None,
            },
        };
        self.cache.insert(key, name.clone());
        name
    }
}

/// Where a record's page is in the web admin, when it has one.
fn record_href(kind: &str, id: &str) -> Option<String> {
    match kind {
        "email" => Some(format!("/emails/{id}")),
        "mailbox" => Some(format!("/mailboxes/{id}")),
        _ => None,
    }
}

async fn list(s: Session, Query(f): Query<ListQuery>) -> Result<Html<String>, WebError> {
    let page: Value = s
        .api
        .get(&format!("{}?{}", s.org_api("emails"), api_query(&f)))
        .await?;
    let mut names = Names::new(&s);
    let mut items = page["items"].as_array().cloned().unwrap_or_default();
    for e in &mut items {
        let mailbox = match e["mailbox_id"].as_str() {
            Some(m) => names.of("mailbox", m).await,
            None => None,
        };
        e["mailbox_name"] = json!(mailbox);
        let regarding = match (e["regarding_type"].as_str(), e["regarding_id"].as_str()) {
            (Some(k), Some(id)) => names.of(k, id).await,
            _ => None,
        };
        e["regarding_name"] = json!(regarding);
        let parties = e["parties"].as_array().cloned().unwrap_or_default();
        let from = parties.iter().find(|p| p["role"] == "from").cloned();
        let to: Vec<Value> = parties
            .iter()
            .filter(|p| p["role"] == "to")
            .cloned()
            .collect();
        e["from"] = from.map(|p| p["address"].clone()).unwrap_or(Value::Null);
        e["to_first"] = to
            .first()
            .map(|p| p["address"].clone())
            .unwrap_or(Value::Null);
        e["to_more"] = json!(to.len().saturating_sub(1));
        e["from_parts"] = json!(wrap_at(e["from"].as_str().unwrap_or_default()));
        e["to_parts"] = json!(wrap_at(e["to_first"].as_str().unwrap_or_default()));
        e["when"] = if e["received_at"].is_string() {
            e["received_at"].clone()
        } else if e["sent_at"].is_string() {
            e["sent_at"].clone()
        } else {
            e["created_at"].clone()
        };
    }
    let mailbox_name = if f.mailbox_id.is_empty() {
        None
    } else {
        names.of("mailbox", &f.mailbox_id).await
    };
    html(
        "emails.html",
        json!({
            "layout": s.layout("emails", "Tracked emails"),
            "emails": items,
            "next_cursor": page["next_cursor"],
            "paged": !f.cursor.is_empty(),
            "filters": {"q": f.q, "direction": f.direction, "correlation_method": f.correlation_method,
                        "mailbox_id": f.mailbox_id, "mailbox_name": mailbox_name},
            "query": page_query(&f),
            "directions": DIRECTIONS,
            "correlations": CORRELATIONS,
        }),
    )
}

/// An address split before its `@`, where a narrow column may wrap it.
fn wrap_at(address: &str) -> [&str; 2] {
    match address.find('@') {
        Some(i) => [&address[..i], &address[i..]],
        None => [address, ""],
    }
}

/// A sentence on how an email was correlated.
fn correlation_sentence(method: Option<&str>) -> &'static str {
    match method {
        Some("in_reply_to") => {
            "Its In-Reply-To or References header named the Message-ID of an email already tracked, so it joined that conversation and its regarding record."
        }
        Some("tracking_token") => {
            "Its subject carried the tracking token of an email sent from mailbridge."
        }
        Some("conversation") => {
            "Its conversation headers (Thread-Index) matched a tracked conversation."
        }
        Some("similarity") => {
            "Smart matching: its normalized subject and at least two addresses matched a tracked email."
        }
        _ => "It did not continue a tracked conversation; it was tracked on its own.",
    }
}

async fn detail(s: Session, Path(id): Path<String>) -> Result<Html<String>, WebError> {
    let mut e: Value = s.api.get(&s.org_api(&format!("emails/{id}"))).await?;
    let decisions: Value = s
        .api
        .get(&format!(
            "{}?limit=50",
            s.org_api(&format!("emails/{id}/decisions"))
        ))
        .await?;
    let mut names = Names::new(&s);
    let mut parties = e["parties"].as_array().cloned().unwrap_or_default();
    for p in &mut parties {
        if let (Some(k), Some(pid)) = (p["party_type"].as_str(), p["party_id"].as_str()) {
            let (k, pid) = (k.to_owned(), pid.to_owned());
            p["resolved_name"] = json!(names.of(&k, &pid).await);
        } else {
            p["resolved_name"] = Value::Null;
        }
    }
    e["parties"] = json!(parties);
    let regarding = match (e["regarding_type"].as_str(), e["regarding_id"].as_str()) {
        (Some(k), Some(rid)) => {
            let (k, rid) = (k.to_owned(), rid.to_owned());
            json!({"type": k, "id": rid, "name": names.of(&k, &rid).await, "href": record_href(&k, &rid)})
        }
        _ => Value::Null,
    };
    let mailbox_name = match e["mailbox_id"].as_str() {
        Some(m) => {
            let m = m.to_owned();
            names.of("mailbox", &m).await
        }
        None => None,
    };
    let mut trail = decisions["items"].as_array().cloned().unwrap_or_default();
    for d in &mut trail {
        let m = d["mailbox_id"].as_str().unwrap_or_default().to_owned();
        d["mailbox_name"] = json!(names.of("mailbox", &m).await);
    }
    let correlated = match e["decision"]["correlated_email_id"].as_str() {
        Some(c) => {
            let c = c.to_owned();
            json!({"id": c, "subject": names.of("email", &c).await})
        }
        None => Value::Null,
    };
    let title = e["subject"].as_str().unwrap_or("Email").to_owned();
    html(
        "email.html",
        json!({
            "layout": s.layout("emails", &title),
            "e": e,
            "regarding": regarding,
            "mailbox_name": mailbox_name,
            "trail": trail,
            "correlated": correlated,
            "correlation_sentence": correlation_sentence(e["correlation_method"].as_str()),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_api_query() {
        let f = ListQuery {
            q: " invoice ".into(),
            direction: "incoming".into(),
            correlation_method: "bogus".into(),
            ..Default::default()
        };
        assert_eq!(
            api_query(&f),
            "limit=50&order=newest_first&search=invoice&direction=incoming"
        );
        assert_eq!(
            page_query(&f),
            "q=invoice&direction=incoming&correlation_method=bogus"
        );
        assert_eq!(record_api("lead"), Some(("leads", "name")));
        assert_eq!(record_api("nothing"), None);
        assert_eq!(wrap_at("carl@fabrikam.com"), ["carl", "@fabrikam.com"]);
        assert_eq!(wrap_at("nobody"), ["nobody", ""]);
    }
}
