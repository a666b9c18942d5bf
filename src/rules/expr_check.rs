//! Static checks of `expr:` expressions, where the text shows enough: a
//! fact path that does not exist (`execution.reasn` would fail on every
//! decision with "no such property") and a fact compared with a literal of
//! another type (`execution.exitCode == "137"` is never true; `<` between
//! them fails at run time). Strings are skipped; only `root.field` read
//! directly from a fact root is checked.

use super::catalog::{Fact, FactType};
use super::diag::{did_you_mean, Diags};
use super::error::Diagnostic;
use super::sandbox::{Root, ScriptError, HISTORY_ITEMS_KEY};
use super::yaml::{Kind, Node};

/// Every `expr:` string under a `when:` matcher (at any depth).
pub(crate) fn check_matcher(n: &Node, d: &mut Diags) {
    match &n.kind {
        Kind::Map(entries) => {
            for (k, v) in entries {
                if k.as_str() == Some("expr") {
                    if let Some(src) = v.as_str() {
                        check_expr(src, v, d);
                    }
                } else {
                    check_matcher(v, d);
                }
            }
        }
        Kind::Seq(items) => items.iter().for_each(|i| check_matcher(i, d)),
        _ => {}
    }
}

/// A template in the map form `{expr: ...}`.
pub(crate) fn check_template(n: &Node, d: &mut Diags) {
    if let Some(v) = n.get("expr") {
        if let Some(src) = v.as_str() {
            check_expr(src, v, d);
        }
    }
}

/// Does a `when:` guard hold whatever the facts? (An empty one, `expr:
/// "true"`, and `all`/`any`/`not` built from such.) A rule after one that
/// always matches can never be reached.
pub(crate) fn always_holds(n: &Node) -> bool {
    guard_value(n) == Some(true)
}

/// The constant truth of a guard, when it has one.
fn guard_value(n: &Node) -> Option<bool> {
    let list = |v: &Node| -> Vec<Option<bool>> {
        match &v.kind {
            Kind::Seq(items) => items.iter().map(guard_value).collect(),
            _ => vec![guard_value(v)],
        }
    };
    match &n.kind {
        Kind::Null => Some(true),
        Kind::Map(entries) => {
            let mut all = Some(true);
            for (k, v) in entries {
                let value = match k.as_str()? {
                    "expr" => match v.as_str().map(str::trim) {
                        Some("true") => Some(true),
                        Some("false") => Some(false),
                        _ => None,
                    },
                    "all" => {
                        let vs = list(v);
                        if vs.contains(&Some(false)) {
                            Some(false)
                        } else if vs.iter().all(|x| *x == Some(true)) {
                            Some(true)
                        } else {
                            None
                        }
                    }
                    "any" => {
                        let vs = list(v);
                        if vs.contains(&Some(true)) {
                            Some(true)
                        } else if vs.iter().all(|x| *x == Some(false)) {
                            Some(false)
                        } else {
                            None
                        }
                    }
                    "not" => guard_value(v).map(|x| !x),
                    _ => None,
                };
                all = match (all, value) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
            }
            all
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lit {
    Str,
    Int,
    Bool,
    Unit,
}

/// One finding: byte offset in the source, message, and whether it is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    at: usize,
    message: String,
    error: bool,
}

fn check_expr(src: &str, node: &Node, d: &mut Diags) {
    for f in findings(src) {
        let (line, col) = line_col(src, f.at);
        let e = ScriptError {
            line,
            col,
            message: f.message.clone(),
        };
        if f.error {
            d.script_error(node, &e);
        } else {
            let pos = super::diag::script_pos(node, &e);
            d.warnings.push(Diagnostic {
                file: d.file.clone(),
                line: pos.line,
                column: pos.col,
                message: format!("in expression: {}", f.message),
            });
        }
    }
}

fn line_col(src: &str, at: usize) -> (u32, u32) {
    let before = &src[..at.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line as u32, col as u32)
}

fn ident_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    i
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The comparison operator at `i`, if any.
fn operator(b: &[u8], i: usize) -> Option<(&'static str, usize)> {
    let two = b.get(i..i + 2).unwrap_or(&[]);
    for op in ["==", "!=", "<=", ">="] {
        if two == op.as_bytes() {
            return Some((op, i + 2));
        }
    }
    match b.get(i) {
        Some(b'<') => Some(("<", i + 1)),
        Some(b'>') => Some((">", i + 1)),
        _ => None,
    }
}

/// The literal at `i`, if any.
fn literal(b: &[u8], i: usize) -> Option<Lit> {
    match b.get(i)? {
        b'"' | b'`' => Some(Lit::Str),
        b'(' if b.get(i + 1) == Some(&b')') => Some(Lit::Unit),
        c if c.is_ascii_digit() => Some(Lit::Int),
        b'-' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => Some(Lit::Int),
        _ => {
            let end = ident_end(b, i);
            match &b[i..end] {
                b"true" | b"false" => Some(Lit::Bool),
                _ => None,
            }
        }
    }
}

fn compatible(ty: FactType, lit: Lit) -> bool {
    matches!(
        (ty, lit),
        (_, Lit::Unit)
            | (FactType::Str, Lit::Str)
            | (FactType::Int | FactType::Time, Lit::Int)
            | (FactType::Bool, Lit::Bool)
    )
}

fn lit_name(l: Lit) -> &'static str {
    match l {
        Lit::Str => "a string",
        Lit::Int => "a number",
        Lit::Bool => "a boolean",
        Lit::Unit => "()",
    }
}

fn type_name(t: FactType) -> &'static str {
    match t {
        FactType::Bool => "boolean",
        FactType::Int => "integer",
        FactType::Str => "string",
        FactType::Time => "time (unix seconds in expressions)",
        FactType::StrList => "list",
        FactType::EvidenceList => "evidence list",
        FactType::AttemptList => "attempt list",
        FactType::StrMap => "map",
    }
}

fn findings(src: &str) -> Vec<Finding> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == b'_') {
            i += 1;
            continue;
        }
        let start = i;
        i = ident_end(b, i);
        let after_dot = start > 0 && b[start - 1] == b'.';
        let name = &src[start..i];
        let Some(root) = Root::ALL.into_iter().find(|r| r.name() == name) else {
            continue;
        };
        if after_dot || root == Root::Now {
            continue;
        }
        // `root.field`, or `root["field"]` (a field named like a keyword).
        let (field, fend) = if b.get(i) == Some(&b'.') {
            let fend = ident_end(b, i + 1);
            (&src[i + 1..fend], fend)
        } else if b.get(i..i + 2) == Some(b"[\"") {
            match b[i + 2..].iter().position(|&c| c == b'"') {
                Some(len) => (&src[i + 2..i + 2 + len], i + 3 + len + 1),
                None => continue,
            }
        } else {
            continue;
        };
        if field.is_empty() {
            continue;
        }
        i = fend.min(b.len());
        if root == Root::History && field == HISTORY_ITEMS_KEY {
            continue;
        }
        let path = format!("{name}.{field}");
        let Some(fact) = Fact::from_path(&path) else {
            let prefix = format!("{name}.");
            let known = Fact::ALL
                .iter()
                .map(|f| f.path())
                .filter(|p| p.starts_with(&prefix));
            let hint = did_you_mean(&path, known);
            out.push(Finding {
                at: start,
                message: format!("unknown fact `{path}`{hint}; it would fail on every decision"),
                error: true,
            });
            continue;
        };
        let j = skip_ws(b, fend);
        let Some((op, k)) = operator(b, j) else {
            continue;
        };
        let k = skip_ws(b, k);
        if let Some(lit) = literal(b, k) {
            if !compatible(fact.ty(), lit) {
                let ordering = !matches!(op, "==" | "!=");
                out.push(Finding {
                    at: start,
                    message: format!(
                        "`{path}` is a {} fact compared ({op}) with {}: {}",
                        type_name(fact.ty()),
                        lit_name(lit),
                        if ordering {
                            "this fails at run time"
                        } else {
                            "this is never true"
                        }
                    ),
                    error: ordering,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(src: &str) -> Vec<(bool, String)> {
        findings(src)
            .into_iter()
            .map(|f| (f.error, f.message))
            .collect()
    }

    #[test]
    fn unknown_facts_are_errors_with_a_hint() {
        let f = msgs("execution.reasn == \"OOMKilled\"");
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].0);
        assert!(
            f[0].1.contains("`execution.reasn`") && f[0].1.contains("execution.reason"),
            "{f:?}"
        );
    }

    #[test]
    fn known_facts_strings_and_items_pass() {
        assert!(msgs("execution.reason == \"x\" && history.items.len() > 0").is_empty());
        assert!(msgs("\"execution.nope\" == execution.reason").is_empty());
        assert!(msgs("execution.evidence.some(|e| e.reasonx == 1)").is_empty());
        assert!(msgs("now > wfe.startTime + 60").is_empty());
        assert!(msgs("execution.exitCode == ()").is_empty());
    }

    #[test]
    fn indexed_fields_are_checked_too() {
        assert!(msgs(r#"cooldown["until"] != ()"#).is_empty());
        let f = msgs(r#"cooldown["untl"] != ()"#);
        assert!(f[0].0 && f[0].1.contains("cooldown.until"), "{f:?}");
        assert!(msgs(r#"wfe.annotations["a/b"] == "x""#).is_empty());
    }

    #[test]
    fn literal_types_are_checked() {
        let f = msgs("execution.exitCode == \"137\"");
        assert_eq!(f.len(), 1);
        assert!(!f[0].0, "== is a warning");
        let f = msgs("execution.exitCode > \"1\"");
        assert!(f[0].0, "ordering is an error");
        let f = msgs("execution.reason == 137");
        assert_eq!(f.len(), 1);
        assert!(msgs("execution.exitCode >= 128").is_empty());
    }

    #[test]
    fn guards_that_always_hold() {
        let g = |y: &str| always_holds(&super::super::yaml::parse_documents(y).unwrap()[0]);
        assert!(g("{}"));
        assert!(g("expr: \" true \""));
        assert!(g("any: [{expr: \"true\"}, {execution.reason: x}]"));
        assert!(g("not: {expr: \"false\"}"));
        assert!(!g("execution.reason: x"));
        assert!(!g("all: [{expr: \"true\"}, {execution.reason: x}]"));
        assert!(!g("expr: \"execution.exists\""));
    }

    #[test]
    fn positions_point_at_the_path() {
        let f = findings("a &&\n  wfe.nme == \"x\"");
        assert_eq!(line_col("a &&\n  wfe.nme == \"x\"", f[0].at), (2, 3));
    }
}
