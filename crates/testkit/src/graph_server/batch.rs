//! `POST /$batch` (learn.microsoft.com/graph/json-batching): up to 20 requests in
//! one round trip, each answered by its `id` with its own status, headers and body;
//! a request whose `dependsOn` failed gets 424. Each request runs through the same
//! router as a lone one (so it is authorized, counted and can be throttled on its
//! own); they run one after the other, which the order-free protocol allows.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use tower::ServiceExt as _;

use super::Shared;
use super::auth::{Need, authorize};
use super::errors::bad_request;

/// Graph's limit of requests in one batch.
pub const MAX_BATCH: usize = 20;

pub(crate) async fn batch(
    api: Router,
    shared: Arc<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&shared.check, &headers, Need::Any) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("BadRequest", "Unable to read JSON request payload.");
    };
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return bad_request(
            "BadRequest",
            "The batch request must have a requests property.",
        );
    };
    if requests.len() > MAX_BATCH {
        return bad_request(
            "BadRequest",
            &format!("The number of requests in a batch must not exceed {MAX_BATCH}."),
        );
    }
    let mut ids = std::collections::HashSet::new();
    for r in requests {
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        if id.is_empty() || !ids.insert(id) {
            return bad_request("BadRequest", "Each request of a batch needs a unique id.");
        }
    }
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::new();
    for r in requests {
        let id = r.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
        let failed_dependency = r
            .get("dependsOn")
            .and_then(Value::as_array)
            .is_some_and(|deps| {
                deps.iter().filter_map(Value::as_str).any(|d| {
                    statuses
                        .get(&d.to_ascii_lowercase())
                        .is_none_or(|s| *s >= 400)
                })
            });
        let answer = if failed_dependency {
            json!({
                "id": id, "status": 424,
                "body": { "error": { "code": "FailedDependency", "message": "A request this one depends on failed." } }
            })
        } else {
            shared.lock().batched += 1;
            let response = match inner_request(r, &headers) {
                Ok(request) => match api.clone().oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                Err(response) => response,
            };
            to_answer(&id, response).await
        };
        let status = answer.get("status").and_then(Value::as_u64).unwrap_or(500);
        statuses.insert(
            id.to_ascii_lowercase(),
            u16::try_from(status).unwrap_or(500),
        );
        responses.push(answer);
    }
    axum::Json(json!({ "responses": responses })).into_response()
}

/// The HTTP request one batch entry stands for, with the batch's `Authorization`.
fn inner_request(r: &Value, outer: &HeaderMap) -> Result<Request<Body>, Response> {
    let method = r
        .get("method")
        .and_then(Value::as_str)
        .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
        .ok_or_else(|| bad_request("BadRequest", "A batch request has no valid method."))?;
    let url = r.get("url").and_then(Value::as_str).unwrap_or("");
    let sep = if url.starts_with('/') { "" } else { "/" };
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("/v1.0{sep}{url}"));
    let mut content_type = None;
    if let Some(Value::Object(h)) = r.get("headers") {
        for (k, v) in h {
            if let Some(v) = v.as_str() {
                if k.eq_ignore_ascii_case("content-type") {
                    content_type = Some(v.to_ascii_lowercase());
                }
                builder = builder.header(k.as_str(), v);
            }
        }
    }
    if let Some(auth) = outer.get(header::AUTHORIZATION) {
        builder = builder.header(header::AUTHORIZATION, auth);
    }
    let body = match r.get("body") {
        None | Some(Value::Null) => Body::empty(),
        Some(Value::String(s)) if !content_type.as_deref().unwrap_or("").contains("json") => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .unwrap_or_else(|_| s.clone().into_bytes());
            Body::from(bytes)
        }
        Some(v) => {
            if content_type.is_none() {
                return Err(bad_request(
                    "BadRequest",
                    "A batch request with a body needs a Content-Type header.",
                ));
            }
            Body::from(serde_json::to_vec(v).unwrap_or_default())
        }
    };
    builder
        .body(body)
        .map_err(|_| bad_request("BadRequest", "A batch request has an invalid url."))
}

/// One entry of the `responses` array.
async fn to_answer(id: &str, response: Response) -> Value {
    let status = response.status();
    let mut headers = Map::new();
    for name in [header::CONTENT_TYPE, header::RETRY_AFTER, header::LOCATION] {
        if let Some(v) = response.headers().get(&name).and_then(|v| v.to_str().ok()) {
            headers.insert(name.to_string(), json!(v));
        }
    }
    let is_json = headers
        .get("content-type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.contains("json"));
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap_or_default();
    let mut answer = json!({ "id": id, "status": status.as_u16(), "headers": headers });
    if !bytes.is_empty() {
        answer["body"] = if is_json {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        } else {
            json!(base64::engine::general_purpose::STANDARD.encode(&bytes))
        };
    }
    answer
}
