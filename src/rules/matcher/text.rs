//! ASCII case-insensitive string tests (needles are lowercased at load).

/// ASCII case-insensitive substring search; `needle` is already lowercase.
pub(super) fn contains_ci(hay: &str, needle: &str) -> bool {
    find_ci(hay.as_bytes(), needle.as_bytes(), 0).is_some()
}

fn find_ci(h: &[u8], n: &[u8], from: usize) -> Option<usize> {
    if n.is_empty() {
        return Some(from.min(h.len()));
    }
    if h.len() < n.len() {
        return None;
    }
    let first = n[0];
    (from..=h.len() - n.len())
        .find(|&i| h[i].to_ascii_lowercase() == first && h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Whole-word match: the needle bounded by non-alphanumeric characters or the ends.
pub(super) fn word_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(i) = find_ci(h, n, from) {
        let before_ok = i == 0 || !h[i - 1].is_ascii_alphanumeric();
        let end = i + n.len();
        let after_ok = end == h.len() || !h[end].is_ascii_alphanumeric();
        if before_ok && after_ok {
            return true;
        }
        from = i + 1;
    }
    false
}

/// Does `hay` start with `needle` (lowercase), ignoring ASCII case?
pub(super) fn starts_with_ci(hay: &str, needle: &str) -> bool {
    let s = hay.as_bytes();
    s.len() >= needle.len() && s[..needle.len()].eq_ignore_ascii_case(needle.as_bytes())
}
