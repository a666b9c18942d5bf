//! `decide`: evaluate a rule set over facts. Pure and deterministic: the same
//! facts, rule revision and `now` give the same decision, byte for byte.
//!
//! The steps live in their own files: `select` chooses the transition,
//! `hold` writes a hold, `effects` the effects, `end_status` a failure or a
//! success, `conditions` the declared conditions, `requeue` when to look
//! again. The engine names no phase, condition or reason: the rule set says
//! which phases are initial and terminal and which conditions a transition
//! writes (DESIGN invariant 10).

use jiff::Timestamp;

use super::conditions::{apply_edits, ConditionStamp};
use super::decision::{Decision, TraceEntry};
use super::derive::derive;
use super::effects::apply_effects;
use super::end_status;
use super::events::push_events;
use super::fact_view::FactView;
use super::hold::apply_hold;
use super::requeue::{default_requeue, transition_requeue};
use super::select::select;
use super::status::time;
use crate::api::{remove_condition, set_condition, RulesProvenance, COND_RULES_ERROR};
use crate::observe::Facts;
use crate::rules::{EffectKind, EvalError, PhaseDef, RuleId, RuleSet, Transition};

/// Reason of the engine's own `RulesError` condition.
const RULES_ERROR_REASON: &str = "RuleEvaluationFailed";

/// Decide what happens to one WFE at `now`.
pub fn decide(facts: &Facts, rules: &RuleSet, now: Timestamp) -> Decision {
    // Every rule evaluation of this decision shares one wall-clock budget, so
    // the worst case of a hostile set is bounded whatever its size.
    let _budget = crate::rules::limits::DecisionBudget::start();
    let lifecycle = &rules.lifecycle;
    let from = lifecycle.phase_or_initial(&facts.wfe.phase).to_string();
    let from_def = lifecycle.phase(&from);
    let terminal = from_def.is_some_and(|p| p.terminal);
    let mut d = Decision {
        revision: rules.revision.clone(),
        rule: None,
        from_phase: from.clone(),
        phase: from.clone(),
        finishes: false,
        terminal,
        hold: None,
        status: facts.wfe.status.clone(),
        status_changed: false,
        effects: Vec::new(),
        events: Vec::new(),
        audit: Vec::new(),
        requeue_after: None,
        failure: None,
        rules_error: None,
        trace: Vec::new(),
    };
    let Some(from_def) = from_def else {
        let e = EvalError::new(format!(
            "the WFE is in phase {from}, which the Lifecycle does not declare"
        ))
        .in_rule(&lifecycle.id.to_string());
        return rules_error(d, facts, rules, now, e);
    };
    let derived = match derive(facts, rules, now) {
        Ok(x) => x,
        Err(e) => return rules_error(d, facts, rules, now, e),
    };
    let mut view = FactView::new(facts, &derived, rules, now);
    let chosen = match select(rules, &from, &view, &mut d.trace) {
        Ok(t) => t,
        Err(e) => return rules_error(d, facts, rules, now, e),
    };
    if let Some(t) = chosen {
        d.rule = Some(t.id.clone());
        if let Err(e) = apply_transition(&mut d, t, from_def, &mut view) {
            return rules_error(d, facts, rules, now, e.in_rule(&t.id.to_string()));
        }
        transition_requeue(&mut d, t.requeue_after);
    }
    // No transition applies: nothing changes, but a WFE still wakes up (a
    // terminal one for its lock release).
    default_requeue(&mut d, facts, rules, &derived, now);
    stamp_provenance(&mut d, facts, rules);
    d
}

/// Apply the chosen transition to the decision.
fn apply_transition(
    d: &mut Decision,
    t: &Transition,
    from: &PhaseDef,
    view: &mut FactView<'_>,
) -> Result<(), EvalError> {
    let rules = view.rules;
    let lifecycle = &rules.lifecycle;
    let to_def = match &t.to {
        Some(p) => lifecycle
            .phase(p)
            .ok_or_else(|| EvalError::new(format!("transition to undeclared phase {p}")))?,
        None => from,
    };
    // Staying keeps the phase as written; a target is the declared spelling.
    let to = match &t.to {
        Some(_) => to_def.name.clone(),
        None => d.from_phase.clone(),
    };
    // Invariant 6: the engine, not the rules, guarantees terminal phases are final.
    if from.terminal && to_def.name != from.name {
        return Err(EvalError::new(format!(
            "transition out of terminal phase {} to {to} refused",
            d.from_phase
        )));
    }
    let generation = Some(view.facts.wfe.generation);
    let stamp = ConditionStamp {
        generation,
        now: time(view.now),
    };
    let phase_changed = d.status.phase.as_deref() != Some(to.as_str());
    if phase_changed {
        d.status.phase = Some(to.clone());
        d.status.observed_generation = generation;
    }
    d.terminal = to_def.terminal;
    d.finishes = d.terminal && phase_changed;
    d.phase = to;
    remove_condition(&mut d.status.conditions, COND_RULES_ERROR);

    if let Some(h) = &t.hold {
        return apply_hold(d, t, h, view, &stamp, phase_changed);
    }
    if from.initial && !to_def.initial {
        // Leaving the initial phase other than by a hold ends any wait.
        let st = &mut d.status;
        st.blocked_reason = None;
        st.next_allowed_execution = None;
        st.consecutive_failures = None;
    }
    apply_effects(d, t, view)?;
    let ends = d.finishes;
    if let Some(fs) = &t.failure {
        end_status::failed(d, t, fs, view, ends)?;
    } else if ends {
        end_status::completed(d, view);
    }
    if let Some(p) = t.execution_status {
        end_status::progress(d, p, view.facts);
    }
    apply_edits(
        &mut d.status.conditions,
        &t.conditions,
        &*view,
        &rules.sandbox,
        &stamp,
    )?;
    if phase_changed && !t.effects.contains(&EffectKind::DeleteExecution) {
        push_events(d, t, &*view, &rules.sandbox)?;
    }
    Ok(())
}

/// Stamp provenance when the status changes, and decide whether to write.
fn stamp_provenance(d: &mut Decision, facts: &Facts, rules: &RuleSet) {
    if d.status != facts.wfe.status {
        if let Some(id) = &d.rule {
            d.status.rules = Some(RulesProvenance {
                revision: rules.revision.clone(),
                rule: id.to_string(),
            });
        }
        d.status_changed = true;
    }
}

/// A rule failed for this object: record `RulesError`, change nothing else.
fn rules_error(
    mut d: Decision,
    facts: &Facts,
    rules: &RuleSet,
    now: Timestamp,
    e: EvalError,
) -> Decision {
    let msg = e.to_string();
    let failing = RuleId {
        file: "".into(),
        name: e.rule.as_str().into(),
        line: 0,
    };
    d.trace.push(TraceEntry::new(
        &failing,
        "error",
        false,
        Some(e.message.clone()),
    ));
    d.phase = d.from_phase.clone();
    d.terminal = rules.lifecycle.is_terminal(&d.phase);
    d.finishes = false;
    d.status = facts.wfe.status.clone();
    d.effects.clear();
    d.events.clear();
    d.audit.clear();
    d.failure = None;
    d.hold = None;
    set_condition(
        &mut d.status.conditions,
        COND_RULES_ERROR,
        "True",
        RULES_ERROR_REASON,
        &msg,
        Some(facts.wfe.generation),
        time(now),
    );
    d.status.rules = Some(RulesProvenance {
        revision: rules.revision.clone(),
        rule: e.rule.clone(),
    });
    d.status_changed = d.status != facts.wfe.status;
    d.requeue_after = Some(rules.lifecycle.requeue.after_rules_error);
    d.rules_error = Some(msg);
    d
}
