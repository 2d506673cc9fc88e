//! What a page answers when it cannot show itself.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailbridge_store::StoreError;
use serde_json::json;

use super::api::ApiFailure;
use super::render::render_page;

#[derive(Debug)]
pub enum WebError {
    /// Not signed in (or the session ended): sign in, then come back to `next`.
    SignIn { next: String },
    /// Go elsewhere first (a system administrator picks an organization).
    Redirect(String),
    /// The API refused or failed.
    Api(ApiFailure),
    /// The store failed underneath the session machinery.
    Store(String),
    /// A template failed to render: a bug, shown as an internal error.
    Template(String),
}

impl From<ApiFailure> for WebError {
    fn from(f: ApiFailure) -> Self {
        WebError::Api(f)
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        WebError::Store(e.to_string())
    }
}

/// A redirect that works for plain navigation and for htmx requests alike.
pub fn see_other(to: &str) -> Response {
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert("hx-redirect", v);
    }
    r
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            WebError::SignIn { next } => {
                let to = format!(
                    "/sign-in?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                return see_other(&to);
            }
            WebError::Redirect(to) => return see_other(&to),
            WebError::Api(f) if f.status == 401 => {
                return see_other("/sign-in");
            }
            WebError::Api(f) => {
                let status =
                    StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let title = match f.status {
                    403 => "You do not have permission",
                    404 => "Not found",
                    s if s >= 500 => "Something went wrong",
                    _ => "The request was refused",
                };
                (status, title, f.message)
            }
            WebError::Store(e) => {
                tracing::error!(error = %e, "web admin: the store failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database is not answering",
                    "Try again in a moment; the server log has the details.".to_owned(),
                )
            }
            WebError::Template(e) => {
                tracing::error!(error = %e, "web admin: a page failed to render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "This page could not be shown; the server log has the details.".to_owned(),
                )
            }
        };
        let body = render_page(
            "error.html",
            json!({"status": status.as_u16(), "title": title, "message": message}),
        )
        .unwrap_or_else(|_| format!("<h1>{}</h1>", status.as_u16()));
        (status, axum::response::Html(body)).into_response()
    }
}
