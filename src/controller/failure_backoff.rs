//! Per-object exponential backoff for failed reconciles (kube-runtime has
//! none): 1 s doubling up to 5 min, ±10 % jitter, reset on success. Counts
//! are kept per object uid, so one failing WFE never slows down the others.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::Duration;

/// Backoff state for every object that failed since its last success.
#[derive(Debug)]
pub struct FailureBackoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
    random: RandomState,
}

impl Default for FailureBackoff {
    fn default() -> Self {
        FailureBackoff::new(Duration::from_secs(1), Duration::from_secs(300))
    }
}

impl FailureBackoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        FailureBackoff {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
            random: RandomState::new(),
        }
    }

    /// Record one more failure of `key` and return how long to wait.
    pub fn next(&self, key: &str) -> Duration {
        let n = {
            let mut map = self.lock();
            let n = map.entry(key.to_string()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let exp = 2f64.powi((n - 1).min(30) as i32);
        let raw = (self.base.as_secs_f64() * exp).min(self.max.as_secs_f64());
        let mut h = self.random.build_hasher();
        h.write(key.as_bytes());
        h.write_u32(n);
        // Jitter in [-10 %, +10 %]: spreads retries of objects that failed together.
        let unit = (h.finish() % 2001) as f64 / 1000.0 - 1.0;
        Duration::from_secs_f64((raw * (1.0 + 0.1 * unit)).max(0.001))
    }

    /// Forget the failures of `key` (called after a successful reconcile).
    pub fn reset(&self, key: &str) {
        let mut map = self.lock();
        if !map.is_empty() {
            map.remove(key);
        }
    }

    /// Number of consecutive failures of `key`.
    pub fn failures(&self, key: &str) -> u32 {
        self.lock().get(key).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // Each update is a single map operation: a poisoned map is consistent.
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets() {
        let b = FailureBackoff::default();
        let d: Vec<f64> = (0..12).map(|_| b.next("a").as_secs_f64()).collect();
        assert!((0.9..=1.1).contains(&d[0]), "{d:?}");
        assert!((1.8..=2.2).contains(&d[1]), "{d:?}");
        assert!((3.6..=4.4).contains(&d[2]), "{d:?}");
        assert!(d[11] <= 330.0 && d[11] >= 270.0, "{d:?}");
        assert_eq!(b.failures("a"), 12);
        // Another object is unaffected.
        assert!(b.next("b").as_secs_f64() <= 1.1);
        b.reset("a");
        assert_eq!(b.failures("a"), 0);
        assert!(b.next("a").as_secs_f64() <= 1.1);
    }
}
