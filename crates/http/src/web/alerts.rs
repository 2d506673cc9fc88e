//! The alerts wall: every alert of the organization, newest first, filterable by
//! scope and severity, each with its fix; dismissing one removes it.

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::error::WebError;
use super::render::html;
use super::session::Session;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/alerts", get(wall))
        .route("/alerts/{id}/dismiss", post(dismiss))
}

#[derive(Deserialize, Default)]
struct Filters {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    cursor: String,
}

/// The query string of the API call for these filters.
fn api_query(f: &Filters) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("limit", "50");
    for (k, v) in [
        ("scope", &f.scope),
        ("severity", &f.severity),
        ("cursor", &f.cursor),
    ] {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    q.finish()
}

async fn wall(s: Session, Query(f): Query<Filters>) -> Result<Html<String>, WebError> {
    let alerts: Value = s
        .api
        .get(&format!("{}?{}", s.org_api("alerts"), api_query(&f)))
        .await?;
    html(
        "alerts.html",
        json!({
            "layout": s.layout("alerts", "Alerts"),
            "alerts": alerts["items"],
            "next_cursor": alerts["next_cursor"],
            "filters": {"scope": f.scope, "severity": f.severity},
            "scopes": ["profile", "mailbox", "item"],
            "severities": ["error", "warning", "information"],
        }),
    )
}

async fn dismiss(s: Session, Path(id): Path<String>) -> Result<Response, WebError> {
    s.api.delete(&s.org_api(&format!("alerts/{id}"))).await?;
    // htmx swaps the row for nothing.
    Ok(Html(String::new()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_api_query() {
        let f = Filters {
            scope: "mailbox".into(),
            severity: String::new(),
            cursor: "abc".into(),
        };
        assert_eq!(api_query(&f), "limit=50&scope=mailbox&cursor=abc");
    }
}
