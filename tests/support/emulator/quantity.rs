//! `resource.Quantity` as apimachinery parses it: enough to refuse what the
//! real decoder refuses and to compare a request with a limit.

/// The regular expression the real decoder quotes in its error.
pub const QUANTITY_REGEX: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/// The value of a quantity (as f64: exact enough to compare requests and
/// limits), or the decoder's error text.
pub fn parse(s: &str) -> Result<f64, String> {
    let regex_err = || format!("quantities must match the regular expression '{QUANTITY_REGEX}'");
    let s = s.trim_end();
    if s.is_empty() {
        return Err(regex_err());
    }
    let (sign, rest) = match s.as_bytes()[0] {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    let num_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (num, suffix) = rest.split_at(num_len);
    if num.is_empty() || num.matches('.').count() > 1 || num == "." {
        return Err(regex_err());
    }
    let value: f64 = num.parse().map_err(|_| regex_err())?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..]
                .parse()
                .map_err(|_| "unable to parse quantity's suffix".to_string())?;
            10f64.powi(e)
        }
        other => {
            let allowed = other
                .chars()
                .all(|c| "eEinumkKMGTP+-0123456789".contains(c));
            return Err(if allowed {
                "unable to parse quantity's suffix".into()
            } else {
                regex_err()
            });
        }
    };
    Ok(sign * value * scale)
}
