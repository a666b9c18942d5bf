//! Other WorkflowExecutions on the same target → [`Attempt`]s, newest first.

use std::cmp::Reverse;

use crate::api::WorkflowExecution;

use super::facts::Attempt;
use super::rule_view::RuleView;
use super::wfe::{clear_block, failure_reason, phase_of};

/// The other WFEs (not `wfe` itself) with the same `spec.targetResource`:
/// terminal ones by newest `completionTime` first, then the non-terminal
/// ones by newest creation first. Ties are broken by namespace/name so the
/// order never depends on the input order.
pub fn history_facts(
    wfe: &WorkflowExecution,
    others: &[WorkflowExecution],
    rules: &dyn RuleView,
) -> Vec<Attempt> {
    let me = (
        wfe.metadata.namespace.as_deref(),
        wfe.metadata.name.as_deref(),
    );
    let target = &wfe.spec.target_resource;
    let mut out: Vec<Attempt> = others
        .iter()
        .filter(|o| &o.spec.target_resource == target)
        .filter(|o| (o.metadata.namespace.as_deref(), o.metadata.name.as_deref()) != me)
        .map(|o| attempt(o, rules))
        .collect();
    out.sort_by(|a, b| {
        let (ta, tb) = (
            rules.is_terminal_phase(&a.phase),
            rules.is_terminal_phase(&b.phase),
        );
        let key = |x: &Attempt, terminal: bool| {
            let t = if terminal {
                x.completion_time
            } else {
                x.created_at
            };
            (Reverse(terminal), Reverse(t))
        };
        key(a, ta)
            .cmp(&key(b, tb))
            .then_with(|| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)))
    });
    out
}

fn attempt(w: &WorkflowExecution, rules: &dyn RuleView) -> Attempt {
    let status = w.status.as_ref();
    Attempt {
        name: w.metadata.name.clone().unwrap_or_default(),
        namespace: w.metadata.namespace.clone().unwrap_or_default(),
        uid: w.metadata.uid.clone().unwrap_or_default(),
        phase: phase_of(w, rules).to_owned(),
        reason: failure_reason(w).to_owned(),
        was_execution_failure: status
            .and_then(|s| s.failure_details.as_ref())
            .is_some_and(|d| d.was_execution_failure),
        created_at: w.metadata.creation_timestamp.as_ref().map(|t| t.0),
        completion_time: status.and_then(|s| s.completion_time.as_ref()).map(|t| t.0),
        cleared: !clear_block(w).is_empty(),
    }
}
