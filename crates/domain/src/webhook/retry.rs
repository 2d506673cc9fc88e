//! When a failed delivery is attempted again: the schedule Standard Webhooks
//! recommends (at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h),
//! after which the delivery is failed. The engine's configuration may replace
//! the delays (tests use milliseconds).

use std::time::Duration;

/// The waits after each failed attempt; one attempt more than there are delays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    pub delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        let s = Duration::from_secs;
        RetrySchedule {
            delays: vec![
                s(5),
                s(5 * 60),
                s(30 * 60),
                s(2 * 3600),
                s(5 * 3600),
                s(10 * 3600),
                s(10 * 3600),
            ],
        }
    }
}

impl RetrySchedule {
    /// Attempts in all before a delivery is given up.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// After `attempts_made` failed attempts (1 for the first): the wait before
    /// the next, or `None` when that was the last.
    pub fn after_failure(&self, attempts_made: u32) -> Option<Duration> {
        let i = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        self.delays.get(i).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_schedule() {
        let s = RetrySchedule::default();
        let cases = [
            (0, None),
            (1, Some(5)),
            (2, Some(300)),
            (3, Some(1800)),
            (4, Some(7200)),
            (5, Some(18000)),
            (6, Some(36000)),
            (7, Some(36000)),
            (8, None),
            (9, None),
        ];
        for (attempts, expected) in cases {
            assert_eq!(
                s.after_failure(attempts).map(|d| d.as_secs()),
                expected,
                "after {attempts} attempts"
            );
        }
        assert_eq!(s.max_attempts(), 8);
    }

    #[test]
    fn a_configured_schedule() {
        let s = RetrySchedule {
            delays: vec![Duration::from_millis(100)],
        };
        assert_eq!(s.after_failure(1), Some(Duration::from_millis(100)));
        assert_eq!(s.after_failure(2), None);
        let none = RetrySchedule { delays: vec![] };
        assert_eq!((none.max_attempts(), none.after_failure(1)), (1, None));
    }
}
