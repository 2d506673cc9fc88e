//! The error model of synchronization: every failure is classified as transient or
//! permanent and scoped to an item, a mailbox or a whole profile; the engine decides
//! retries and alerts from this classification alone.

use std::time::Duration;

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Network, timeout, server busy, throttling: retried later.
    Transient { retry_after: Option<Duration> },
    /// Authentication rejected, mailbox not found: the workload is disabled.
    Permanent,
}

/// What a failure affects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorScope {
    Item,
    Mailbox,
    Profile,
}

/// A classified failure with a plain-language cause and a fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyncError {
    pub class: ErrorClass,
    pub scope: ErrorScope,
    pub message: String,
    pub fix: Option<String>,
}

/// The retry policy of the reference: up to 10 transient retries, 5 minutes apart.
pub const MAX_TRANSIENT_RETRIES: u32 = 10;
pub const TRANSIENT_RETRY_DELAY: Duration = Duration::from_secs(300);

/// After a transient failure: when to retry, or `None` when the failure now counts
/// as permanent. A server's Retry-After wins when it asks for longer.
pub fn retry_delay(attempts_so_far: u32, retry_after: Option<Duration>) -> Option<Duration> {
    (attempts_so_far < MAX_TRANSIENT_RETRIES)
        .then(|| retry_after.map_or(TRANSIENT_RETRY_DELAY, |r| r.max(TRANSIENT_RETRY_DELAY)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_reference() {
        let cases = [
            (0, None, Some(300)),
            (9, None, Some(300)),
            (10, None, None),
            (0, Some(600), Some(600)),
            (0, Some(10), Some(300)),
        ];
        for (attempts, after, expected) in cases {
            let got = retry_delay(attempts, after.map(Duration::from_secs)).map(|d| d.as_secs());
            assert_eq!(got, expected, "{attempts} {after:?}");
        }
    }
}
