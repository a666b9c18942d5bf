//! A transition's effects on the cluster and the status fields they own:
//! creating or adopting the execution object (start time, execution ref,
//! the selection and start audit records), deleting it, replacing a stale
//! one, recording the completion time.

use super::audit::{self, AuditInput};
use super::decision::{Decision, Effect, EventRecord};
use super::fact_view::FactView;
use super::status::{between, go_duration, time};
use crate::api::ExecutionRef;
use crate::observe::lock_name;
use crate::rules::{EffectKind, EvalError, Transition};

pub fn apply_effects(
    d: &mut Decision,
    t: &Transition,
    view: &FactView<'_>,
) -> Result<(), EvalError> {
    for e in &t.effects {
        match e {
            EffectKind::CreateExecution => start_execution(d, view, false),
            EffectKind::AdoptExecution => start_execution(d, view, true),
            EffectKind::DeleteExecution => {
                let event = match t.events.first() {
                    Some(spec) => Some(EventRecord {
                        type_: spec.type_.clone(),
                        reason: spec.reason.clone(),
                        message: spec.message.render(view, &view.rules.sandbox)?,
                    }),
                    None => None,
                };
                d.effects.push(Effect {
                    kind: EffectKind::DeleteExecution,
                    event,
                });
            }
            EffectKind::ReplaceStaleExecution => d.effects.push(Effect {
                kind: EffectKind::ReplaceStaleExecution,
                event: None,
            }),
            EffectKind::RecordCompletion => {
                let st = &mut d.status;
                if st.completion_time.is_none() {
                    let done = view.facts.execution.completion_time.unwrap_or(view.now);
                    st.completion_time = Some(time(done));
                    if let Some(s) = &st.start_time {
                        st.duration = Some(go_duration(between(s.0, done)));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Create (or adopt) the execution object: the WFE starts now (an adopted
/// object: when it started) and refers to it by the lock name.
fn start_execution(d: &mut Decision, view: &FactView<'_>, adopt: bool) {
    let facts = view.facts;
    let now = view.now;
    let summary = &view.rules.summary;
    let lock = lock_name(&facts.wfe.target_resource);
    let start = if adopt {
        facts.execution.start_time.unwrap_or(now)
    } else {
        now
    };
    let st = &mut d.status;
    if st.start_time.is_none() {
        st.start_time = Some(time(start));
    }
    st.execution_ref = Some(ExecutionRef { name: lock.clone() });
    let phase = d.from_phase.clone();
    if !adopt {
        d.effects.push(Effect {
            kind: EffectKind::CreateExecution,
            event: None,
        });
        d.audit.push(audit::record(
            facts,
            summary,
            audit::SELECTION_COMPLETED,
            now,
            &AuditInput {
                phase: &phase,
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
        summary,
        audit::EXECUTION_STARTED,
        now,
        &AuditInput {
            phase: &phase,
            execution_name: Some(&lock),
            started_at: Some(start),
            completed_at: None,
            duration: None,
            failure: None,
        },
    ));
}
