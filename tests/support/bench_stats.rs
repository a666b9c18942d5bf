//! Figures the benches print: percentiles of sorted samples and a timed
//! closure's p50 / p99.

use std::time::{Duration, Instant};

/// The `p` percentile (0.0–1.0, nearest rank) of `sorted`; `None` when empty.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let last = sorted.len().checked_sub(1)?;
    let i = ((last as f64) * p).round() as usize;
    Some(sorted[i.min(last)])
}

/// p50 and p99 of `n` timed calls of `f`, after `n / 10` warm-up calls.
pub fn measure(n: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..n / 10 {
        f();
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        v.push(t.elapsed());
    }
    v.sort();
    (
        percentile(&v, 0.5).unwrap_or_default(),
        percentile(&v, 0.99).unwrap_or_default(),
    )
}
