//! The REST API called in process with a session's token: one request through
//! the same router that serves `/api/v1`, so pages get the API's answers exactly.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt;

/// The API as one signed-in session sees it.
#[derive(Clone)]
pub struct Api {
    router: Router,
    token: String,
}

/// An error answer of the API, as the pages show it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct ApiFailure {
    #[serde(skip)]
    pub status: u16,
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub details: Vec<FieldMessage>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct FieldMessage {
    pub field: String,
    pub message: String,
}

impl ApiFailure {
    fn internal(message: impl Into<String>) -> Self {
        ApiFailure {
            status: 500,
            code: "internal".into(),
            message: message.into(),
            field: None,
            details: Vec::new(),
        }
    }

    /// Each invalid field's message by field name, for forms.
    pub fn field_messages(&self) -> Value {
        let mut map = serde_json::Map::new();
        for d in &self.details {
            map.insert(d.field.clone(), Value::String(d.message.clone()));
        }
        if let Some(f) = &self.field {
            map.entry(f.clone())
                .or_insert_with(|| Value::String(self.message.clone()));
        }
        Value::Object(map)
    }
}

#[derive(Deserialize)]
struct Envelope {
    error: ApiFailure,
}

impl Api {
    pub fn new(router: Router, token: String) -> Self {
        Api { router, token }
    }

    /// `GET path` (with its query string) into `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiFailure> {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ApiFailure> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ApiFailure> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<(), ApiFailure> {
        self.call::<Value>(Method::DELETE, path, None)
            .await
            .map(drop)
    }

    /// `GET path` as bytes with the answer's content type (file downloads).
    pub async fn get_raw(&self, path: &str) -> Result<(String, Vec<u8>), ApiFailure> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Body::empty())
            .map_err(|e| ApiFailure::internal(format!("bad request path {path}: {e}")))?;
        let response = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
            .await
            .map_err(|e| ApiFailure::internal(format!("reading the API's answer: {e}")))?;
        if status.is_success() {
            return Ok((content_type, bytes.to_vec()));
        }
        let mut failure = serde_json::from_slice::<Envelope>(&bytes)
            .map(|e| e.error)
            .unwrap_or_else(|_| ApiFailure::internal(String::from_utf8_lossy(&bytes)));
        failure.status = status.as_u16();
        Err(failure)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ApiFailure> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(v).expect("a JSON value serializes"))
            }
            None => Body::empty(),
        };
        let req = req
            .body(body)
            .map_err(|e| ApiFailure::internal(format!("bad request path {path}: {e}")))?;
        let response = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
            .await
            .map_err(|e| ApiFailure::internal(format!("reading the API's answer: {e}")))?;
        if status.is_success() {
            let bytes: &[u8] = if status == StatusCode::NO_CONTENT || bytes.is_empty() {
                b"null"
            } else {
                &bytes
            };
            return serde_json::from_slice(bytes).map_err(|e| {
                ApiFailure::internal(format!("the API's answer to {path} did not parse: {e}"))
            });
        }
        let mut failure = serde_json::from_slice::<Envelope>(&bytes)
            .map(|e| e.error)
            .unwrap_or_else(|_| ApiFailure::internal(String::from_utf8_lossy(&bytes)));
        failure.status = status.as_u16();
        Err(failure)
    }
}
