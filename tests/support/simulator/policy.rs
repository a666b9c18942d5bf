//! A Job's `podFailurePolicy`, evaluated as the Job controller does for a
//! pod whose container exited with a code (`pkg/controller/job/pod_failure_policy.go`):
//! the first rule that matches decides.

use serde_json::Value;

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Ignore,
    FailJob,
    Count,
}

/// The action of the first rule matching `container` exiting with `code`,
/// and the rule's index; None when no rule matches (the failure counts).
pub fn action(job: &Value, container: &str, code: i32) -> Option<(Action, usize)> {
    let rules = job.pointer("/spec/podFailurePolicy/rules")?.as_array()?;
    for (i, rule) in rules.iter().enumerate() {
        let Some(codes) = rule.get("onExitCodes") else {
            continue;
        };
        let named = codes.get("containerName").and_then(Value::as_str);
        if named.is_some_and(|n| n != container) || code == 0 {
            continue;
        }
        let values: Vec<i64> = codes
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        let listed = values.contains(&i64::from(code));
        let hit = match codes.get("operator").and_then(Value::as_str) {
            Some("In") => listed,
            Some("NotIn") => !listed,
            _ => false,
        };
        if hit {
            let act = match rule.get("action").and_then(Value::as_str) {
                Some("Ignore") => Action::Ignore,
                Some("FailJob") => Action::FailJob,
                _ => Action::Count,
            };
            return Some((act, i));
        }
    }
    None
}
