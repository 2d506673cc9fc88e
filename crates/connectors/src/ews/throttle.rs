//! Staying within Exchange's EWS throttling policy ("EWS throttling in
//! Exchange"): a bounded number of requests at once per mailbox (with
//! impersonation, Exchange charges the impersonated mailbox's budget; the default
//! `EwsMaxConcurrency` is 27 for all of a user's clients), and after
//! `ErrorServerBusy`, waiting the `BackOffMilliseconds` Exchange asked for before
//! trying again, a bounded number of times. Every wait is told to the client's
//! observer, so tests and metrics see it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use crate::graph::RetryPolicy;

/// Requests at once per mailbox, well below the default `EwsMaxConcurrency`
/// (27), which the mailbox's own Outlook and phone share.
pub const MAILBOX_CONCURRENCY: usize = 4;

/// One semaphore per mailbox (case-insensitive SMTP address).
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
    pub(crate) async fn acquire(&self, mailbox: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut map = self
                .mailboxes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(mailbox.to_ascii_lowercase())
                .or_insert_with(|| Arc::new(Semaphore::new(self.permits)))
                .clone()
        };
        // The semaphores are never closed; `None` would only mean "no limit".
        semaphore.acquire_owned().await.ok()
    }
}

/// The wait before retry number `attempt` (1 for the first) of a request Exchange
/// answered with `ErrorServerBusy` (or HTTP 503), or `None` to stop and hand the
/// failure to the engine. Without a back-off, waits double from one second.
pub(crate) fn plan_back_off(
    back_off: Option<Duration>,
    attempt: u32,
    policy: RetryPolicy,
) -> Option<Duration> {
    if attempt > policy.max_retries {
        return None;
    }
    let wait =
        back_off.unwrap_or_else(|| Duration::from_secs(1u64 << attempt.saturating_sub(1).min(6)));
    (wait <= policy.max_wait).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_offs_are_honoured_within_the_policy() {
        let policy = RetryPolicy {
            max_retries: 3,
            max_wait: Duration::from_secs(60),
        };
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        let cases = [
            (Some(ms(250)), 1, Some(ms(250))),
            (Some(ms(29_774)), 3, Some(ms(29_774))),
            (Some(ms(250)), 4, None),
            (Some(s(300)), 1, None),
            (None, 1, Some(s(1))),
            (None, 3, Some(s(4))),
            (Some(Duration::ZERO), 1, Some(Duration::ZERO)),
        ];
        for (back_off, attempt, expected) in cases {
            assert_eq!(
                plan_back_off(back_off, attempt, policy),
                expected,
                "{back_off:?} {attempt}"
            );
        }
    }

    #[tokio::test]
    async fn a_mailbox_has_at_most_its_permits() {
        let limiter = MailboxLimiter::new(1);
        let first = limiter.acquire("A@contoso.com").await;
        let second =
            tokio::time::timeout(Duration::from_millis(50), limiter.acquire("a@contoso.com")).await;
        assert!(second.is_err(), "the same mailbox waits");
        let other =
            tokio::time::timeout(Duration::from_millis(50), limiter.acquire("b@contoso.com")).await;
        assert!(other.is_ok(), "another mailbox does not");
        drop(first);
    }
}
