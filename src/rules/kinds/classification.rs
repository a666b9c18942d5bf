//! The `FailureClassification` document: ordered rules from facts to a
//! reason, then `wasExecutionFailure`; and its static checks (unique names,
//! unreachable rules, a catch-all, documented reasons).

use super::common::{check_rule_name, matcher, opt_template, pascal_case, Doc};
use super::findings::Findings;
use crate::rules::catalog::{Fact, FactType};
use crate::rules::diag::{did_you_mean, Diags};
use crate::rules::expr_check;
use crate::rules::fields::{list, Fields};
use crate::rules::matcher::{Matcher, Subject};
use crate::rules::model::{ClassRule, Classification};
use crate::rules::yaml::{Kind, Node, Pos};

/// Reason of failures no classification rule matches, when `defaultReason` is omitted.
pub const DEFAULT_REASON: &str = "Unknown";

#[derive(Debug, Clone, Default)]
pub struct ClassSpans {
    pub file: String,
    pub doc: Pos,
    pub default_reason: Pos,
    /// `defaultReason` was written.
    pub has_default: bool,
    /// One per rule, in rule order.
    pub rules: Vec<RuleSpans>,
}

/// Positions of one classification rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleSpans {
    pub name: Pos,
    pub reason: Pos,
    /// No `when`, or a guard that always holds.
    pub unconditional: bool,
}

pub fn compile(doc: &Doc<'_>, d: &mut Diags) -> Option<(Classification, ClassSpans)> {
    let f = Fields::new(
        doc.spec,
        &["defaultReason", "rules", "wasExecutionFailure"],
        "FailureClassification spec",
        d,
    )?;
    let before = d.errors.len();
    let mut spans = ClassSpans {
        file: doc.file.to_string(),
        doc: doc.spec.pos,
        ..Default::default()
    };
    // Optional: without it (and without an unconditional rule) the static
    // checks warn that unmatched failures fall to `Unknown`.
    let default_reason = f.opt_str("defaultReason", d).ok().map(|r| {
        spans.has_default = r.is_some();
        r.unwrap_or_else(|| DEFAULT_REASON.to_string())
    });
    if let (Some(r), Some(n)) = (&default_reason, f.get("defaultReason")) {
        spans.default_reason = n.pos;
        pascal_case(r, n.pos, "defaultReason", d);
    }
    let mut rules = Vec::new();
    if let Some(items) = f.req("rules", d).and_then(|n| list(n, "rules", d)) {
        for r in items {
            if let Some((rule, rs)) = rule(r, doc, d) {
                rules.push(rule);
                spans.rules.push(rs);
            }
        }
    }
    let wef_node = f.req("wasExecutionFailure", d);
    let wef = wef_node.and_then(|n| matcher(n, Subject::Facts, doc, d));
    let wef_pos = wef_node.map_or(doc.spec.pos, |n| n.pos);
    if d.errors.len() != before {
        return None;
    }
    let c = Classification {
        id: doc.id(),
        rules,
        was_execution_failure: wef?,
        was_execution_failure_id: doc.id_at(&format!("{}.wasExecutionFailure", doc.name), wef_pos),
        default_reason: default_reason?,
    };
    Some((c, spans))
}

/// One classification rule (also the rules of a `ClassificationRules` document).
pub(super) fn rule(r: &Node, doc: &Doc<'_>, d: &mut Diags) -> Option<(ClassRule, RuleSpans)> {
    let rf = Fields::new(
        r,
        &[
            "name",
            "reason",
            "when",
            "exitCode",
            "message",
            "wasExecutionFailure",
        ],
        "a classification rule",
        d,
    )?;
    let name = rf.req_str("name", d);
    if let (Some(name), Some(n)) = (&name, rf.get("name")) {
        check_rule_name(name, n, d);
    }
    let reason = rf.req_str("reason", d);
    let reason_pos = rf.get("reason").map_or(r.pos, |n| n.pos);
    if let Some(reason) = &reason {
        pascal_case(reason, reason_pos, "reason", d);
    }
    let when = rf
        .opt("when")
        .and_then(|n| matcher(n, Subject::Facts, doc, d));
    let exit_code = exit_code_fact(rf.opt("exitCode"), d);
    let message = opt_template(&rf, "message", doc, d).ok().flatten();
    let was_execution_failure = rf.opt_bool("wasExecutionFailure", d).ok()?;
    let name_pos = rf.get("name").map_or(r.pos, |n| n.pos);
    let unconditional = when.as_ref().is_none_or(Matcher::is_always)
        || rf.opt("when").is_some_and(expr_check::always_holds);
    let (name, reason) = (name?, reason?);
    let spans = RuleSpans {
        name: name_pos,
        reason: reason_pos,
        unconditional,
    };
    Some((
        ClassRule {
            id: doc.id_at(&name, name_pos),
            reason,
            when,
            exit_code,
            message,
            was_execution_failure,
        },
        spans,
    ))
}

/// A classification rule's `exitCode`: `true` reports `execution.exitCode`,
/// a path reports that Int fact (`execution.oomExitCode`), `false` or
/// absent reports none.
fn exit_code_fact(node: Option<&Node>, d: &mut Diags) -> Option<Fact> {
    let n = node?;
    match &n.kind {
        Kind::Bool(true) => Some(Fact::ExecExitCode),
        Kind::Bool(false) => None,
        Kind::Str(path) => match Fact::from_path(path) {
            Some(f) if f.ty() == FactType::Int => Some(f),
            found => {
                let ints = Fact::ALL
                    .iter()
                    .filter(|f| f.ty() == FactType::Int)
                    .map(|f| f.path());
                let why = match found {
                    Some(f) => format!("`{path}` is {:?}", f.ty()),
                    None => format!("unknown fact `{path}`{}", did_you_mean(path, ints)),
                };
                d.error(
                    n.pos,
                    format!("`exitCode` must be true, false or an Int fact; {why}"),
                );
                None
            }
        },
        _ => {
            d.error(
                n.pos,
                format!(
                    "`exitCode` must be true, false or an Int fact path, got {}",
                    n.short()
                ),
            );
            None
        }
    }
}

/// The static checks of the (extended) classification.
pub fn check(c: &Classification, sp: &ClassSpans, out: &mut Findings<'_>) {
    let mut seen: Vec<(&str, &str, Pos)> = Vec::new();
    let mut catch_all: Option<&str> = None;
    for (r, rs) in c.rules.iter().zip(&sp.rules) {
        let file = &*r.id.file;
        if let Some((_, ffile, first)) = seen.iter().find(|(n, _, _)| *n == &*r.id.name) {
            out.error(
                file,
                rs.name,
                format!(
                    "classification rule name `{}` is used twice (first at {ffile}:{})",
                    r.id.name, first.line
                ),
            );
        } else {
            seen.push((&r.id.name, file, rs.name));
        }
        if let Some(by) = catch_all {
            out.warn(file, rs.name, format!("rule `{}` can never match: the earlier rule `{by}` always matches (no `when`, or a guard that always holds)", r.id.name));
        }
        if rs.unconditional && catch_all.is_none() {
            catch_all = Some(&r.id.name);
        }
        out.reason(file, rs.reason, &r.reason);
    }
    if sp.has_default {
        out.reason(&sp.file, sp.default_reason, &c.default_reason);
    } else if catch_all.is_none() {
        out.warn(
            &sp.file,
            sp.doc,
            format!("no catch-all: no rule without `when` and no `defaultReason`; failures no rule matches are classified `{}`", c.default_reason),
        );
    }
}
