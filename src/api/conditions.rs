//! Condition types and a setter that keeps `lastTransitionTime` stable unless
//! the status really changes (so an unchanged decision writes nothing).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const COND_READY: &str = "Ready";
pub const COND_EXECUTION_CREATED: &str = "ExecutionCreated";
pub const COND_EXECUTION_RUNNING: &str = "ExecutionRunning";
pub const COND_EXECUTION_COMPLETE: &str = "ExecutionComplete";
pub const COND_AUDIT_RECORDED: &str = "AuditRecorded";
pub const COND_BLOCKED: &str = "Blocked";
pub const COND_RULES_ERROR: &str = "RulesError";

/// Set (or replace) a condition. The transition time moves only when the
/// status value changes; reason/message updates keep it.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) {
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = now;
        }
        c.status = status.to_string();
        c.reason = reason.to_string();
        c.message = message.to_string();
        c.observed_generation = generation;
        return;
    }
    conditions.push(Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: now,
    });
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// Remove a condition; returns whether it was present.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    before != conditions.len()
}

/// Find a condition by type.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}
