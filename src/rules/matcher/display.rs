//! A matcher as text, for `--explain` and traces.

use std::fmt;

use super::tree::{Cmp, Lit, MNode, Matcher, Op};

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root {
            MNode::All(items) if items.is_empty() => f.write_str("always"),
            MNode::Any(items) if items.is_empty() => f.write_str("never"),
            MNode::All(items) => join(f, items, " and "),
            other => write!(f, "{other}"),
        }
    }
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lit::Null => f.write_str("null"),
            Lit::Bool(b) => write!(f, "{b}"),
            Lit::Int(i) => write!(f, "{i}"),
            Lit::Str(s) => write!(f, "{s:?}"),
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, items: &[MNode], sep: &str) -> fmt::Result {
    for (i, n) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{n}")?;
    }
    Ok(())
}

impl fmt::Display for MNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MNode::All(items) => {
                f.write_str("all(")?;
                join(f, items, ", ")?;
                f.write_str(")")
            }
            MNode::Any(items) => {
                f.write_str("any(")?;
                join(f, items, ", ")?;
                f.write_str(")")
            }
            MNode::Not(inner) => write!(f, "not({inner})"),
            MNode::Expr(s) => write!(f, "expr({:?})", s.source()),
            MNode::Test(key, ops) => {
                for (i, op) in ops.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    write!(f, "{} ", key.path())?;
                    write_op(f, op)?;
                }
                Ok(())
            }
        }
    }
}

fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    f.write_str("[")?;
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{x}")?;
    }
    f.write_str("]")
}

fn write_op(f: &mut fmt::Formatter<'_>, op: &Op) -> fmt::Result {
    match op {
        Op::Equals(l) => write!(f, "== {l}"),
        Op::NotEquals(l) => write!(f, "!= {l}"),
        Op::In(l) => {
            f.write_str("in ")?;
            write_list(f, l)
        }
        Op::NotIn(l) => {
            f.write_str("not in ")?;
            write_list(f, l)
        }
        Op::Exists(b) => write!(f, "exists={b}"),
        Op::Contains(s) => write!(f, "contains {s:?}"),
        Op::NotContains(s) => write!(f, "notContains {s:?}"),
        Op::ContainsAny(l) => {
            let quoted: Vec<String> = l.iter().map(|s| format!("{s:?}")).collect();
            f.write_str("containsAny ")?;
            write_list(f, &quoted)
        }
        Op::StartsWith(s) => write!(f, "startsWith {s:?}"),
        Op::Word(s) => write!(f, "word {s:?}"),
        Op::Matches(r) => write!(f, "matches /{}/", r.as_str()),
        Op::Cmp(c, v) => {
            let sym = match c {
                Cmp::Gt => ">",
                Cmp::Gte => ">=",
                Cmp::Lt => "<",
                Cmp::Lte => "<=",
            };
            write!(f, "{sym} {v}")
        }
        Op::Some(m) => write!(f, "some({m})"),
        Op::None(m) => write!(f, "none({m})"),
    }
}
