//! When a mailbox's workloads run next: never sooner than the profile's minimum
//! polling interval, slower while a mailbox stays idle, and after a transient
//! failure when the retry policy says.

use std::time::Duration;

/// The engine's timing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The polling interval of an active mailbox (before the profile's minimum).
    pub poll: Duration,
    /// The longest interval an idle mailbox backs off to.
    pub max_idle_poll: Duration,
    /// Retry delay after a transient failure (the reference: 5 minutes).
    pub retry_delay: Duration,
    /// Transient failures allowed before they count as permanent (the reference: 10).
    pub max_retries: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll: Duration::from_secs(60),
            max_idle_poll: Duration::from_secs(15 * 60),
            retry_delay: Duration::from_secs(300),
            max_retries: 10,
        }
    }
}

/// The wait before the next incoming run after a successful one. `idle_runs` counts
/// the consecutive runs that found nothing: each doubles the wait, up to the idle
/// maximum; the profile's minimum interval always applies.
pub fn next_poll(timing: &Timing, min_polling_interval_minutes: i64, idle_runs: u32) -> Duration {
    let backoff = timing.poll.saturating_mul(1u32 << idle_runs.min(16));
    let wait = backoff.min(timing.max_idle_poll.max(timing.poll));
    let minimum =
        Duration::from_secs(u64::try_from(min_polling_interval_minutes.max(0)).unwrap_or(0) * 60);
    wait.max(minimum)
}

/// After a transient failure: the wait before retrying, or `None` when the
/// failures so far make it permanent. A server's Retry-After wins when longer.
pub fn retry_after_failure(
    timing: &Timing,
    failures_so_far: u32,
    server_retry_after: Option<Duration>,
) -> Option<Duration> {
    (failures_so_far < timing.max_retries)
        .then(|| server_retry_after.map_or(timing.retry_delay, |r| r.max(timing.retry_delay)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_backs_off_and_respects_the_profile() {
        let t = Timing::default();
        let cases = [
            (0, 0, 60),
            (0, 1, 120),
            (0, 3, 480),
            (0, 10, 900),
            (30, 0, 1800),
            (30, 10, 1800),
            (1, 0, 60),
        ];
        for (min, idle, expected) in cases {
            assert_eq!(
                next_poll(&t, min, idle).as_secs(),
                expected,
                "min {min} idle {idle}"
            );
        }
    }

    #[test]
    fn retries_then_permanent() {
        let t = Timing {
            max_retries: 3,
            ..Timing::default()
        };
        assert_eq!(
            retry_after_failure(&t, 0, None),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            retry_after_failure(&t, 2, Some(Duration::from_secs(900))),
            Some(Duration::from_secs(900))
        );
        assert_eq!(retry_after_failure(&t, 3, None), None);
    }
}
