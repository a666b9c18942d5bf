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

/// Condition types the engine and the controller write themselves; rules
/// may not set or remove them.
pub const RESERVED_CONDITIONS: &[&str] = &[COND_RULES_ERROR, COND_AUDIT_RECORDED];

/// Why `type_` cannot be a condition type (metav1.Condition: a qualified
/// name, at most 316 characters), or `None`.
pub fn condition_type_problem(type_: &str) -> Option<String> {
    let name = type_.rsplit_once('/').map_or(type_, |(_, n)| n);
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let edges = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if type_.len() > 316 || name.is_empty() || !edges || !name.chars().all(ok_char) {
        return Some(format!(
            "condition type {type_:?} is not a qualified name (letters, digits, `-`, `_`, `.`; starting and ending with a letter or digit)"
        ));
    }
    None
}

/// Why `reason` cannot be a condition reason (metav1.Condition:
/// `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`, at most 1024 characters), or `None`.
pub fn condition_reason_problem(reason: &str) -> Option<String> {
    let mut chars = reason.chars();
    let first = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let body = reason
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ',' | ':'));
    let last = reason.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    if reason.len() > 1024 || !first || !body || !last {
        return Some(format!(
            "condition reason {reason:?} must match ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
        ));
    }
    None
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_names_follow_metav1() {
        assert!(condition_type_problem("Ready").is_none());
        assert!(condition_type_problem("example.com/Approved").is_none());
        assert!(condition_type_problem("").is_some());
        assert!(condition_type_problem("Not Ready").is_some());
        assert!(condition_reason_problem("ExecutionFailed").is_none());
        assert!(condition_reason_problem("a_b:c").is_none());
        assert!(condition_reason_problem("").is_some());
        assert!(condition_reason_problem("1Bad").is_some());
        assert!(condition_reason_problem("Bad-Reason").is_some());
    }
}
