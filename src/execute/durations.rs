//! Deadlines as the execution objects spell them.

use jiff::Timestamp;

/// Whole seconds from `now` until `deadline` (fractions dropped), at least 1.
pub(crate) fn seconds_until(deadline: Timestamp, now: Timestamp) -> i64 {
    let secs = deadline.as_second()
        - now.as_second()
        - i64::from(deadline.subsec_nanosecond() < now.subsec_nanosecond());
    secs.max(1)
}

/// A Go `time.Duration` string for whole seconds (`1h2m3s`, `45s`), which
/// is what Tekton parses.
pub(crate) fn go_duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}
