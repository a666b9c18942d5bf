//! The variables an expression can read, and which of them (and which
//! facts) an expression mentions, found in its text.

use crate::rules::catalog::Fact;

/// The variables an expression can read; each is a read-only map (or INT for
/// `now`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Wfe,
    Execution,
    History,
    Backoff,
    Cooldown,
    Env,
    Hold,
    Failure,
    Now,
}

impl Root {
    pub const ALL: [Root; 9] = [
        Root::Wfe,
        Root::Execution,
        Root::History,
        Root::Backoff,
        Root::Cooldown,
        Root::Env,
        Root::Hold,
        Root::Failure,
        Root::Now,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Root::Wfe => "wfe",
            Root::Execution => "execution",
            Root::History => "history",
            Root::Backoff => "backoff",
            Root::Cooldown => "cooldown",
            Root::Env => "env",
            Root::Hold => "hold",
            Root::Failure => "failure",
            Root::Now => "now",
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Root> {
        Root::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// Key of the attempt list inside the `history` map (`history.items`).
pub const HISTORY_ITEMS_KEY: &str = "items";

/// Find the roots an expression mentions and the facts it reads, from its
/// text: identifiers not preceded by `.` and outside string literals.
pub(super) fn scan_roots(src: &str) -> (Vec<Root>, Vec<Fact>) {
    let bytes = src.as_bytes();
    let mut roots = Vec::new();
    let mut facts = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        // Backtick strings are scanned as code: `${...}` interpolates.
        if c == b'"' || c == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let after_dot = start > 0 && bytes[start - 1] == b'.';
            if after_dot {
                continue;
            }
            if let Some(root) = Root::from_name(&src[start..i]) {
                if !roots.contains(&root) {
                    roots.push(root);
                }
                let field = read_field(bytes, i);
                let path = match (root, field) {
                    (Root::Now, _) => Some("now".to_string()),
                    (Root::History, Some(HISTORY_ITEMS_KEY)) => Some("history".to_string()),
                    (_, Some(f)) => Some(format!("{}.{f}", root.name())),
                    (_, None) => {
                        // The whole root (`f(wfe)`): it may read any of its facts.
                        for fact in facts_of(root) {
                            if !facts.contains(&fact) {
                                facts.push(fact);
                            }
                        }
                        None
                    }
                };
                if let Some(fact) = path.as_deref().and_then(Fact::from_path) {
                    if !facts.contains(&fact) {
                        facts.push(fact);
                    }
                }
            }
            continue;
        }
        i += 1;
    }
    (roots, facts)
}

/// Every fact under a root.
fn facts_of(root: Root) -> impl Iterator<Item = Fact> {
    let prefix = format!("{}.", root.name());
    Fact::ALL.iter().copied().filter(move |f| {
        let p = f.path();
        p.starts_with(&prefix) || (root == Root::History && p == "history")
    })
}

/// The field read right after a root: `.field`, or `["field"]` (the way to
/// read a field named like a Rhai keyword, such as `until`).
fn read_field(bytes: &[u8], mut i: usize) -> Option<&str> {
    if bytes.get(i..i + 2) == Some(b"[\"") {
        let start = i + 2;
        let len = bytes[start..].iter().position(|&b| b == b'"')?;
        return std::str::from_utf8(&bytes[start..start + len]).ok();
    }
    if bytes.get(i) != Some(&b'.') {
        return None;
    }
    i += 1;
    let start = i;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    std::str::from_utf8(&bytes[start..i]).ok()
}
