//! The `Lifecycle` document: phases, ordered transitions, requeue timing;
//! and its static checks (one initial phase, declared phases, terminal
//! phases final, shadowed transitions, reachability).

use std::collections::{BTreeSet, VecDeque};

use super::common::{zero_duration, Doc};
use super::findings::Findings;
use super::transition::{transition, TransitionSpans};
use crate::rules::diag::{did_you_mean, Diags};
use crate::rules::fields::{list, Fields};
use crate::rules::model::{EffectKind, Lifecycle, PhaseDef, RequeuePolicy};
use crate::rules::yaml::Pos;

#[derive(Debug, Clone, Default)]
pub struct LifecycleSpans {
    pub file: String,
    pub doc: Pos,
    pub phases: Vec<Pos>,
    pub transitions: Vec<TransitionSpans>,
}

pub fn compile(doc: &Doc<'_>, d: &mut Diags) -> Option<(Lifecycle, LifecycleSpans)> {
    let f = Fields::new(
        doc.spec,
        &["phases", "transitions", "requeue"],
        "Lifecycle spec",
        d,
    )?;
    let mut spans = LifecycleSpans {
        file: doc.file.to_string(),
        doc: doc.spec.pos,
        ..Default::default()
    };
    let phases = phases(&f, &mut spans, d);
    let requeue = match f.opt("requeue") {
        None => Some(RequeuePolicy::default()),
        Some(n) => requeue(n, d),
    };
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
    Some((
        Lifecycle {
            id: doc.id(),
            phases: phases?,
            transitions,
            requeue: requeue?,
        },
        spans,
    ))
}

fn phases(f: &Fields<'_>, spans: &mut LifecycleSpans, d: &mut Diags) -> Option<Vec<PhaseDef>> {
    let items = f.req("phases", d).and_then(|n| list(n, "phases", d))?;
    let mut phases = Vec::new();
    let mut ok = true;
    for p in items {
        let Some(pf) = Fields::new(p, &["name", "initial", "terminal"], "a phase", d) else {
            ok = false;
            continue;
        };
        let name = pf.req_str("name", d);
        let initial = pf.opt_bool("initial", d);
        let terminal = pf.opt_bool("terminal", d);
        let (Some(name), Ok(initial), Ok(terminal)) = (name, initial, terminal) else {
            ok = false;
            continue;
        };
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
    ok.then_some(phases)
}

/// `requeue: {idle, afterRulesError}`; `idle: 0s` turns the safety net off.
fn requeue(n: &crate::rules::yaml::Node, d: &mut Diags) -> Option<RequeuePolicy> {
    let f = Fields::new(n, &["idle", "afterRulesError"], "requeue", d)?;
    let mut policy = RequeuePolicy::default();
    if let Some((v, _)) = f.opt_duration("idle", d).ok()? {
        policy.idle = (!v.is_zero()).then_some(v);
    }
    if let Some((v, node)) = f.opt_duration("afterRulesError", d).ok()? {
        if v.is_zero() {
            d.error(node.pos, zero_duration("afterRulesError"));
            return None;
        }
        policy.after_rules_error = v;
    }
    Some(policy)
}

/// The static checks of the (extended) Lifecycle.
pub fn check(lc: &Lifecycle, sp: &LifecycleSpans, out: &mut Findings<'_>) {
    let initial = initial_phase(lc, sp, out);
    transitions(lc, sp, out);
    shadowed(lc, sp, out);
    if let Some(start) = initial {
        reachability(lc, sp, start, out);
    }
}

/// Exactly one initial phase, and never a terminal one.
fn initial_phase(lc: &Lifecycle, sp: &LifecycleSpans, out: &mut Findings<'_>) -> Option<usize> {
    let file = sp.file.as_str();
    let initial: Vec<usize> = (0..lc.phases.len())
        .filter(|&i| lc.phases[i].initial)
        .collect();
    match initial.len() {
        0 => out.error(
            file,
            sp.doc,
            "no initial phase: mark exactly one phase `initial: true`".into(),
        ),
        1 => {}
        _ => {
            for &i in &initial[1..] {
                let msg = format!(
                    "phase `{}` is a second initial phase (the first is `{}`)",
                    lc.phases[i].name, lc.phases[initial[0]].name
                );
                out.error(file, sp.phases[i], msg);
            }
        }
    }
    for (i, p) in lc.phases.iter().enumerate() {
        if p.initial && p.terminal {
            out.error(
                file,
                sp.phases[i],
                format!("phase `{}` cannot be both initial and terminal", p.name),
            );
        }
    }
    initial.first().copied()
}

/// Names unique, phases declared, terminal phases final, failures terminal.
fn transitions(lc: &Lifecycle, sp: &LifecycleSpans, out: &mut Findings<'_>) {
    let phase = |name: &str| lc.phases.iter().find(|p| p.name == name);
    let names: Vec<&str> = lc.phases.iter().map(|p| p.name.as_str()).collect();
    let mut seen_names: Vec<(&str, &str, Pos)> = Vec::new();
    for (t, ts) in lc.transitions.iter().zip(&sp.transitions) {
        let file = &*t.id.file;
        if let Some((_, ffile, first)) = seen_names.iter().find(|(n, _, _)| *n == &*t.id.name) {
            out.error(
                file,
                ts.name,
                format!(
                    "transition name `{}` is used twice (first at {ffile}:{})",
                    t.id.name, first.line
                ),
            );
        } else {
            seen_names.push((&t.id.name, file, ts.name));
        }
        for (from, pos) in t.from.iter().zip(&ts.from) {
            if phase(from).is_none() {
                let hint = did_you_mean(from, names.iter().copied());
                out.error(
                    file,
                    *pos,
                    format!("undeclared phase `{from}` in `from`{hint}"),
                );
            }
        }
        if let (Some(to), Some(pos)) = (&t.to, ts.to) {
            if phase(to).is_none() {
                let hint = did_you_mean(to, names.iter().copied());
                out.error(file, pos, format!("undeclared phase `{to}` in `to`{hint}"));
            }
            for (from, fpos) in t.from.iter().zip(&ts.from) {
                if phase(from).is_some_and(|p| p.terminal) && from != to {
                    out.error(
                        file,
                        *fpos,
                        format!("transition `{}` leaves terminal phase `{from}` for `{to}`; terminal phases are final", t.id.name),
                    );
                }
            }
        }
        if let (Some(f), Some(pos)) = (&t.failure, ts.failure) {
            let targets: Vec<&str> = match &t.to {
                Some(to) => vec![to.as_str()],
                None => t.from.iter().map(String::as_str).collect(),
            };
            if let Some(bad) = targets
                .iter()
                .find(|p| phase(p).is_some_and(|p| !p.terminal))
            {
                out.warn(file, pos, format!("`failure` on transition `{}` whose target phase `{bad}` is not terminal; failureDetails belong to a terminal failure", t.id.name));
            }
            if let (Some(r), Some(rpos)) = (&f.reason, ts.reason) {
                out.reason(file, rpos, r);
            }
        }
        if t.effects.contains(&EffectKind::ReplaceStaleExecution) && t.requeue_after.is_none() {
            out.warn(file, ts.name, format!("transition `{}` replaces a stale execution object but has no `requeueAfter`: the WFE is looked at again only after `requeue.idle` (or a change)", t.id.name));
        }
    }
}

/// Shadowed transitions: an earlier transition without `when` from the
/// same phase always decides first.
fn shadowed(lc: &Lifecycle, sp: &LifecycleSpans, out: &mut Findings<'_>) {
    for (j, (t, ts)) in lc.transitions.iter().zip(&sp.transitions).enumerate() {
        let shadows: Vec<(&str, &str)> = t
            .from
            .iter()
            .filter_map(|p| {
                lc.transitions[..j]
                    .iter()
                    .zip(&sp.transitions[..j])
                    .find(|(e, es)| es.unconditional && e.from.contains(p))
                    .map(|(e, _)| (p.as_str(), &*e.id.name))
            })
            .collect();
        if !t.from.is_empty() && shadows.len() == t.from.len() {
            let (p, by) = shadows[0];
            out.warn(&t.id.file, ts.name, format!("transition `{}` can never be reached: the earlier transition `{by}` from `{p}` always matches (no `when`, or a guard that always holds) and decides first", t.id.name));
        }
    }
}

/// Every phase reachable from the initial one.
fn reachability(lc: &Lifecycle, sp: &LifecycleSpans, start: usize, out: &mut Findings<'_>) {
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    let mut queue = VecDeque::from([lc.phases[start].name.as_str()]);
    while let Some(p) = queue.pop_front() {
        if !reached.insert(p) {
            continue;
        }
        for t in &lc.transitions {
            if let Some(to) = &t.to {
                if t.from.iter().any(|f| f == p) {
                    queue.push_back(to);
                }
            }
        }
    }
    for (i, p) in lc.phases.iter().enumerate() {
        if !reached.contains(p.name.as_str()) {
            out.warn(
                &sp.file,
                sp.phases[i],
                format!(
                    "phase `{}` is unreachable from the initial phase `{}`",
                    p.name, lc.phases[start].name
                ),
            );
        }
    }
}
