//! One Lifecycle transition: guard, hold, failure, effects, events, the
//! conditions it sets and removes, and its requeue.

use std::sync::Arc;

use super::common::{
    check_rule_name, matcher, opt_template, pascal_case, template, zero_duration, Doc,
};
use crate::api::{condition_reason_problem, condition_type_problem, RESERVED_CONDITIONS};
use crate::rules::catalog::{Fact, FactType};
use crate::rules::diag::{did_you_mean, Diags};
use crate::rules::expr_check;
use crate::rules::fields::{list, one_or_many, string, Fields};
use crate::rules::matcher::{Matcher, Subject};
use crate::rules::model::{
    ConditionChange, ConditionEdit, ConditionSpec, EffectKind, EventSpec, FailureSpec, HoldSpec,
    HoldUntil, ProgressStatus, Transition,
};
use crate::rules::template::Template;
use crate::rules::yaml::{Kind, Node, Pos};

pub const EFFECTS: &[(&str, EffectKind)] = &[
    ("createExecution", EffectKind::CreateExecution),
    ("adoptExecution", EffectKind::AdoptExecution),
    ("deleteExecution", EffectKind::DeleteExecution),
    ("replaceStaleExecution", EffectKind::ReplaceStaleExecution),
    ("recordCompletion", EffectKind::RecordCompletion),
];

/// Positions of a transition's parts, for the static checks.
#[derive(Debug, Clone, Default)]
pub struct TransitionSpans {
    pub name: Pos,
    pub from: Vec<Pos>,
    pub to: Option<Pos>,
    pub failure: Option<Pos>,
    pub reason: Option<Pos>,
    /// No `when` (or an empty one): matches whenever the phase is in `from`.
    pub unconditional: bool,
}

/// `message` is refused by its own error (an earlier syntax; see below).
const KEYS: &[&str] = &[
    "message",
    "name",
    "from",
    "to",
    "when",
    "hold",
    "failure",
    "effects",
    "events",
    "conditions",
    "executionStatus",
    "requeueAfter",
];

pub(super) fn transition(
    t: &Node,
    doc: &Doc<'_>,
    d: &mut Diags,
) -> Option<(Transition, TransitionSpans)> {
    if let Some(m) = t.get("message") {
        d.error(
            m.pos,
            "a transition has no `message`: write the conditions it sets under `conditions` (see docs/rules.md)",
        );
    }
    let f = Fields::new(t, KEYS, "a transition", d)?;
    let before = d.errors.len();
    let mut spans = TransitionSpans {
        name: t.pos,
        ..Default::default()
    };
    let name = f.req_str("name", d).unwrap_or_default();
    if let Some(n) = f.get("name") {
        spans.name = n.pos;
        check_rule_name(&name, n, d);
    }
    let from = f.req("from", d).and_then(|n| phase_names(n, "from", d));
    let (from, from_pos) = from.unwrap_or_default();
    spans.from = from_pos;
    let to = f.opt_str("to", d).ok().flatten();
    spans.to = f.opt("to").map(|n| n.pos);
    let when = f
        .opt("when")
        .and_then(|n| matcher(n, Subject::Facts, doc, d));
    spans.unconditional = when.as_ref().is_none_or(Matcher::is_always)
        || f.opt("when").is_some_and(expr_check::always_holds);
    let hold = f.opt("hold").and_then(|n| hold(n, doc, d));
    let failure = match f.opt("failure") {
        None => None,
        Some(n) => {
            spans.failure = Some(n.pos);
            spans.reason = n.get("reason").map(|r| r.pos);
            failure(n, doc, d)
        }
    };
    let effects = f.opt("effects").map(|n| effects(n, d)).unwrap_or_default();
    let mut events = Vec::new();
    if let Some(n) = f.opt("events") {
        for e in list(n, "events", d).unwrap_or_default() {
            if let Some(ev) = event(e, doc, d) {
                events.push(ev);
            }
        }
    }
    let conditions = f
        .opt("conditions")
        .map(|n| conditions(n, doc, d))
        .unwrap_or_default();
    let execution_status = f.opt("executionStatus").and_then(|n| progress(n, d));
    let requeue_after = match f.opt_duration("requeueAfter", d) {
        Ok(Some((v, n))) if v.is_zero() => {
            d.error(n.pos, zero_duration("requeueAfter"));
            None
        }
        Ok(v) => v.map(|(v, _)| v),
        Err(()) => None,
    };
    if d.errors.len() != before {
        return None;
    }
    let tr = Transition {
        id: doc.id_at(&name, spans.name),
        from,
        to,
        when,
        hold,
        failure,
        effects,
        events,
        conditions,
        execution_status,
        requeue_after,
    };
    Some((tr, spans))
}

fn phase_names(n: &Node, key: &str, d: &mut Diags) -> Option<(Vec<String>, Vec<Pos>)> {
    let mut names = Vec::new();
    let mut pos = Vec::new();
    let mut ok = true;
    for item in one_or_many(n) {
        match string(item, key, d) {
            Some(s) => {
                names.push(s);
                pos.push(item.pos);
            }
            None => ok = false,
        }
    }
    if names.is_empty() && ok {
        d.error(n.pos, format!("`{key}` needs at least one phase"));
        return None;
    }
    ok.then_some((names, pos))
}

fn effects(n: &Node, d: &mut Diags) -> Vec<EffectKind> {
    let mut effects = Vec::new();
    for e in list(n, "effects", d).unwrap_or_default() {
        let Some(s) = string(e, "effects", d) else {
            continue;
        };
        match EFFECTS.iter().find(|(k, _)| *k == s) {
            Some((_, kind)) if effects.contains(kind) => {
                d.error(e.pos, format!("effect `{s}` is listed twice"))
            }
            Some((_, kind)) => effects.push(*kind),
            None => {
                let hint = did_you_mean(&s, EFFECTS.iter().map(|(k, _)| *k));
                let names: Vec<&str> = EFFECTS.iter().map(|(k, _)| *k).collect();
                let hint = if hint.is_empty() {
                    format!(" (effects: {})", names.join(", "))
                } else {
                    hint
                };
                d.error(e.pos, format!("unknown effect `{s}`{hint}"));
            }
        }
    }
    effects
}

fn hold(n: &Node, doc: &Doc<'_>, d: &mut Diags) -> Option<HoldSpec> {
    let f = Fields::new(n, &["until", "reason", "message"], "a hold", d)?;
    let until_node = f.opt("until");
    let until = until_node.and_then(|u| hold_until(u, doc, d));
    let reason = f.req_str("reason", d);
    if let (Some(r), Some(rn)) = (&reason, f.get("reason")) {
        pascal_case(r, rn.pos, "hold reason", d);
    }
    let message = f.req("message", d).and_then(|m| template(m, doc, d));
    if until_node.is_some() && until.is_none() {
        return None;
    }
    Some(HoldSpec {
        until,
        reason: reason?,
        message: message?,
    })
}

/// `until`: a Time fact path, or `{expr: ...}` returning unix seconds.
fn hold_until(u: &Node, doc: &Doc<'_>, d: &mut Diags) -> Option<HoldUntil> {
    if let Some(src_node) = u.get("expr") {
        let Some(src) = src_node
            .as_str()
            .filter(|_| u.as_map().is_some_and(|m| m.len() == 1))
        else {
            d.error(
                u.pos,
                "`hold.until` is a Time fact or a map with only `expr: \"<rhai expression>\"`",
            );
            return None;
        };
        let before = d.errors.len();
        expr_check::check_template(u, d);
        if d.errors.len() != before {
            return None;
        }
        return match doc.sandbox.compile_expr(src) {
            Ok(s) => Some(HoldUntil::Expr(Arc::new(s))),
            Err(e) => {
                d.script_error(src_node, &e);
                None
            }
        };
    }
    let path = string(u, "until", d)?;
    match Fact::from_path(&path) {
        Some(fact) if fact.ty() == FactType::Time => Some(HoldUntil::Fact(fact)),
        Some(fact) => {
            d.error(
                u.pos,
                format!(
                    "`hold.until` must be a Time fact; `{path}` is {:?}",
                    fact.ty()
                ),
            );
            None
        }
        None => {
            let times = Fact::ALL
                .iter()
                .filter(|f| f.ty() == FactType::Time)
                .map(|f| f.path());
            d.error(
                u.pos,
                format!("unknown fact `{path}`{}", did_you_mean(&path, times)),
            );
            None
        }
    }
}

fn failure(n: &Node, doc: &Doc<'_>, d: &mut Diags) -> Option<FailureSpec> {
    let f = Fields::new(
        n,
        &[
            "classify",
            "reason",
            "message",
            "wasExecutionFailure",
            "deduplicated",
            "blocked",
        ],
        "a failure",
        d,
    )?;
    let classify = f.opt_bool("classify", d).ok()?.unwrap_or(false);
    let reason = f.opt_str("reason", d).ok()?;
    if classify && reason.is_some() {
        d.error(
            n.pos,
            "`failure` has both `classify: true` and a fixed `reason`; choose one",
        );
        return None;
    }
    if !classify && reason.is_none() {
        d.error(n.pos, "`failure` needs a `reason` (or `classify: true` to run the FailureClassification rules)");
        return None;
    }
    if let (Some(r), Some(rn)) = (&reason, f.get("reason")) {
        pascal_case(r, rn.pos, "failure reason", d)?;
    }
    let message = opt_template(&f, "message", doc, d).ok()?;
    let was_execution_failure = f.opt_bool("wasExecutionFailure", d).ok()?;
    let deduplicated = f.opt_bool("deduplicated", d).ok()?.unwrap_or(false);
    let blocked = f.opt_bool("blocked", d).ok()?.unwrap_or(false);
    Some(FailureSpec {
        classify,
        reason,
        message,
        was_execution_failure,
        deduplicated,
        blocked,
    })
}

fn event(n: &Node, doc: &Doc<'_>, d: &mut Diags) -> Option<EventSpec> {
    let f = Fields::new(n, &["type", "reason", "message"], "an event", d)?;
    let type_ = f.req_str("type", d);
    if let (Some(t), Some(tn)) = (&type_, f.get("type")) {
        if t != "Normal" && t != "Warning" {
            d.error(
                tn.pos,
                format!("event type must be `Normal` or `Warning`, got {t:?}"),
            );
            return None;
        }
    }
    let reason = f.req_str("reason", d);
    if let (Some(r), Some(rn)) = (&reason, f.get("reason")) {
        pascal_case(r, rn.pos, "event reason", d)?;
    }
    let message = f.req("message", d).and_then(|m| template(m, doc, d));
    Some(EventSpec {
        type_: type_?,
        reason: reason?,
        message: message?,
    })
}

fn conditions(n: &Node, doc: &Doc<'_>, d: &mut Diags) -> Vec<ConditionEdit> {
    list(n, "conditions", d)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| condition(c, doc, d))
        .collect()
}

/// A condition type a rule may write.
fn condition_type(n: &Node, d: &mut Diags) -> Option<String> {
    let t = string(n, "type", d)?;
    if let Some(problem) = condition_type_problem(&t) {
        d.error(n.pos, problem);
        return None;
    }
    if RESERVED_CONDITIONS.contains(&t.as_str()) {
        d.error(
            n.pos,
            format!(
                "condition `{t}` is written by the engine or the controller itself, not by rules"
            ),
        );
        return None;
    }
    Some(t)
}

fn condition(n: &Node, doc: &Doc<'_>, d: &mut Diags) -> Option<ConditionEdit> {
    let when = match n.get("when") {
        Some(w) => Some(matcher(w, Subject::Facts, doc, d)?),
        None => None,
    };
    if let Some(r) = n.get("remove") {
        Fields::new(n, &["remove", "when"], "a condition removal", d)?;
        return condition_type(r, d).map(|t| ConditionEdit {
            when,
            change: ConditionChange::Remove(t),
        });
    }
    let f = Fields::new(
        n,
        &["type", "status", "reason", "message", "when", "remove"],
        "a condition",
        d,
    )?;
    let type_ = f.req("type", d).and_then(|t| condition_type(t, d));
    let status = f.req("status", d).and_then(|s| condition_status(s, d));
    let reason = f.req("reason", d).and_then(|r| {
        let t = template(r, doc, d)?;
        if let Some(problem) = literal_text(r).and_then(|l| condition_reason_problem(&l)) {
            d.error(r.pos, problem);
            return None;
        }
        Some(t)
    });
    let message = match f.opt("message") {
        Some(m) => template(m, doc, d),
        None => Some(Template::literal("")),
    };
    Some(ConditionEdit {
        when,
        change: ConditionChange::Set(ConditionSpec {
            type_: type_?,
            status: status?,
            reason: reason?,
            message: message?,
        }),
    })
}

/// `True`, `False` or `Unknown` (YAML booleans are accepted for the first two).
fn condition_status(n: &Node, d: &mut Diags) -> Option<String> {
    let s = match &n.kind {
        Kind::Bool(true) => "True".to_string(),
        Kind::Bool(false) => "False".to_string(),
        Kind::Str(s) => s.clone(),
        _ => String::new(),
    };
    if matches!(s.as_str(), "True" | "False" | "Unknown") {
        Some(s)
    } else {
        d.error(
            n.pos,
            format!(
                "condition status must be \"True\", \"False\" or \"Unknown\", got {}",
                n.short()
            ),
        );
        None
    }
}

/// The text of a template written without placeholders or an expression.
fn literal_text(n: &Node) -> Option<String> {
    let s = n.as_str()?;
    (!s.contains('{') && !s.contains('}')).then(|| s.to_string())
}

fn progress(n: &Node, d: &mut Diags) -> Option<ProgressStatus> {
    match condition_status(n, d)?.as_str() {
        "True" => Some(ProgressStatus::True),
        "False" => Some(ProgressStatus::False),
        _ => Some(ProgressStatus::Unknown),
    }
}
