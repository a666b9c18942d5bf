//! Go-style durations (`90s`, `1m`, `1h30m`, `500ms`), as Kubernetes users
//! write them.

use std::time::Duration;

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("negative duration {0:?}")]
    Negative(String),
    #[error("invalid duration {text:?}: {problem}")]
    Invalid { text: String, problem: String },
    #[error("duration {0:?} is longer than a year")]
    TooLong(String),
}

fn invalid(text: &str, problem: String) -> DurationError {
    DurationError::Invalid {
        text: text.to_string(),
        problem,
    }
}

/// Parse a Go-style duration. Negative durations are refused (nothing in the
/// rules waits a negative time).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative(text.to_string()));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut total_nanos: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(invalid(text, format!("expected a number at {rest:?}")));
        }
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(invalid(text, "missing unit (use ms, s, m or h)".into())),
            other => {
                return Err(invalid(
                    text,
                    format!("unknown unit {other:?} (use ms, s, m or h)"),
                ))
            }
        };
        let value: f64 = num
            .parse()
            .map_err(|_| invalid(text, format!("bad number {num:?}")))?;
        // Saturating float-to-int conversion; the bound below rejects absurd values.
        let part = (value * nanos_per as f64).round() as u128;
        total_nanos = total_nanos.saturating_add(part);
        rest = next;
    }
    const MAX_NANOS: u128 = 366 * 24 * 3_600_000_000_000;
    if total_nanos > MAX_NANOS {
        return Err(DurationError::TooLong(text.to_string()));
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let nanos = u32::try_from(total_nanos % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_forms() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn bad_forms() {
        for bad in ["", "-1s", "10", "5x", "s", "1h30", "99999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
