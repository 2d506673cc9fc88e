//! The error envelope: every 4xx and 5xx answer is
//! `{"error": {"code", "message", "field", "details"}}`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailbridge_domain::FieldError;
use mailbridge_store::StoreError;
use serde::Serialize;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub details: Vec<FieldError>,
}

/// The body of an error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code such as `validation_failed` or `not_found`.
    pub code: String,
    /// What went wrong and what would be valid.
    pub message: String,
    /// The input field at fault, when there is one.
    pub field: Option<String>,
    /// Every invalid field, when validation found several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            details: Vec::new(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such record in this organization",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A single invalid field.
    pub fn field(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            details: vec![FieldError::new(field.clone(), message.clone())],
            message,
            field: Some(field),
        }
    }

    /// Every invalid field; the first one is named in `field` and `message`.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let first = errors
            .first()
            .cloned()
            .unwrap_or_else(|| FieldError::new("", "invalid input"));
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            message: first.message,
            field: Some(first.field),
            details: errors,
        }
    }

    /// Fails with every error found, if any.
    pub fn check(errors: Vec<FieldError>) -> Result<(), ApiError> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Self::validation(errors))
        }
    }

    pub fn required(field: &str) -> Self {
        Self::field("missing_field", field, format!("{field} is required"))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Conflict { field, message } => ApiError {
                status: StatusCode::CONFLICT,
                code: "conflict",
                message,
                field,
                details: Vec::new(),
            },
            StoreError::Invalid(errors) => ApiError::validation(errors),
            other => {
                // The cause goes to the log (it never holds a secret: queries bind
                // values, and sealed values are not printed); the client gets a code.
                tracing::error!(error = %other, "store failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the store failed; see the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
                details: self.details,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// The answer for a path that names no resource.
pub async fn not_found_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such path; see /api/v1/openapi.json",
    )
}

/// Wraps the framework's own error answers (405, malformed path or query, body too
/// large) in the JSON envelope, keeping their text as the message.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this method is not offered on this path; see /api/v1/openapi.json".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is larger than 16 MiB".to_owned(),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "timeout",
            "the request took longer than 60 seconds".to_owned(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json".to_owned(),
        ),
        s if s.is_server_error() => ("internal", "internal error; see the server log".to_owned()),
        _ => (
            "bad_request",
            if text.is_empty() {
                "the request is malformed".to_owned()
            } else {
                text
            },
        ),
    };
    let mut out = ApiError::new(status, code, message).into_response();
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}
