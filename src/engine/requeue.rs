//! When to look at the WFE again: the earliest of a hold's end, the
//! transition's `requeueAfter`, the lock release of a finished WFE, else
//! the Lifecycle's idle safety net. The controller carries it out as it is.

use std::time::Duration;

use super::decision::Decision;
use super::derive::{add, Derived};
use super::status::between;
use crate::observe::Facts;
use crate::rules::{EffectKind, RuleSet};

/// The transition's own `requeueAfter`: the earlier of it and a hold's wins.
pub fn transition_requeue(d: &mut Decision, requeue_after: Option<Duration>) {
    if let Some(r) = requeue_after {
        d.requeue_after = Some(d.requeue_after.map_or(r, |x| x.min(r)));
    }
}

/// A terminal WFE holding its lock wakes up when the release falls due; a
/// WFE in any other phase with nothing scheduled, after the idle delay.
pub fn default_requeue(
    d: &mut Decision,
    facts: &Facts,
    rules: &RuleSet,
    derived: &Derived,
    now: jiff::Timestamp,
) {
    if d.requeue_after.is_some() {
        return;
    }
    if !rules.lifecycle.is_terminal(&d.phase) {
        d.requeue_after = rules.lifecycle.requeue.idle;
        return;
    }
    let x = &facts.execution;
    let releasing = d
        .effects
        .iter()
        .any(|e| e.kind == EffectKind::DeleteExecution);
    if !(x.exists && x.owner == "self") || releasing {
        return;
    }
    let done = d.status.completion_time.as_ref().map(|t| t.0);
    let at = match (derived.release_at, done) {
        (Some(at), _) => at,
        (None, Some(done)) => add(done, rules.cooldown.period),
        (None, None) => add(now, rules.cooldown.period),
    };
    d.requeue_after = Some(between(now, at).max(Duration::from_secs(1)));
}
