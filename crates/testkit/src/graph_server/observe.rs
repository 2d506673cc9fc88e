//! What happens around every API request (batched ones included): it is counted by
//! endpoint, a canned fault (throttling on demand) is answered, and the requests
//! in flight for one mailbox are counted — beyond Outlook's limit of 4 at once the
//! request gets 429, as Exchange Online answers `MailboxConcurrency`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::Shared;
use super::errors::throttled;

/// Decrements the mailbox's in-flight count when the request ends (or is dropped).
struct InFlight {
    shared: Arc<Shared>,
    user: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(n) = st.in_flight.get_mut(&self.user) {
            *n = n.saturating_sub(1);
        }
    }
}

/// The `{user}` segment of `/v1.0/users/{user}/...`, resolved to the user's id.
fn user_of(shared: &Shared, path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1.0/users/")?;
    let raw = percent_decode(rest.split('/').next()?);
    let st = shared.lock();
    Some(
        st.user_key(&raw)
            .unwrap_or_else(|| raw.to_ascii_lowercase()),
    )
}

/// `%XX` escapes of a path segment decoded (invalid ones kept as they are).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) async fn observe(
    State(shared): State<Arc<Shared>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = format!(
        "{} {}",
        request.method(),
        matched
            .as_ref()
            .map_or(request.uri().path(), |m| m.as_str())
    );
    let immutable = request
        .headers()
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.replace(' ', "").contains("IdType=\"ImmutableId\""));
    let user = user_of(&shared, request.uri().path());
    let latency;
    let guard = {
        let mut st = shared.lock();
        *st.counts.entry(endpoint).or_default() += 1;
        if !immutable && user.is_some() {
            st.without_immutable_ids += 1;
        }
        if let Some(fault) = st.faults.pop_front() {
            return throttled(fault.status, fault.retry_after);
        }
        latency = st.latency;
        match user {
            Some(user) => {
                let limit = st.mailbox_concurrency;
                let n = st.in_flight.entry(user.clone()).or_default();
                if *n >= limit {
                    return throttled(429, Duration::from_secs(1));
                }
                *n += 1;
                let now = *n;
                let max = st.max_in_flight.entry(user.clone()).or_default();
                *max = (*max).max(now);
                Some(InFlight {
                    shared: shared.clone(),
                    user,
                })
            }
            None => None,
        }
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = next.run(request).await;
    drop(guard);
    response
}

/// Counts HTTP round trips (a `$batch` is one, whatever it holds).
pub(crate) async fn round_trip(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    shared.lock().round_trips += 1;
    next.run(request).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_percent_decoded() {
        let cases = [
            ("bob%40example.org", "bob@example.org"),
            ("AAMk%2Ba%3D", "AAMk+a="),
            ("plain", "plain"),
            ("bad%zz%4", "bad%zz%4"),
        ];
        for (raw, expected) in cases {
            assert_eq!(super::percent_decode(raw), expected, "{raw}");
        }
    }
}
