//! What the failure analysis of a decision concluded.

use serde::Serialize;

use crate::rules::RuleId;

/// The failure of a decision: reason, message, the failed task and exit
/// code, the summary, and which classification rule chose the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureOutcome {
    pub reason: String,
    pub message: String,
    pub was_execution_failure: bool,
    pub failed_task_name: Option<String>,
    pub failed_pipeline_task: Option<String>,
    pub failed_task_index: Option<i64>,
    pub exit_code: Option<i64>,
    pub summary: String,
    /// The classification rule that chose the reason.
    pub rule: Option<RuleId>,
}
