//! Password guessing is slowed down: after `MAX_FAILURES` wrong passwords for one
//! address within `WINDOW`, that address cannot sign in by password until the
//! oldest failure leaves the window (API tokens still work: they cannot be
//! guessed). Counted in memory, per node.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Addresses tracked at most; beyond, the oldest entries are dropped.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
pub struct SignInThrottle {
    failures: HashMap<String, Vec<Instant>>,
}

impl SignInThrottle {
    fn recent(&mut self, key: &str, now: Instant) -> &mut Vec<Instant> {
        let list = self.failures.entry(key.to_lowercase()).or_default();
        list.retain(|t| now.duration_since(*t) < WINDOW);
        list
    }

    /// `Err(wait)` when the address is locked for `wait` more.
    pub fn check(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        let list = self.recent(key, now);
        if list.len() < MAX_FAILURES {
            return Ok(());
        }
        let oldest = list[list.len() - MAX_FAILURES];
        Err(WINDOW.saturating_sub(now.duration_since(oldest)))
    }

    pub fn record_failure(&mut self, key: &str, now: Instant) {
        if self.failures.len() >= MAX_KEYS {
            self.failures
                .retain(|_, v| v.last().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        self.recent(key, now).push(now);
    }

    /// A successful sign-in forgets the address's failures.
    pub fn clear(&mut self, key: &str) {
        self.failures.remove(&key.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_the_address_until_the_window_passes() {
        let mut t = SignInThrottle::default();
        let start = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(t.check("Ann@Contoso.com", start).is_ok(), "attempt {i}");
            t.record_failure("ann@contoso.com", start + Duration::from_secs(i as u64));
        }
        let wait = t
            .check("ann@contoso.com", start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, WINDOW - Duration::from_secs(10));
        // Another address is not affected.
        assert!(t.check("bob@contoso.com", start).is_ok());
        // Once the first failure is older than the window, one more try is allowed.
        assert!(t.check("ann@contoso.com", start + WINDOW).is_ok());
    }

    #[test]
    fn success_forgets_the_failures() {
        let mut t = SignInThrottle::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            t.record_failure("ann@contoso.com", now);
        }
        t.clear("ANN@contoso.com");
        assert!(t.check("ann@contoso.com", now).is_ok());
    }
}
