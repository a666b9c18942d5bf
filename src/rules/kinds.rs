//! Compiling each document kind into the rule model. Every problem is
//! recorded with its position; positions the static checks need later are
//! kept in [`Spans`].

use std::collections::BTreeMap;
use std::time::Duration;

use super::catalog::{Fact, FactType};
use super::diag::{did_you_mean, Diags};
use super::expr_check;
use super::fields::{list, one_or_many, string, Fields};
use super::matcher::{Context, Matcher};
use super::model::{
    BackoffPolicy, ClassRule, Classification, CooldownPolicy, EffectKind, EventSpec, FailureSpec,
    HistoryPolicy, HoldSpec, Lifecycle, PhaseDef, RuleId, SummaryPolicy, Transition,
};
use super::names;
use super::sandbox::Sandbox;
use super::template::Template;
use super::testcase::{RuleTestDoc, TestCase};
use super::testcheck::{check_case, Expectations};
use super::yaml::{Kind, Node, Pos};

/// Reason of failures no classification rule matches, when `defaultReason` is omitted.
pub const DEFAULT_REASON: &str = "Unknown";

/// Backoff cap used when `max` is missing (the static checks warn).
pub const UNCAPPED_MAX: Duration = Duration::from_secs(366 * 24 * 3600);

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

#[derive(Debug, Clone, Default)]
pub struct LifecycleSpans {
    pub file: String,
    pub doc: Pos,
    pub phases: Vec<Pos>,
    pub transitions: Vec<TransitionSpans>,
}

#[derive(Debug, Clone, Default)]
pub struct ClassSpans {
    pub file: String,
    pub doc: Pos,
    pub default_reason: Pos,
    /// `defaultReason` was written.
    pub has_default: bool,
    /// (name, reason, unconditional) per rule.
    pub rules: Vec<(Pos, Pos, bool)>,
}

#[derive(Debug, Clone, Default)]
pub struct BackoffSpans {
    pub file: String,
    pub doc: Pos,
    pub max: Option<Pos>,
}

#[derive(Debug, Clone, Default)]
pub struct SummarySpans {
    pub file: String,
    /// (reason, position) of each recommendation key.
    pub recommendations: Vec<(String, Pos)>,
}

#[derive(Debug, Clone, Default)]
pub struct TestSpans {
    pub file: String,
    /// (case name, position).
    pub cases: Vec<(String, Pos)>,
}

/// Positions kept for the static checks.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    pub lifecycle: Option<LifecycleSpans>,
    pub classification: Option<ClassSpans>,
    pub backoff: Option<BackoffSpans>,
    pub summary: Option<SummarySpans>,
    pub tests: Vec<TestSpans>,
}

/// The compiled parts of a set, filled document by document.
#[derive(Debug, Default)]
pub struct Parts {
    pub lifecycle: Option<Lifecycle>,
    pub classification: Option<Classification>,
    pub backoff: Option<BackoffPolicy>,
    pub cooldown: Option<CooldownPolicy>,
    pub history: Option<HistoryPolicy>,
    pub summary: Option<SummaryPolicy>,
    pub tests: Vec<RuleTestDoc>,
    pub spans: Spans,
}

/// Context of one document.
pub struct Doc<'a> {
    pub file: &'a str,
    pub name: String,
    pub line: u32,
    pub spec: &'a Node,
    pub sandbox: &'a Sandbox,
}

/// Report a rule name outside the safe character set (see names.rs).
pub(crate) fn check_rule_name(name: &str, at: &Node, d: &mut Diags) {
    if let Some(problem) = names::rule_name_problem(name) {
        d.error(at.pos, problem);
    }
}

impl Doc<'_> {
    fn id(&self) -> RuleId {
        RuleId {
            file: self.file.into(),
            name: self.name.as_str().into(),
            line: self.line,
        }
    }
    fn id_at(&self, name: &str, pos: Pos) -> RuleId {
        RuleId {
            file: self.file.into(),
            name: name.into(),
            line: pos.line,
        }
    }
}

fn matcher(n: &Node, ctx: Context, doc: &Doc<'_>, d: &mut Diags) -> Option<Matcher> {
    let before = d.errors.len();
    let m = Matcher::compile(n, ctx, doc.sandbox, d);
    if ctx == Context::Facts && d.errors.len() == before {
        let before = d.errors.len();
        expr_check::check_matcher(n, d);
        if d.errors.len() != before {
            return None;
        }
    }
    m
}

fn template(n: &Node, doc: &Doc<'_>, d: &mut Diags) -> Option<Template> {
    let before = d.errors.len();
    let t = Template::compile(n, doc.sandbox, d);
    if d.errors.len() == before {
        expr_check::check_template(n, d);
        if d.errors.len() != before {
            return None;
        }
    }
    t
}

/// Compile an optional template; `Err` when present but invalid.
fn opt_template(
    f: &Fields<'_>,
    key: &str,
    doc: &Doc<'_>,
    d: &mut Diags,
) -> Result<Option<Template>, ()> {
    match f.opt(key) {
        None => Ok(None),
        Some(n) => template(n, doc, d).map(Some).ok_or(()),
    }
}

pub fn lifecycle(doc: &Doc<'_>, d: &mut Diags) -> Option<(Lifecycle, LifecycleSpans)> {
    let f = Fields::new(doc.spec, &["phases", "transitions"], "Lifecycle spec", d)?;
    let mut spans = LifecycleSpans {
        file: doc.file.to_string(),
        doc: doc.spec.pos,
        ..Default::default()
    };
    let mut phases = Vec::new();
    let mut ok = true;
    if let Some(items) = f.req("phases", d).and_then(|n| list(n, "phases", d)) {
        for p in items {
            let Some(pf) = Fields::new(p, &["name", "initial", "terminal"], "a phase", d) else {
                ok = false;
                continue;
            };
            let name = pf.req_str("name", d);
            let initial = pf.opt_bool("initial", d);
            let terminal = pf.opt_bool("terminal", d);
            match (name, initial, terminal) {
                (Some(name), Ok(initial), Ok(terminal)) => {
                    if let Some(prev) = phases.iter().position(|x: &PhaseDef| x.name == name) {
                        d.error(
                            p.pos,
                            format!(
                                "phase `{name}` is declared twice (first at line {})",
                                spans.phases[prev].line
                            ),
                        );
                        ok = false;
                        continue;
                    }
                    spans.phases.push(pf.get("name").map_or(p.pos, |n| n.pos));
                    phases.push(PhaseDef {
                        name,
                        initial: initial.unwrap_or(false),
                        terminal: terminal.unwrap_or(false),
                    });
                }
                _ => ok = false,
            }
        }
    } else {
        ok = false;
    }
    let mut transitions = Vec::new();
    if let Some(items) = f
        .req("transitions", d)
        .and_then(|n| list(n, "transitions", d))
    {
        for t in items {
            // A failed transition is recorded in `d`; the checks still see the others.
            if let Some((tr, ts)) = transition(t, doc, d) {
                transitions.push(tr);
                spans.transitions.push(ts);
            }
        }
    }
    ok.then(|| {
        (
            Lifecycle {
                id: doc.id(),
                phases,
                transitions,
            },
            spans,
        )
    })
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

fn transition(t: &Node, doc: &Doc<'_>, d: &mut Diags) -> Option<(Transition, TransitionSpans)> {
    const KEYS: &[&str] = &[
        "name",
        "from",
        "to",
        "when",
        "hold",
        "failure",
        "effects",
        "events",
        "message",
        "requeueAfter",
    ];
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
        .and_then(|n| matcher(n, Context::Facts, doc, d));
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
    let mut effects = Vec::new();
    if let Some(n) = f.opt("effects") {
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
    }
    let mut events = Vec::new();
    if let Some(n) = f.opt("events") {
        for e in list(n, "events", d).unwrap_or_default() {
            if let Some(ev) = event(e, doc, d) {
                events.push(ev);
            }
        }
    }
    let message = opt_template(&f, "message", doc, d).ok().flatten();
    let requeue_after = match f.opt_duration("requeueAfter", d) {
        Ok(Some((v, n))) if v.is_zero() => {
            d.error(n.pos, "`requeueAfter` must be longer than zero");
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
        message,
        requeue_after,
    };
    Some((tr, spans))
}

fn hold(n: &Node, doc: &Doc<'_>, d: &mut Diags) -> Option<HoldSpec> {
    let f = Fields::new(n, &["until", "reason", "message"], "a hold", d)?;
    let until_node = f.get("until");
    let until = until_node.and_then(|u| {
        let path = string(u, "until", d)?;
        match Fact::from_path(&path) {
            Some(fact) if fact.ty() == FactType::Time => Some(fact),
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
    });
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

/// Reasons end up in a CRD field with the pattern `^[A-Z][A-Za-z0-9]*$`.
pub fn pascal_case(r: &str, pos: Pos, what: &str, d: &mut Diags) -> Option<()> {
    let mut chars = r.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if ok {
        Some(())
    } else {
        d.error(
            pos,
            format!("{what} {r:?} must be PascalCase (^[A-Z][A-Za-z0-9]*$)"),
        );
        None
    }
}

pub fn classification(doc: &Doc<'_>, d: &mut Diags) -> Option<(Classification, ClassSpans)> {
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
            let Some(rf) = Fields::new(
                r,
                &["name", "reason", "when", "exitCode", "message"],
                "a classification rule",
                d,
            ) else {
                continue;
            };
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
                .and_then(|n| matcher(n, Context::Facts, doc, d));
            let exit_code = exit_code_fact(rf.opt("exitCode"), d);
            let message = opt_template(&rf, "message", doc, d).ok().flatten();
            let name_pos = rf.get("name").map_or(r.pos, |n| n.pos);
            let unconditional = when.as_ref().is_none_or(Matcher::is_always)
                || rf.opt("when").is_some_and(expr_check::always_holds);
            if let (Some(name), Some(reason)) = (name, reason) {
                spans.rules.push((name_pos, reason_pos, unconditional));
                rules.push(ClassRule {
                    id: doc.id_at(&name, name_pos),
                    reason,
                    when,
                    exit_code,
                    message,
                });
            }
        }
    }
    let wef_node = f.req("wasExecutionFailure", d);
    let wef = wef_node.and_then(|n| matcher(n, Context::Facts, doc, d));
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

pub fn backoff(doc: &Doc<'_>, d: &mut Diags) -> Option<(BackoffPolicy, BackoffSpans)> {
    const KEYS: &[&str] = &[
        "base",
        "factor",
        "max",
        "jitter",
        "maxConsecutiveFailures",
        "counts",
        "resets",
    ];
    let f = Fields::new(doc.spec, KEYS, "Backoff spec", d)?;
    let before = d.errors.len();
    let base = f.req_duration("base", d);
    if let Some((b, n)) = base {
        if b.is_zero() {
            d.error(n.pos, "`base` must be longer than zero");
        }
    }
    let max = f.opt_duration("max", d).ok().flatten();
    let factor = number(&f, "factor", d, 2.0);
    if let (Some(v), Some(n)) = (factor, f.get("factor")) {
        if !(1.0..=100.0).contains(&v) {
            d.error(
                n.pos,
                format!("`factor` must be between 1 and 100, got {v}"),
            );
        }
    }
    let jitter = number(&f, "jitter", d, 0.0);
    if let (Some(v), Some(n)) = (jitter, f.get("jitter")) {
        if !(0.0..1.0).contains(&v) {
            d.error(
                n.pos,
                format!("`jitter` must be at least 0 and below 1, got {v}"),
            );
        }
    }
    let mcf = match f.req("maxConsecutiveFailures", d) {
        Some(Node {
            kind: Kind::Int(i), ..
        }) if *i > 0 => Some(*i),
        Some(n) => {
            d.error(
                n.pos,
                format!(
                    "`maxConsecutiveFailures` must be a positive integer, got {}",
                    n.short()
                ),
            );
            None
        }
        None => None,
    };
    let counts = f
        .req("counts", d)
        .and_then(|n| matcher(n, Context::Attempt, doc, d));
    let resets = match f.opt("resets") {
        Some(n) => matcher(n, Context::Attempt, doc, d),
        None => Some(Matcher::never()),
    };
    if d.errors.len() != before {
        return None;
    }
    let spans = BackoffSpans {
        file: doc.file.to_string(),
        doc: doc.spec.pos,
        max: max.map(|(_, n)| n.pos),
    };
    let policy = BackoffPolicy {
        id: doc.id(),
        base: base?.0,
        factor: factor?,
        max: max.map_or(UNCAPPED_MAX, |(m, _)| m),
        jitter: jitter?,
        max_consecutive_failures: mcf?,
        counts: counts?,
        resets: resets?,
    };
    Some((policy, spans))
}

fn number(f: &Fields<'_>, key: &str, d: &mut Diags, default: f64) -> Option<f64> {
    match f.opt(key) {
        None => Some(default),
        Some(Node {
            kind: Kind::Int(i), ..
        }) => Some(*i as f64),
        Some(Node {
            kind: Kind::Float(x),
            ..
        }) if x.is_finite() => Some(*x),
        Some(n) => {
            d.error(
                n.pos,
                format!("`{key}` must be a number, got {}", n.short()),
            );
            None
        }
    }
}

pub fn cooldown(doc: &Doc<'_>, d: &mut Diags) -> Option<CooldownPolicy> {
    let f = Fields::new(
        doc.spec,
        &["period", "appliesTo", "staleLockGrace"],
        "Cooldown spec",
        d,
    )?;
    let period = f.req_duration("period", d);
    let grace = f.opt_duration("staleLockGrace", d);
    let applies_to = f
        .req("appliesTo", d)
        .and_then(|n| matcher(n, Context::Attempt, doc, d));
    Some(CooldownPolicy {
        id: doc.id(),
        period: period?.0,
        stale_lock_grace: grace.ok()?.map(|g| g.0).unwrap_or(Duration::ZERO),
        applies_to: applies_to?,
    })
}

pub fn history(doc: &Doc<'_>, d: &mut Diags) -> Option<HistoryPolicy> {
    let f = Fields::new(doc.spec, &["notAttempt", "blocks"], "History spec", d)?;
    let not_attempt = f
        .req("notAttempt", d)
        .and_then(|n| matcher(n, Context::Attempt, doc, d));
    let blocks = f
        .req("blocks", d)
        .and_then(|n| matcher(n, Context::Attempt, doc, d));
    Some(HistoryPolicy {
        id: doc.id(),
        not_attempt: not_attempt?,
        blocks: blocks?,
    })
}

pub fn summary(doc: &Doc<'_>, d: &mut Diags) -> Option<(SummaryPolicy, SummarySpans)> {
    let f = Fields::new(
        doc.spec,
        &["lines", "recommendations", "defaultRecommendation"],
        "Summary spec",
        d,
    )?;
    let before = d.errors.len();
    let mut lines = Vec::new();
    if let Some(items) = f.req("lines", d).and_then(|n| list(n, "lines", d)) {
        for l in items {
            if let Some(t) = template(l, doc, d) {
                lines.push(t);
            }
        }
    }
    let mut recommendations = BTreeMap::new();
    let mut spans = SummarySpans {
        file: doc.file.to_string(),
        ..Default::default()
    };
    if let Some(n) = f.opt("recommendations") {
        match n.as_map() {
            Some(entries) => {
                for (k, v) in entries {
                    let Some(reason) = string(k, "recommendations", d) else {
                        continue;
                    };
                    pascal_case(&reason, k.pos, "recommendation reason", d);
                    if let Some(text) = string(v, &reason, d) {
                        spans.recommendations.push((reason.clone(), k.pos));
                        recommendations.insert(reason, text);
                    }
                }
            }
            None => d.error(
                n.pos,
                format!(
                    "`recommendations` must be a map from reason to text, got {}",
                    n.type_name()
                ),
            ),
        }
    }
    let default_recommendation = f.opt_str("defaultRecommendation", d).ok().flatten();
    if d.errors.len() != before {
        return None;
    }
    Some((
        SummaryPolicy {
            id: doc.id(),
            lines,
            recommendations,
            default_recommendation,
        },
        spans,
    ))
}

pub fn rule_test(doc: &Doc<'_>, d: &mut Diags) -> Option<(RuleTestDoc, TestSpans)> {
    rule_test_with(doc, Expectations::Required, d)
}

/// A `RuleTest` document; `exp` says whether cases must carry expectations.
pub fn rule_test_with(
    doc: &Doc<'_>,
    exp: Expectations,
    d: &mut Diags,
) -> Option<(RuleTestDoc, TestSpans)> {
    let f = Fields::new(doc.spec, &["cases"], "RuleTest spec", d)?;
    let items = f.req("cases", d).and_then(|n| list(n, "cases", d))?;
    let mut cases = Vec::new();
    let mut spans = TestSpans {
        file: doc.file.to_string(),
        cases: Vec::new(),
    };
    let mut ok = true;
    for item in items {
        if item.as_map().is_none() {
            d.error(
                item.pos,
                format!("a test case must be a map, got {}", item.type_name()),
            );
            ok = false;
            continue;
        }
        match serde_json::from_value::<TestCase>(item.to_json()) {
            Ok(mut case) => {
                if let Some(problem) = names::case_name_problem(&case.name) {
                    let pos = item.get("name").map_or(item.pos, |n| n.pos);
                    d.error(pos, problem);
                    ok = false;
                    continue;
                }
                case.line = item.pos.line;
                let before = d.errors.len();
                check_case(item, &case, exp, d);
                ok &= d.errors.len() == before;
                spans.cases.push((case.name.clone(), item.pos));
                cases.push(case);
            }
            Err(e) => {
                // serde_json positions refer to the converted value; point at the case instead.
                let pos = unknown_key_pos(item, &e.to_string()).unwrap_or(item.pos);
                d.error(pos, format!("invalid test case: {e}"));
                ok = false;
            }
        }
    }
    ok.then(|| {
        (
            RuleTestDoc {
                id: doc.id(),
                cases,
            },
            spans,
        )
    })
}

/// For "unknown field `x`" errors, the position of key `x` in the case.
fn unknown_key_pos(item: &Node, message: &str) -> Option<Pos> {
    let rest = message.strip_prefix("unknown field `")?;
    let name = &rest[..rest.find('`')?];
    item.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(k, _)| k.pos)
}
