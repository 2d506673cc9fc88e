//! Request bodies: JSON read with the path of any error, so that a wrong type,
//! an unknown field or a missing one is answered with the field's name.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::ApiError;

/// A JSON body whose errors name their field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.body_text(),
            )
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses a JSON document into `T`, naming the field of the first error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body is not valid JSON: {inner}"),
            );
        }
        let message = inner.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        let quoted = message.split('`').nth(1).unwrap_or_default().to_owned();
        let parent = if path == "." {
            String::new()
        } else {
            path.clone()
        };
        let join = |name: &str| {
            if parent.is_empty() || parent.ends_with(name) {
                name.to_owned()
            } else {
                format!("{parent}.{name}")
            }
        };
        if message.starts_with("unknown field") {
            let field = join(&quoted);
            ApiError::field(
                "unknown_field",
                &field,
                format!(
                    "`{field}` is not a field of this resource; {}",
                    message
                        .split_once(", ")
                        .map_or("remove it", |(_, rest)| rest)
                ),
            )
        } else if message.starts_with("missing field") {
            let field = join(&quoted);
            ApiError::field("missing_field", &field, format!("{field} is required"))
        } else {
            ApiError::field("invalid_value", &path, format!("{path}: {message}"))
        }
    })
}

/// Reads a field that may be absent (keep), `null` (clear) or a value (set):
/// use with `#[serde(default, deserialize_with = "nullable")]` on `Option<Option<T>>`.
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Applies a patch value to a field.
pub fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *target = v;
    }
}

/// Query parameters whose errors name their parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                let quoted = message.split('`').nth(1).unwrap_or_default().to_owned();
                if message.starts_with("unknown field") {
                    ApiError::field(
                        "unknown_parameter",
                        &quoted,
                        format!(
                            "`{quoted}` is not a parameter of this list; {}",
                            message
                                .split_once(", ")
                                .map_or("remove it", |(_, rest)| rest)
                        ),
                    )
                } else {
                    ApiError::field("invalid_value", &path, format!("{path}: {message}"))
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        name: String,
        #[serde(default)]
        limit: Option<u32>,
        #[serde(default, deserialize_with = "nullable")]
        note: Option<Option<String>>,
    }

    fn err(json: &str) -> ApiError {
        parse::<Input>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"name": "a", "colour": 1}"#,
                "unknown_field",
                Some("colour"),
            ),
            (r#"{"limit": 1}"#, "missing_field", Some("name")),
            (
                r#"{"name": "a", "limit": "ten"}"#,
                "invalid_value",
                Some("limit"),
            ),
            (
                r#"{"name": "a", "limit": -1}"#,
                "invalid_value",
                Some("limit"),
            ),
            (r#"{"name": "a""#, "invalid_json", None),
        ];
        for (json, code, field) in cases {
            let e = err(json);
            assert_eq!(
                (e.code, e.field.as_deref()),
                (code, field),
                "{json}: {}",
                e.message
            );
        }
        assert!(
            err(r#"{"name": "a", "colour": 1}"#)
                .message
                .contains("expected one of")
        );
    }

    #[test]
    fn nullable_tells_absent_from_null() {
        let absent: Input = parse(br#"{"name": "a"}"#).unwrap();
        let null: Input = parse(br#"{"name": "a", "note": null}"#).unwrap();
        let set: Input = parse(br#"{"name": "a", "note": "x"}"#).unwrap();
        assert_eq!(absent.note, None);
        assert_eq!(null.note, Some(None));
        assert_eq!(set.note, Some(Some("x".into())));
    }
}
