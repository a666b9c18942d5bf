//! Observation points for telemetry: the controller reports each reconcile,
//! each decision applied, each API write and each watch restart here; the
//! telemetry layer turns them into metrics. The decision log line is written
//! here too, so every controller logs decisions whatever hooks it was given.

use std::time::Duration;

use kube::ResourceExt;

use crate::api::WorkflowExecution;
use crate::engine::{Decision, DecisionDiff};

/// How a reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileOutcome {
    /// Applied a decision (possibly a no-op).
    Applied,
    /// The rules failed for this object; the status carries `RulesError`.
    RulesError,
    /// Deletion handled (cleanup and finalizer removal).
    Deleted,
    /// The reconcile failed and will be retried with backoff.
    Error,
}

impl ReconcileOutcome {
    pub const ALL: [ReconcileOutcome; 4] = [
        ReconcileOutcome::Applied,
        ReconcileOutcome::RulesError,
        ReconcileOutcome::Deleted,
        ReconcileOutcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileOutcome::Applied => "applied",
            ReconcileOutcome::RulesError => "rules_error",
            ReconcileOutcome::Deleted => "deleted",
            ReconcileOutcome::Error => "error",
        }
    }
}

/// Callbacks from the controller. Every method has a no-op default.
pub trait ReconcileHooks: Send + Sync {
    /// A decision was made (before it is applied).
    fn decided(&self, _decision: &Decision, _eval_time: Duration) {}
    /// The candidate in shadow decided beside the active set, in
    /// `eval_time`; `disagreement` is set when the two decisions differ.
    fn shadow_evaluated(&self, _disagreement: Option<&DecisionDiff>, _eval_time: Duration) {}
    /// A decision was applied; `changed` says whether the status was written.
    fn applied(&self, _decision: &Decision, _changed: bool) {}
    /// A write reached the API server successfully (`verb` e.g. `create`,
    /// `patch-status`, `delete`; `kind` e.g. `PipelineRun`).
    fn api_write(&self, _verb: &'static str, _kind: &str) {}
    /// A reconcile finished.
    fn reconciled(&self, _outcome: ReconcileOutcome, _elapsed: Duration) {}
    /// A reconcile failed; `kind` is [`super::ControllerError::category`].
    fn reconcile_failed(&self, _kind: &'static str) {}
    /// A WFE reached a terminal phase through this controller.
    fn terminal(&self, _phase: &str, _reason: Option<&str>, _execution_seconds: f64) {}
    /// The watch of `kind` failed and is being restarted (after a backoff).
    fn watch_restarted(&self, _kind: &str) {}
}

/// Does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopHooks;

impl ReconcileHooks for NoopHooks {}

/// Log an applied decision and tell the hooks: one `info` line when the
/// status was written, `debug` otherwise, always with the WFE, the phases and
/// the deciding rule.
pub(crate) fn applied(
    hooks: &dyn ReconcileHooks,
    wfe: &WorkflowExecution,
    decision: &Decision,
    changed: bool,
) {
    hooks.applied(decision, changed);
    let wfe_key = format!("{}/{}", wfe.namespace().unwrap_or_default(), wfe.name_any());
    let rule = decision
        .rule
        .as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string);
    let hold = decision.hold.as_ref().map(|h| h.reason.as_str());
    let reason = decision.failure.as_ref().map(|f| f.reason.as_str());
    if changed {
        tracing::info!(
            wfe = %wfe_key,
            from_phase = %decision.from_phase,
            phase = %decision.phase,
            rule = %rule,
            hold,
            reason,
            revision = %decision.revision,
            "decision applied"
        );
    } else {
        tracing::debug!(
            wfe = %wfe_key,
            from_phase = %decision.from_phase,
            phase = %decision.phase,
            rule = %rule,
            hold,
            reason,
            revision = %decision.revision,
            "decision applied (no change)"
        );
    }
}
