//! How long the writer waits before sending a failed batch again.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with a cap and symmetric jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first one; 0 means a failed batch is dropped at once.
    pub max_retries: u32,
    /// Wait before the first retry.
    pub base: Duration,
    /// No wait is longer than this (before jitter).
    pub max: Duration,
    /// Fraction of the wait added or removed at random, in `0.0..=1.0`.
    /// Spreads out the retries of several replicas after a shared outage.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
            jitter: 0.1,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based): `base × 2^(retry-1)`,
    /// capped at `max`, then ± `jitter`.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 || raw.is_zero() {
            return raw;
        }
        let factor = rand::thread_rng().gen_range(1.0 - jitter..=1.0 + jitter);
        raw.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_within_the_jitter() {
        let p = RetryPolicy {
            max_retries: 10,
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            jitter: 0.1,
        };
        for (retry, expected) in [
            (1, 100.0),
            (2, 200.0),
            (3, 400.0),
            (4, 800.0),
            (5, 1000.0),
            (9, 1000.0),
        ] {
            let d = p.delay(retry).as_secs_f64() * 1000.0;
            assert!(
                d >= expected * 0.9 - 0.001 && d <= expected * 1.1 + 0.001,
                "retry {retry}: {d}ms not within 10% of {expected}ms"
            );
        }
    }

    #[test]
    fn huge_retry_numbers_do_not_overflow() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        assert_eq!(p.delay(u32::MAX), p.max);
    }
}
