//! The decision record: one decision as `dry-run -o json|yaml` prints it, as
//! rule-test expectations read it, and as `diff` names its fields. Pure data
//! built from `Facts` + `Decision`; no I/O, so the controller can build the
//! same record (shadow evaluation) without the CLI.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::decision::Decision;
use crate::observe::Facts;

/// A hold as recorded: why, until when, and the Blocked message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldRecord {
    pub reason: String,
    /// None: until the facts change (no time bound).
    pub until: Option<String>,
    pub message: String,
}

/// One decision, flat, in the documented key order (`docs/cli.md`).
///
/// The failure fields (`reason` … `summary`) come from the failure this
/// decision made; for a WFE already in a failed phase that the decision left
/// alone, from its `failureDetails` (a replayed capture of a failed WFE shows
/// why it failed). They are `null` otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// Where the inputs came from (a capture file, a test case); set by the caller.
    pub file: Option<String>,
    /// The execution object decided on, `kind/namespace/name`.
    pub primary: Option<String>,
    /// The evaluation instant.
    pub now: String,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub was_execution_failure: Option<bool>,
    pub failed_task_name: Option<String>,
    pub failed_pipeline_task: Option<String>,
    pub failed_task_index: Option<i64>,
    pub exit_code: Option<i64>,
    pub message: Option<String>,
    pub summary: Option<String>,
    /// The phase after the decision (`Pending` when held).
    pub phase: String,
    pub hold: Option<HoldRecord>,
    pub rules_revision: String,
    /// The deciding lifecycle transition, `file#name`.
    pub rule: Option<String>,
    /// The classification rule that chose the reason, `file#name`.
    pub classification_rule: Option<String>,
    /// A rule failed at evaluation time (the status carries `RulesError`).
    pub rules_error: Option<String>,
}

/// `kind/namespace/name` of an execution object (JSON as captured).
pub fn primary_name(obj: &serde_json::Value) -> Option<String> {
    let kind = obj.get("kind")?.as_str()?;
    let meta = obj.get("metadata")?;
    let name = meta.get("name").and_then(serde_json::Value::as_str)?;
    let ns = meta
        .get("namespace")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    Some(format!("{kind}/{ns}/{name}"))
}

/// Build the record of a decision (`file` and `primary` are left to the caller).
pub fn record(facts: &Facts, d: &Decision, now: Timestamp) -> DecisionRecord {
    let x = &facts.execution;
    let mut r = DecisionRecord {
        file: None,
        primary: None,
        now: now.to_string(),
        outcome: (!x.outcome.is_empty()).then(|| x.outcome.clone()),
        reason: None,
        was_execution_failure: None,
        failed_task_name: None,
        failed_pipeline_task: None,
        failed_task_index: None,
        exit_code: None,
        message: None,
        summary: None,
        phase: d.phase.clone(),
        hold: d.hold.as_ref().map(|h| HoldRecord {
            reason: h.reason.clone(),
            until: h.until.map(|u| u.to_string()),
            message: h.message.clone(),
        }),
        rules_revision: d.revision.clone(),
        rule: d.rule.as_ref().map(|r| r.to_string()),
        classification_rule: None,
        rules_error: d.rules_error.clone(),
    };
    if let Some(f) = &d.failure {
        r.reason = Some(f.reason.clone());
        r.was_execution_failure = Some(f.was_execution_failure);
        r.failed_task_name = f.failed_task_name.clone();
        r.failed_pipeline_task = f.failed_pipeline_task.clone();
        r.failed_task_index = f.failed_task_index;
        r.exit_code = f.exit_code;
        r.message = Some(f.message.clone());
        r.summary = Some(f.summary.clone());
        r.classification_rule = f.rule.as_ref().map(|r| r.to_string());
    } else if let Some(fd) = recorded_failure(d) {
        r.reason = Some(fd.reason.clone());
        r.was_execution_failure = Some(fd.was_execution_failure);
        r.failed_task_name = fd.failed_task_name.clone();
        r.failed_pipeline_task = fd.failed_pipeline_task.clone();
        r.failed_task_index = fd.failed_task_index.map(i64::from);
        r.exit_code = fd.exit_code.map(i64::from);
        r.message = Some(fd.message.clone());
        r.summary = Some(fd.natural_language_summary.clone());
    }
    r
}

/// The failure a WFE already carries when the decision kept its phase.
fn recorded_failure(d: &Decision) -> Option<&crate::api::FailureDetails> {
    if d.phase != d.from_phase || d.rules_error.is_some() {
        return None;
    }
    d.status.failure_details.as_ref()
}
