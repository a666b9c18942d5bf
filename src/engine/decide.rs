//! `decide`: evaluate a rule set over facts. Pure and deterministic: the same
//! facts, rule revision and `now` give the same decision, byte for byte.

use std::time::Duration;

use jiff::Timestamp;

use super::audit::{self, AuditInput};
use super::context::{Ctx, FailureFacts};
use super::decision::*;
use super::derive::{derive, Derived};
use super::status::{between, go_duration, time};
use crate::api::*;
use crate::observe::Facts;
use crate::rules::{EffectKind, EvalError, FactLookup, FactValue, RuleSet, Transition};

pub use crate::observe::lock_name;

/// Decide what happens to one WFE at `now`.
pub fn decide(facts: &Facts, rules: &RuleSet, now: Timestamp) -> Decision {
    // Every rule evaluation of this decision shares one wall-clock budget, so
    // the worst case of a hostile set is bounded whatever its size.
    let _budget = crate::rules::limits::DecisionBudget::start();
    let from = current_phase(facts).to_string();
    let mut d = Decision {
        revision: rules.revision.clone(),
        rule: None,
        from_phase: from.clone(),
        phase: from.clone(),
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
    let derived = match derive(facts, rules, now) {
        Ok(x) => x,
        Err(e) => return rules_error(d, facts, rules, now, e),
    };
    let mut ctx = Ctx {
        facts,
        derived: &derived,
        now,
        failure: None,
        max_consecutive_failures: rules.backoff.max_consecutive_failures,
    };
    let mut chosen = None;
    for t in &rules.lifecycle.transitions {
        if !t.from.iter().any(|p| p.eq_ignore_ascii_case(&from)) {
            continue;
        }
        let matched = match &t.when {
            None => Ok(true),
            Some(m) => m.eval(&ctx, &rules.sandbox),
        };
        match matched {
            Ok(m) => {
                d.trace.push(trace(&t.id, "transition", m, None));
                if m {
                    chosen = Some(t);
                    break;
                }
            }
            Err(e) => return rules_error(d, facts, rules, now, e.in_rule(&t.id.to_string())),
        }
    }
    let Some(t) = chosen else {
        // No rule applies: nothing changes. Terminal WFEs still wake up for
        // their lock release.
        terminal_requeue(&mut d, facts, rules, &derived, now);
        return d;
    };
    d.rule = Some(t.id.clone());
    if let Err(e) = apply_transition(&mut d, t, &mut ctx, rules, now) {
        return rules_error(d, facts, rules, now, e.in_rule(&t.id.to_string()));
    }
    if let Some(r) = t.requeue_after {
        // The transition's own `requeueAfter`: the earlier of the two wins.
        d.requeue_after = Some(d.requeue_after.map_or(r, |x| x.min(r)));
    }
    terminal_requeue(&mut d, facts, rules, &derived, now);
    finish(&mut d, facts, rules);
    d
}

fn current_phase(facts: &Facts) -> &str {
    if facts.wfe.phase.is_empty() {
        "Pending"
    } else {
        &facts.wfe.phase
    }
}

fn trace(
    id: &crate::rules::RuleId,
    stage: &'static str,
    matched: bool,
    note: Option<String>,
) -> TraceEntry {
    TraceEntry {
        rule: id.clone(),
        stage,
        matched,
        note,
    }
}

fn canonical_phase<'a>(rules: &'a RuleSet, phase: &str) -> Option<&'a str> {
    rules
        .lifecycle
        .phases
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(phase))
        .map(|p| p.name.as_str())
}

fn apply_transition(
    d: &mut Decision,
    t: &Transition,
    ctx: &mut Ctx,
    rules: &RuleSet,
    now: Timestamp,
) -> Result<(), EvalError> {
    let facts = ctx.facts;
    let sandbox = &rules.sandbox;
    let to = match &t.to {
        Some(p) => canonical_phase(rules, p)
            .ok_or_else(|| EvalError::new(format!("transition to undeclared phase {p}")))?
            .to_string(),
        None => d.from_phase.clone(),
    };
    // Invariant 6: the engine, not the rules, guarantees terminal phases are final.
    if rules.lifecycle.is_terminal(&d.from_phase) && !to.eq_ignore_ascii_case(&d.from_phase) {
        return Err(EvalError::new(format!(
            "transition out of terminal phase {} to {to} refused",
            d.from_phase
        )));
    }
    d.phase = to.clone();
    let gen = Some(facts.wfe.generation);
    let nowt = time(now);
    let st = &mut d.status;
    let phase_changed = st.phase.as_deref() != Some(to.as_str());
    if phase_changed {
        st.phase = Some(to.clone());
        st.observed_generation = gen;
    }
    remove_condition(&mut st.conditions, COND_RULES_ERROR);

    if let Some(h) = &t.hold {
        let until = match h.until {
            None => None,
            Some(fact) => match ctx.fact(fact) {
                FactValue::Time(u) => Some(u),
                _ => {
                    return Err(EvalError::new(format!(
                        "hold until {} has no value",
                        fact.path()
                    )))
                }
            },
        };
        let message = h.message.render(&*ctx, sandbox)?;
        let st = &mut d.status;
        let reason_changed = st.blocked_reason.as_deref() != Some(h.reason.as_str());
        set_condition(
            &mut st.conditions,
            COND_BLOCKED,
            "True",
            &h.reason,
            &message,
            gen,
            nowt.clone(),
        );
        st.blocked_reason = Some(h.reason.clone());
        st.next_allowed_execution = until.map(time);
        st.consecutive_failures = Some(ctx.derived.consecutive_failures as i32);
        d.requeue_after = until.map(|u| between(now, u).max(Duration::from_secs(1)));
        let hold = Hold {
            reason: h.reason.clone(),
            message,
            until,
        };
        d.trace.push(trace(
            &t.id,
            "hold",
            true,
            Some(format!("{} until {}", h.reason, hold.until_text())),
        ));
        d.hold = Some(hold);
        if phase_changed || reason_changed {
            push_events(d, t, ctx, sandbox)?;
        }
        return Ok(());
    }

    let leaving_pending =
        d.from_phase.eq_ignore_ascii_case("Pending") && !to.eq_ignore_ascii_case("Pending");
    if leaving_pending {
        // A decision other than a hold ends any wait.
        let st = &mut d.status;
        remove_condition(&mut st.conditions, COND_BLOCKED);
        st.blocked_reason = None;
        st.next_allowed_execution = None;
        st.consecutive_failures = None;
    }
    let x = &facts.execution;
    let message = match &t.message {
        Some(m) => Some(m.render(&*ctx, sandbox)?),
        None => None,
    };
    let engine = if facts.wfe.engine.is_empty() {
        "execution"
    } else {
        facts.wfe.engine.as_str()
    };
    let lock = lock_name(&facts.wfe.target_resource);

    for e in &t.effects {
        match e {
            EffectKind::CreateExecution | EffectKind::AdoptExecution => {
                let adopt = *e == EffectKind::AdoptExecution;
                let st = &mut d.status;
                let start = if adopt {
                    x.start_time.unwrap_or(now)
                } else {
                    now
                };
                if st.start_time.is_none() {
                    st.start_time = Some(time(start));
                }
                st.execution_ref = Some(ExecutionRef { name: lock.clone() });
                let msg = message.clone().unwrap_or_else(|| {
                    if adopt {
                        format!("{engine} execution resource {lock} already exists (ours)")
                    } else {
                        format!(
                            "{engine} execution resource {lock} created in {} namespace",
                            facts.env.execution_namespace
                        )
                    }
                });
                set_condition(
                    &mut st.conditions,
                    COND_EXECUTION_CREATED,
                    "True",
                    "ExecutionCreated",
                    &msg,
                    gen,
                    nowt.clone(),
                );
                if !adopt {
                    d.effects.push(Effect {
                        kind: EffectKind::CreateExecution,
                        event: None,
                    });
                    d.audit.push(audit::record(
                        facts,
                        audit::SELECTION_COMPLETED,
                        now,
                        &AuditInput {
                            phase: "Pending",
                            execution_name: None,
                            started_at: None,
                            completed_at: None,
                            duration: None,
                            failure: None,
                        },
                    ));
                }
                d.audit.push(audit::record(
                    facts,
                    audit::EXECUTION_STARTED,
                    now,
                    &AuditInput {
                        phase: "Pending",
                        execution_name: Some(&lock),
                        started_at: Some(start),
                        completed_at: None,
                        duration: None,
                        failure: None,
                    },
                ));
            }
            EffectKind::DeleteExecution => {
                let ev = match t.events.first() {
                    Some(spec) => Some(EventRecord {
                        type_: spec.type_.clone(),
                        reason: spec.reason.clone(),
                        message: spec.message.render(&*ctx, sandbox)?,
                    }),
                    None => None,
                };
                d.effects.push(Effect {
                    kind: EffectKind::DeleteExecution,
                    event: ev,
                });
            }
            EffectKind::ReplaceStaleExecution => {
                d.effects.push(Effect {
                    kind: EffectKind::ReplaceStaleExecution,
                    event: None,
                });
                d.requeue_after = Some(Duration::from_millis(500));
            }
            EffectKind::RecordCompletion => {
                let st = &mut d.status;
                if st.completion_time.is_none() {
                    let done = x.completion_time.unwrap_or(now);
                    st.completion_time = Some(time(done));
                    if let Some(s) = &st.start_time {
                        st.duration = Some(go_duration(between(s.0, done)));
                    }
                }
            }
        }
    }

    let to_terminal = rules.lifecycle.is_terminal(&to) && phase_changed;
    if let Some(fs) = &t.failure {
        let outcome = failure_outcome(fs, t, ctx, rules, now, d)?;
        let st = &mut d.status;
        let done = if fs.classify {
            x.completion_time.unwrap_or(now)
        } else {
            now
        };
        if to_terminal {
            st.completion_time = Some(time(done));
            if let Some(s) = &st.start_time {
                st.duration = Some(go_duration(between(s.0, done)));
            }
        }
        st.failure_reason = Some(outcome.reason.clone());
        st.failure_details = Some(FailureDetails {
            failed_task_index: outcome.failed_task_index.map(|i| i as i32),
            failed_task_name: outcome.failed_task_name.clone(),
            failed_pipeline_task: outcome.failed_pipeline_task.clone(),
            failed_step_name: None,
            reason: outcome.reason.clone(),
            message: outcome.message.clone(),
            exit_code: outcome.exit_code.map(|c| c as i32),
            failed_at: time(done),
            execution_time_before_failure: ctx
                .failure
                .as_ref()
                .and_then(|f| f.execution_time.clone()),
            natural_language_summary: outcome.summary.clone(),
            was_execution_failure: outcome.was_execution_failure,
        });
        if fs.deduplicated {
            st.deduplicated_by = Some(x.owner_name.clone());
        }
        set_condition(
            &mut st.conditions,
            COND_READY,
            "False",
            "NotReady",
            "Workflow execution failed",
            gen,
            nowt.clone(),
        );
        if d.from_phase.eq_ignore_ascii_case("Running") {
            let reason = match outcome.reason.as_str() {
                r @ ("TaskFailed" | "DeadlineExceeded" | "OOMKilled") => r.to_string(),
                _ => "ExecutionFailed".to_string(),
            };
            set_condition(
                &mut st.conditions,
                COND_EXECUTION_COMPLETE,
                "False",
                &reason,
                &outcome.message,
                gen,
                nowt.clone(),
            );
            remove_condition(&mut st.conditions, COND_EXECUTION_RUNNING);
            if x.exists {
                st.execution_status = Some(progress(facts, "False"));
            }
        } else {
            let msg = if fs.deduplicated {
                format!(
                    "Execution resource collision (deduplicated by {})",
                    x.owner_name
                )
            } else {
                format!("Execution not created: {}", outcome.message)
            };
            set_condition(
                &mut st.conditions,
                COND_EXECUTION_CREATED,
                "False",
                "ExecutionCreationFailed",
                &msg,
                gen,
                nowt.clone(),
            );
        }
        if fs.blocked {
            set_condition(
                &mut st.conditions,
                COND_BLOCKED,
                "True",
                &outcome.reason,
                &outcome.message,
                gen,
                nowt.clone(),
            );
            st.blocked_reason = Some(outcome.reason.clone());
            st.consecutive_failures = Some(ctx.derived.consecutive_failures as i32);
        }
        if to_terminal {
            let started = st.start_time.as_ref().map(|s| s.0);
            let duration = st.duration.clone();
            d.audit.push(audit::record(
                facts,
                audit::WORKFLOW_FAILED,
                now,
                &AuditInput {
                    phase: "Failed",
                    execution_name: st.execution_ref.as_ref().map(|r| r.name.as_str()),
                    started_at: started,
                    completed_at: Some(done),
                    duration: duration.as_deref(),
                    failure: Some(&outcome),
                },
            ));
        }
        d.failure = Some(outcome);
    } else if to_terminal {
        // A successful end.
        let st = &mut d.status;
        let done = x.completion_time.unwrap_or(now);
        st.completion_time = Some(time(done));
        let dur = st
            .start_time
            .as_ref()
            .map(|s| go_duration(between(s.0, done)));
        st.duration = dur.clone();
        st.execution_status = Some(progress(facts, "True"));
        let msg = message.clone().unwrap_or_else(|| {
            format!(
                "All tasks completed successfully in {}",
                dur.clone().unwrap_or_else(|| "0s".into())
            )
        });
        set_condition(
            &mut st.conditions,
            COND_EXECUTION_COMPLETE,
            "True",
            "ExecutionSucceeded",
            &msg,
            gen,
            nowt.clone(),
        );
        set_condition(
            &mut st.conditions,
            COND_READY,
            "True",
            "Ready",
            "Workflow execution completed",
            gen,
            nowt.clone(),
        );
        remove_condition(&mut st.conditions, COND_EXECUTION_RUNNING);
        let started = st.start_time.as_ref().map(|s| s.0);
        d.audit.push(audit::record(
            facts,
            audit::WORKFLOW_COMPLETED,
            now,
            &AuditInput {
                phase: "Completed",
                execution_name: st.execution_ref.as_ref().map(|r| r.name.as_str()),
                started_at: started,
                completed_at: Some(done),
                duration: dur.as_deref(),
                failure: None,
            },
        ));
    } else if to.eq_ignore_ascii_case("Running")
        && !t
            .effects
            .iter()
            .any(|e| matches!(e, EffectKind::CreateExecution | EffectKind::AdoptExecution))
    {
        // Progress while running: written only when it changes.
        let st = &mut d.status;
        st.execution_status = Some(progress(facts, "Unknown"));
        let reason = if x.reason.is_empty() {
            "Pending"
        } else {
            x.reason.as_str()
        };
        let msg = message
            .clone()
            .unwrap_or_else(|| format!("Execution running ({engine}: {reason})"));
        set_condition(
            &mut st.conditions,
            COND_EXECUTION_RUNNING,
            "True",
            "ExecutionStarted",
            &msg,
            gen,
            nowt.clone(),
        );
    }

    if phase_changed && !t.effects.contains(&EffectKind::DeleteExecution) {
        push_events(d, t, ctx, sandbox)?;
    }
    Ok(())
}

fn push_events(
    d: &mut Decision,
    t: &Transition,
    ctx: &Ctx,
    sandbox: &crate::rules::Sandbox,
) -> Result<(), EvalError> {
    for e in &t.events {
        d.events.push(EventRecord {
            type_: e.type_.clone(),
            reason: e.reason.clone(),
            message: e.message.render(ctx, sandbox)?,
        });
    }
    Ok(())
}

/// `executionStatus` from the execution's progress.
fn progress(facts: &Facts, status: &str) -> ExecutionStatusSummary {
    let x = &facts.execution;
    ExecutionStatusSummary {
        status: status.to_string(),
        reason: (!x.reason.is_empty()).then(|| x.reason.clone()),
        message: (!x.message.is_empty()).then(|| x.message.clone()),
        completed_tasks: x.completed_tasks as i32,
        total_tasks: x.total_tasks as i32,
        retry_count: x.retry_count as i32,
    }
}

/// Fill the failure: fixed reason or classification, wasExecutionFailure,
/// message, summary.
fn failure_outcome(
    fs: &crate::rules::FailureSpec,
    t: &Transition,
    ctx: &mut Ctx,
    rules: &RuleSet,
    now: Timestamp,
    d: &mut Decision,
) -> Result<FailureOutcome, EvalError> {
    let facts = ctx.facts;
    let x = &facts.execution;
    let sandbox = &rules.sandbox;
    let done = if fs.classify {
        x.completion_time.unwrap_or(now)
    } else {
        now
    };
    let execution_time = facts.wfe.start_time.map(|s| go_duration(between(s, done)));
    let (reason, exit_code, rule, task) = if fs.classify {
        let c = &rules.classification;
        let mut found = None;
        for r in &c.rules {
            let m = match &r.when {
                None => true,
                Some(m) => m
                    .eval(&*ctx, sandbox)
                    .map_err(|e| e.in_rule(&r.id.to_string()))?,
            };
            d.trace.push(trace(
                &r.id,
                "classification",
                m,
                m.then(|| r.reason.clone()),
            ));
            if m {
                found = Some(r);
                break;
            }
        }
        let task = x.failed_task.clone();
        match found {
            Some(r) => (
                r.reason.clone(),
                r.exit_code.and_then(|f| match ctx.fact(f) {
                    crate::rules::FactValue::Int(i) => Some(i),
                    _ => None,
                }),
                Some(r.id.clone()),
                task,
            ),
            None => (c.default_reason.clone(), None, None, task),
        }
    } else {
        (
            fs.reason.clone().unwrap_or_else(|| "Unknown".into()),
            None,
            Some(t.id.clone()),
            None,
        )
    };
    ctx.failure = Some(FailureFacts {
        reason: reason.clone(),
        message: String::new(),
        was_execution_failure: false,
        exit_code,
        recommendation: String::new(),
        failed_task_name: task.as_ref().map(|t| t.name.clone()),
        failed_pipeline_task: task.as_ref().and_then(|t| t.pipeline_task.clone()),
        failed_task_index: task.as_ref().map(|t| t.index),
        execution_time,
    });
    // Message: the rule's template, else the most specific text observed.
    let class_msg = match (fs.classify, rule.as_ref()) {
        (true, Some(id)) => rules
            .classification
            .rules
            .iter()
            .find(|r| &r.id == id)
            .and_then(|r| r.message.as_ref()),
        _ => None,
    };
    let message = match (class_msg, &fs.message) {
        (Some(m), _) => m.render(&*ctx, sandbox)?,
        (None, Some(m)) if !fs.classify => m.render(&*ctx, sandbox)?,
        _ if fs.classify => {
            if x.failure_message.is_empty() {
                x.message.clone()
            } else {
                x.failure_message.clone()
            }
        }
        _ => String::new(),
    };
    let was = if fs.classify {
        if let Some(f) = ctx.failure.as_mut() {
            f.message = message.clone();
        }
        let c = &rules.classification;
        let w = c
            .was_execution_failure
            .eval(&*ctx, sandbox)
            .map_err(|e| e.in_rule(&c.was_execution_failure_id.to_string()))?;
        d.trace.push(trace(
            &c.was_execution_failure_id,
            "wasExecutionFailure",
            w,
            None,
        ));
        w
    } else {
        fs.was_execution_failure.unwrap_or(false)
    };
    let recommendation = rules
        .summary
        .recommendations
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&reason))
        .map(|(_, v)| v.clone())
        .or_else(|| rules.summary.default_recommendation.clone())
        .unwrap_or_default();
    if let Some(f) = ctx.failure.as_mut() {
        f.message = message.clone();
        f.was_execution_failure = was;
        f.recommendation = recommendation;
    }
    let mut summary = String::new();
    for line in &rules.summary.lines {
        if let Some(l) = line
            .render_line(&*ctx, sandbox)
            .map_err(|e| e.in_rule(&rules.summary.id.to_string()))?
        {
            summary.push_str(&l);
            summary.push('\n');
        }
    }
    Ok(FailureOutcome {
        reason,
        message,
        was_execution_failure: was,
        failed_task_name: task.as_ref().map(|t| t.name.clone()),
        failed_pipeline_task: task.as_ref().and_then(|t| t.pipeline_task.clone()),
        failed_task_index: task.as_ref().map(|t| t.index),
        exit_code,
        summary,
        rule,
    })
}

/// A terminal WFE holding its lock wakes up when the release falls due.
fn terminal_requeue(
    d: &mut Decision,
    facts: &Facts,
    rules: &RuleSet,
    derived: &Derived,
    now: Timestamp,
) {
    if !rules.lifecycle.is_terminal(&d.phase) || d.requeue_after.is_some() {
        return;
    }
    let x = &facts.execution;
    if !(x.exists && x.owner == "self")
        || d.effects
            .iter()
            .any(|e| e.kind == EffectKind::DeleteExecution)
    {
        return;
    }
    let done = d.status.completion_time.as_ref().map(|t| t.0);
    let at = match (derived.release_at, done) {
        (Some(at), _) => at,
        (None, Some(done)) => super::derive::add(done, rules.cooldown.period),
        (None, None) => super::derive::add(now, rules.cooldown.period),
    };
    d.requeue_after = Some(between(now, at).max(Duration::from_secs(1)));
}

/// Stamp provenance when the status changes, and decide whether to write.
fn finish(d: &mut Decision, facts: &Facts, rules: &RuleSet) {
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
    d.trace.push(TraceEntry {
        rule: crate::rules::RuleId {
            file: "".into(),
            name: e.rule.as_str().into(),
            line: 0,
        },
        stage: "error",
        matched: false,
        note: Some(e.message.clone()),
    });
    d.phase = d.from_phase.clone();
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
        "RuleEvaluationFailed",
        &msg,
        Some(facts.wfe.generation),
        time(now),
    );
    d.status.rules = Some(RulesProvenance {
        revision: rules.revision.clone(),
        rule: e.rule.clone(),
    });
    d.status_changed = d.status != facts.wfe.status;
    d.requeue_after = Some(Duration::from_secs(30));
    d.rules_error = Some(msg);
    d
}
