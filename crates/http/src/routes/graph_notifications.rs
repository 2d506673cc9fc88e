//! `/api/v1/graph/notifications/{org_id}`: where Microsoft Graph posts the change
//! notifications and lifecycle events of an organization's Exchange Online
//! subscriptions (docs/EXCHANGE-ONLINE.md, "Change notifications").
//!
//! Graph sends no Authorization header: each item's `clientState`, checked
//! against its subscription's secret, is the authentication. Items that do not
//! match, and subscriptions the organization does not have, are answered 202 and
//! ignored (counted and logged, never the secret). The validation handshake
//! (`?validationToken=`) is answered at once: 200, `text/plain`, the token
//! decoded. A notification is answered 202 before it is acted on; the mailbox it
//! names is then made due now, and the engine woken (as the mail-events endpoint
//! does for mail servers).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// The `validationToken` of a query string, decoded; `None` when absent.
fn validation_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "validationToken")
        .map(|(_, v)| v.into_owned())
}

/// Receives Microsoft Graph's change notifications and lifecycle events for the
/// organization's Exchange Online subscriptions, and answers its validation
/// handshake. Called by Microsoft Graph, without a bearer token.
#[utoipa::path(post, path = "/api/v1/graph/notifications/{org_id}", tag = "graph-notifications",
    security(()),
    params(("org_id" = String, Path, description = "The organization whose subscriptions these are"),
        ("validationToken" = Option<String>, Query, description = "Graph's validation handshake: answered with the token as text/plain")),
    request_body(content = String, content_type = "application/json",
        description = "Graph's notification post: {\"value\": [...]}, each item with subscriptionId and clientState"),
    responses((status = 200, content_type = "text/plain", body = String, description = "The validation token"),
        (status = 202, description = "Accepted (items that do not authenticate are ignored)"),
        (status = 400, body = ErrorBody)))]
pub async fn receive(
    State(s): State<AppState>,
    Path(org_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Some(token) = validation_token(query.as_deref()) {
        return Ok((
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                ),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            token,
        )
            .into_response());
    }
    // Only the shape is checked before answering; the store is read afterwards.
    mailbridge_connectors::graph::parse_notifications(&body, "")
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e))?;
    tokio::spawn(async move {
        match mailbridge_engine::graph::notifications::receive(&s.store, &org_id, &body).await {
            Ok(r) => {
                if !r.woken.is_empty() {
                    s.wake.notify_one();
                    if let Some(m) = &s.engine_metrics {
                        m.push_wakeup(mailbridge_engine::metrics::WakeSource::GraphNotification);
                    }
                }
                tracing::debug!(org = %org_id, woken = r.woken.len(), rejected = r.rejected,
                    unknown = r.unknown, lifecycle = r.lifecycle, "graph notifications");
            }
            Err(e) => {
                tracing::warn!(org = %org_id, error = %e, "graph notifications not handled (polling catches up)");
            }
        }
    });
    Ok(StatusCode::ACCEPTED.into_response())
}

#[cfg(test)]
mod tests {
    use super::validation_token;

    #[test]
    fn the_validation_token_is_decoded() {
        let cases = [
            (
                Some("validationToken=Validation%3A+Testing%20client%20%26%20more"),
                Some("Validation: Testing client & more"),
            ),
            (Some("a=1&validationToken=x%2By"), Some("x+y")),
            (Some("validationToken="), Some("")),
            (Some("other=1"), None),
            (None, None),
        ];
        for (query, token) in cases {
            assert_eq!(validation_token(query).as_deref(), token, "{query:?}");
        }
    }
}
