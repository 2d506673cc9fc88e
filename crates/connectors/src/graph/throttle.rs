//! Staying within Exchange Online's limits (learn.microsoft.com/graph/throttling-limits,
//! "Outlook service limits"): at most 4 concurrent requests per app per mailbox —
//! a semaphore per mailbox shared by every clone of the client — and, after a 429
//! or 503, waiting the `Retry-After` the service asked for before retrying, a
//! bounded number of times.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Outlook's limit of concurrent requests per app per mailbox.
pub const MAILBOX_CONCURRENCY: usize = 4;

/// One semaphore per mailbox (keyed by the id or address as the caller names it,
/// case-insensitively).
#[derive(Debug)]
pub(crate) struct MailboxLimiter {
    permits: usize,
    mailboxes: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl MailboxLimiter {
    pub(crate) fn new(permits: usize) -> MailboxLimiter {
        MailboxLimiter {
            permits: permits.max(1),
            mailboxes: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for one of the mailbox's permits; it is returned when dropped.
    pub(crate) async fn acquire(&self, mailbox: &str) -> OwnedSemaphorePermit {
        let semaphore = {
            let mut map = self
                .mailboxes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(mailbox.to_ascii_lowercase())
                .or_insert_with(|| Arc::new(Semaphore::new(self.permits)))
                .clone()
        };
        // The semaphore is never closed, so acquiring cannot fail.
        match semaphore.acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => unreachable!("mailbox semaphores are never closed"),
        }
    }
}

/// How many times and how long to wait before giving a throttled request up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// A `Retry-After` longer than this is not waited for: the failure goes back to
    /// the engine as transient with that delay, and the mailbox is retried later.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            max_wait: Duration::from_secs(60),
        }
    }
}

/// Whether a status is one Graph asks to retry later (throttled, unavailable, gateway timeout).
pub(crate) fn is_retryable(status: u16) -> bool {
    matches!(status, 429 | 503 | 504)
}

/// The wait before retry number `attempt` (1 for the first retry) of a request that
/// got `status`, or `None` to stop retrying. Without `Retry-After`, waits double from
/// one second (Graph: "use an exponential backoff retry policy").
pub(crate) fn plan_retry(
    status: u16,
    retry_after: Option<Duration>,
    attempt: u32,
    policy: RetryPolicy,
) -> Option<Duration> {
    if !is_retryable(status) || attempt > policy.max_retries {
        return None;
    }
    let wait = retry_after
        .unwrap_or_else(|| Duration::from_secs(1u64 << attempt.saturating_sub(1).min(6)));
    (wait <= policy.max_wait).then_some(wait)
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 10.2.3), from `now`.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let cases = [
            ("2", Some(Duration::from_secs(2))),
            (" 30 ", Some(Duration::from_secs(30))),
            (
                "Wed, 01 Jan 2025 00:00:10 GMT",
                Some(Duration::from_secs(10)),
            ),
            ("Tue, 31 Dec 2024 23:59:00 GMT", Some(Duration::ZERO)),
            ("soon", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_retry_after(value, now), expected, "{value}");
        }
    }

    #[test]
    fn retries_follow_the_status_the_header_and_the_policy() {
        let policy = RetryPolicy {
            max_retries: 3,
            max_wait: Duration::from_secs(60),
        };
        let s = Duration::from_secs;
        let cases = [
            (429, Some(s(2)), 1, Some(s(2))),
            (503, Some(s(5)), 3, Some(s(5))),
            (504, None, 1, Some(s(1))),
            (429, None, 3, Some(s(4))),
            (429, Some(s(2)), 4, None),
            (429, Some(s(120)), 1, None),
            (500, Some(s(1)), 1, None),
            (404, None, 1, None),
        ];
        for (status, after, attempt, expected) in cases {
            assert_eq!(
                plan_retry(status, after, attempt, policy),
                expected,
                "{status} {after:?} {attempt}"
            );
        }
    }

    #[tokio::test]
    async fn a_mailbox_has_at_most_its_permits_and_others_are_apart() {
        let limiter = MailboxLimiter::new(2);
        let a1 = limiter.acquire("A@example.org").await;
        let _a2 = limiter.acquire("a@example.org").await;
        let third =
            tokio::time::timeout(Duration::from_millis(50), limiter.acquire("a@example.org")).await;
        assert!(
            third.is_err(),
            "a third permit for the same mailbox must wait"
        );
        let other =
            tokio::time::timeout(Duration::from_millis(50), limiter.acquire("b@example.org")).await;
        assert!(other.is_ok(), "another mailbox has its own permits");
        drop(a1);
        let again =
            tokio::time::timeout(Duration::from_millis(50), limiter.acquire("a@example.org")).await;
        assert!(again.is_ok(), "a returned permit is handed out again");
    }
}
