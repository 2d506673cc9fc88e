//! JSON batching (learn.microsoft.com/graph/json-batching): up to 20 requests per
//! `POST /$batch`, answered each with its own status. Requests inside a batch are
//! throttled one by one, so the throttled ones are sent again, in a new batch,
//! after the longest `Retry-After` among them.

use std::collections::BTreeMap;
use std::time::Duration;

use mailbridge_domain::error_model::SyncError;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Body, GraphClient, PREFER_IMMUTABLE_IDS, Request};
use super::errors::{Failed, GraphErrorBody, classify};
use super::throttle::{is_retryable, plan_retry};

/// Graph's limit of requests per batch.
pub const MAX_BATCH: usize = 20;

/// One request of a batch, relative to the version root (`/users/...`).
#[derive(Debug, Clone)]
pub(crate) struct BatchItem {
    pub method: &'static str,
    pub url: String,
    pub body: Option<Value>,
}

/// One answer of a batch.
#[derive(Debug, Clone)]
pub(crate) struct BatchAnswer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Value,
}

impl BatchAnswer {
    /// `Ok(body)` for a success, else the classified error.
    pub(crate) fn check(self, f: &Failed<'_>) -> Result<Value, SyncError> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        let body: GraphErrorBody =
            super::errors::parse_error_body(self.body.to_string().as_bytes());
        Err(classify(self.status, &body, self.retry_after, f))
    }
}

fn request_json(index: usize, item: &BatchItem) -> Value {
    let mut r = json!({
        "id": index.to_string(),
        "method": item.method,
        "url": item.url,
        "headers": { "Prefer": PREFER_IMMUTABLE_IDS },
    });
    if let Some(body) = &item.body {
        r["body"] = body.clone();
        r["headers"]["Content-Type"] = json!("application/json");
    }
    r
}

/// Reads the `responses` of a batch by the index each request had.
fn parse_answers(body: &[u8]) -> Result<BTreeMap<usize, BatchAnswer>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the batch answer is not JSON: {e}"))?;
    let responses = v
        .get("responses")
        .and_then(Value::as_array)
        .ok_or("the batch answer has no responses")?;
    let mut out = BTreeMap::new();
    for r in responses {
        let index = r
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| id.parse::<usize>().ok())
            .ok_or("a batch response has no id of ours")?;
        let status = r
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .ok_or("a batch response has no status")?;
        let retry_after = r
            .pointer("/headers/Retry-After")
            .or_else(|| r.pointer("/headers/retry-after"))
            .and_then(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            })
            .and_then(|s| super::throttle::parse_retry_after(&s, chrono::Utc::now()));
        let body = r.get("body").cloned().unwrap_or(Value::Null);
        out.insert(
            index,
            BatchAnswer {
                status,
                retry_after,
                body,
            },
        );
    }
    Ok(out)
}

/// Runs `items` in batches of 20 for `mailbox`, retrying throttled ones; the answers
/// come back in the order of `items`.
///
/// # Errors
/// When a batch itself fails (transport, authentication, an unreadable answer).
pub(crate) async fn run(
    client: &GraphClient,
    mailbox: &str,
    items: &[BatchItem],
    what: &str,
) -> Result<Vec<BatchAnswer>, SyncError> {
    let mut answers: BTreeMap<usize, BatchAnswer> = BTreeMap::new();
    let mut pending: Vec<usize> = (0..items.len()).collect();
    let policy = client.config().retry;
    let mut attempt = 0;
    while !pending.is_empty() {
        attempt += 1;
        let mut throttled = Vec::new();
        for chunk in pending.chunks(MAX_BATCH) {
            let requests: Vec<Value> = chunk.iter().map(|&i| request_json(i, &items[i])).collect();
            let request = Request {
                method: Method::POST,
                target: "/$batch".to_owned(),
                body: Body::Json(json!({ "requests": requests })),
                prefer: None,
                if_match: None,
            };
            let f = Failed { what, mailbox };
            let response = client.send(mailbox, &request, what).await?.check(&f)?;
            let mut got = parse_answers(&response.body).map_err(|why| {
                crate::errors::error(
                    crate::errors::TRANSIENT,
                    mailbridge_domain::error_model::ErrorScope::Mailbox,
                    format!("Microsoft Graph answered a batch unexpectedly: {why}"),
                    "It is retried; report this if it persists",
                )
            })?;
            for &i in chunk {
                match got.remove(&i) {
                    Some(a) if is_retryable(a.status) => throttled.push((i, a)),
                    Some(a) => {
                        answers.insert(i, a);
                    }
                    None => throttled.push((
                        i,
                        BatchAnswer {
                            status: 503,
                            retry_after: None,
                            body: Value::Null,
                        },
                    )),
                }
            }
        }
        if throttled.is_empty() {
            break;
        }
        let longest = throttled.iter().filter_map(|(_, a)| a.retry_after).max();
        match plan_retry(429, longest, attempt, policy) {
            Some(wait) => {
                tokio::time::sleep(wait).await;
                pending = throttled.into_iter().map(|(i, _)| i).collect();
            }
            None => {
                for (i, a) in throttled {
                    answers.insert(i, a);
                }
                break;
            }
        }
    }
    Ok((0..items.len())
        .map(|i| {
            answers.remove(&i).unwrap_or(BatchAnswer {
                status: 503,
                retry_after: None,
                body: Value::Null,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_our_ids_with_their_retry_after() {
        let body = br#"{"responses":[
            {"id":"1","status":429,"headers":{"Retry-After":"3"},"body":{"error":{"code":"ApplicationThrottled","message":"m"}}},
            {"id":"0","status":201,"headers":{"Content-Type":"application/json"},"body":{"id":"m1"}}]}"#;
        let answers = parse_answers(body).expect("answers");
        assert_eq!(answers[&0].status, 201);
        assert_eq!(answers[&0].body["id"], "m1");
        assert_eq!(answers[&1].status, 429);
        assert_eq!(answers[&1].retry_after, Some(Duration::from_secs(3)));
        assert!(parse_answers(br#"{"responses":[{"id":"x","status":200}]}"#).is_err());
    }

    #[test]
    fn requests_carry_the_immutable_id_preference_and_a_content_type_with_a_body() {
        let item = BatchItem {
            method: "POST",
            url: "/users/u/messages/m/move".to_owned(),
            body: Some(json!({"destinationId": "f"})),
        };
        let r = request_json(7, &item);
        assert_eq!(r["id"], "7");
        assert_eq!(r["headers"]["Prefer"], PREFER_IMMUTABLE_IDS);
        assert_eq!(r["headers"]["Content-Type"], "application/json");
        let get = request_json(
            0,
            &BatchItem {
                method: "GET",
                url: "/x".to_owned(),
                body: None,
            },
        );
        assert!(get.get("body").is_none());
    }
}
