//! Graph's error responses: `{"error": {"code", "message", "innerError": {...}}}`
//! (learn.microsoft.com/graph/errors), with `Retry-After` for throttling.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer with Graph's body shape.
pub(crate) fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": uuid::Uuid::new_v4().to_string(),
                "client-request-id": uuid::Uuid::new_v4().to_string(),
            }
        }
    });
    (status, axum::Json(body)).into_response()
}

/// 429 or 503 with `Retry-After` in whole seconds.
pub(crate) fn throttled(status: u16, retry_after: Duration) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    let (code, message) = if status == StatusCode::SERVICE_UNAVAILABLE {
        (
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        )
    } else {
        (
            "ApplicationThrottled",
            "Application is over its resource limit.",
        )
    };
    let mut response = graph_error(status, code, message);
    let secs = retry_after
        .as_secs()
        .max(u64::from(retry_after.subsec_nanos() > 0));
    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

pub(crate) fn unauthorized(message: &str) -> Response {
    let mut response = graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"\", error=\"invalid_token\""),
    );
    response
}

pub(crate) fn access_denied() -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        "ErrorAccessDenied",
        "Access is denied. Check credentials and try again.",
    )
}

pub(crate) fn user_not_found(user: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "ErrorInvalidUser",
        &format!("The requested user '{user}' is invalid."),
    )
}

pub(crate) fn item_not_found() -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

pub(crate) fn bad_request(code: &str, message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, code, message)
}
