//! Evaluating a compiled matcher against facts or one list item.

use super::text::{contains_ci, starts_with_ci, word_ci};
use super::tree::{Cmp, Key, Lit, MNode, Matcher, Op};
use crate::rules::error::EvalError;
use crate::rules::sandbox::Sandbox;
use crate::rules::value::{FactLookup, FactValue, ItemLookup};

/// Where a test reads its value from.
#[derive(Clone, Copy)]
enum Source<'a> {
    Facts(&'a dyn FactLookup, &'a Sandbox),
    Item(&'a dyn ItemLookup),
    Element(&'a str),
}

impl Matcher {
    /// Evaluate against facts (Lifecycle and classification guards).
    pub fn eval(&self, facts: &dyn FactLookup, sandbox: &Sandbox) -> Result<bool, EvalError> {
        eval_node(&self.root, Source::Facts(facts, sandbox))
    }

    /// Evaluate against one list item (attempt selectors).
    pub fn eval_item(&self, item: &dyn ItemLookup) -> Result<bool, EvalError> {
        eval_node(&self.root, Source::Item(item))
    }
}

fn eval_node(node: &MNode, src: Source<'_>) -> Result<bool, EvalError> {
    match node {
        MNode::All(items) => {
            for n in items {
                if !eval_node(n, src)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        MNode::Any(items) => {
            for n in items {
                if eval_node(n, src)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        MNode::Not(inner) => Ok(!eval_node(inner, src)?),
        MNode::Expr(script) => match src {
            Source::Facts(facts, sandbox) => sandbox.eval_bool(script, facts),
            _ => Err(EvalError::new(
                "an `expr:` matcher needs facts, not a list item",
            )),
        },
        MNode::Test(key, ops) => {
            let value = lookup(key, src)?;
            for op in ops {
                if !eval_op(op, &value)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

fn lookup<'a>(key: &Key, src: Source<'a>) -> Result<FactValue<'a>, EvalError> {
    match (key, src) {
        (Key::Fact(f), Source::Facts(facts, _)) => Ok(facts.fact_ref(f)),
        (Key::Evidence(f), Source::Item(item)) => Ok(item.evidence_field(*f)),
        (Key::Attempt(f), Source::Item(item)) => Ok(item.attempt_field(*f)),
        (Key::Element, Source::Element(s)) => Ok(FactValue::Str(s)),
        (key, _) => Err(EvalError::new(format!(
            "`{}` cannot be read in this context",
            key.path()
        ))),
    }
}

fn str_of<'v>(v: &'v FactValue<'_>) -> &'v str {
    v.as_str().unwrap_or("")
}

fn lit_eq(lit: &Lit, v: &FactValue<'_>) -> bool {
    match (lit, v) {
        (Lit::Null, v) => v.is_empty(),
        (Lit::Bool(a), FactValue::Bool(b)) => a == b,
        (Lit::Int(a), FactValue::Int(b)) => a == b,
        (Lit::Str(a), FactValue::Null) => a.is_empty(),
        (Lit::Str(a), v) => v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(a)),
        _ => false,
    }
}

fn list_has(v: &FactValue<'_>, n: &str) -> Option<bool> {
    match v {
        FactValue::StrList(l) => Some(l.iter().any(|s| s.eq_ignore_ascii_case(n))),
        // A map contains its keys (keys are case-sensitive in Kubernetes).
        FactValue::StrMap(m) => Some(m.keys().any(|k| k.eq_ignore_ascii_case(n))),
        _ => None,
    }
}

fn eval_op(op: &Op, v: &FactValue<'_>) -> Result<bool, EvalError> {
    Ok(match op {
        Op::Equals(l) => lit_eq(l, v),
        Op::NotEquals(l) => !lit_eq(l, v),
        Op::In(ls) => ls.iter().any(|l| lit_eq(l, v)),
        Op::NotIn(ls) => !ls.iter().any(|l| lit_eq(l, v)),
        Op::Exists(want) => v.is_empty() != *want,
        Op::Contains(n) => list_has(v, n).unwrap_or_else(|| contains_ci(str_of(v), n)),
        Op::NotContains(n) => !list_has(v, n).unwrap_or_else(|| contains_ci(str_of(v), n)),
        Op::ContainsAny(ns) => match v {
            FactValue::StrList(_) | FactValue::StrMap(_) => {
                ns.iter().any(|n| list_has(v, n) == Some(true))
            }
            _ => {
                let s = str_of(v);
                ns.iter().any(|n| contains_ci(s, n))
            }
        },
        Op::StartsWith(n) => starts_with_ci(str_of(v), n),
        Op::Word(n) => word_ci(str_of(v), n),
        Op::Matches(r) => r.is_match(str_of(v)),
        Op::Cmp(c, rhs) => match v {
            FactValue::Int(lhs) => match c {
                Cmp::Gt => lhs > rhs,
                Cmp::Gte => lhs >= rhs,
                Cmp::Lt => lhs < rhs,
                Cmp::Lte => lhs <= rhs,
            },
            _ => false,
        },
        Op::Some(m) => any_item(m, v)?,
        Op::None(m) => !any_item(m, v)?,
    })
}

fn any_item(m: &MNode, v: &FactValue<'_>) -> Result<bool, EvalError> {
    match v {
        FactValue::Evidence(items) => {
            for e in *items {
                if eval_node(m, Source::Item(e))? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        FactValue::Attempts(items) => {
            for a in *items {
                if eval_node(m, Source::Item(a))? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        FactValue::StrList(items) => {
            for s in *items {
                if eval_node(m, Source::Element(s))? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}
