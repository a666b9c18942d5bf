//! A `Decision` is data: what the rules concluded for one WFE at one instant,
//! and the effects the controller must apply. Nothing here does I/O.

use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::api::WorkflowExecutionStatus;
use crate::rules::{EffectKind, RuleId};

/// The result of [`super::decide`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Content revision of the rule set that decided.
    pub revision: String,
    /// The deciding rule (`file#name`), or `None` when no rule matched.
    pub rule: Option<RuleId>,
    /// Phase before (`Pending` for a new WFE) and after the decision.
    pub from_phase: String,
    pub phase: String,
    /// The WFE is held in its phase until `hold.until` (or until the facts change).
    pub hold: Option<Hold>,
    /// The desired status; equal to the current one when nothing changes.
    pub status: WorkflowExecutionStatus,
    /// Whether `status` differs from the current status (a write is needed).
    pub status_changed: bool,
    /// Effects, in the order the controller must run them.
    pub effects: Vec<Effect>,
    /// Kubernetes Events to emit after the status write succeeds.
    pub events: Vec<EventRecord>,
    /// Audit records to enqueue after the status write succeeds.
    pub audit: Vec<AuditRecord>,
    /// When to look again, if nothing else triggers a reconcile.
    #[serde(with = "opt_duration_secs")]
    pub requeue_after: Option<Duration>,
    /// The failure, when the decision moves the WFE to a failed phase (or, for
    /// dry-run, when the execution failed).
    pub failure: Option<FailureOutcome>,
    /// A rule failed at evaluation time; the status carries `RulesError`.
    pub rules_error: Option<String>,
    /// Every rule tried, in order.
    pub trace: Vec<TraceEntry>,
}

/// A hold in the current phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub reason: String,
    pub message: String,
    /// When the hold ends; `None`: until the facts change (a hold on the
    /// environment, such as a missing execution namespace).
    pub until: Option<Timestamp>,
}

impl Hold {
    /// `until` as text: the instant, or "the facts change".
    pub fn until_text(&self) -> String {
        self.until
            .map_or_else(|| "the facts change".to_string(), |t| t.to_string())
    }
}

/// An effect on the cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Effect {
    pub kind: EffectKind,
    /// Event to emit only if the effect really changed something (e.g.
    /// `LockReleased` only when the delete removed an object).
    pub event: Option<EventRecord>,
}

/// A Kubernetes Event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
}

/// An audit record (kubernaut's four event types), with its idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// e.g. `workflowexecution.execution.started`.
    pub event_type: String,
    /// `<wfe uid>/<event type>`.
    pub idempotency_key: String,
    pub payload: super::audit::AuditPayload,
}

/// What the failure analysis concluded.
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

/// One rule tried during a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceEntry {
    pub rule: RuleId,
    /// `transition`, `classification`, `wasExecutionFailure`, `summary`, ...
    pub stage: &'static str,
    pub matched: bool,
    /// A short note (e.g. the hold time, or an error).
    pub note: Option<String>,
}

mod opt_duration_secs {
    use std::time::Duration;

    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}
