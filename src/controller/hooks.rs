//! Observation points for telemetry: the controller reports each reconcile
//! and each API write here; the telemetry layer turns them into metrics.

use std::time::Duration;

use crate::engine::Decision;

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
    /// A write reached the API server successfully (`verb` e.g. `create`,
    /// `patch-status`, `delete`; `kind` e.g. `PipelineRun`).
    fn api_write(&self, _verb: &'static str, _kind: &str) {}
    /// A reconcile finished.
    fn reconciled(&self, _outcome: ReconcileOutcome, _elapsed: Duration) {}
    /// A WFE reached a terminal phase through this controller.
    fn terminal(&self, _phase: &str, _reason: Option<&str>, _execution_seconds: f64) {}
}

/// Does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopHooks;

impl ReconcileHooks for NoopHooks {}
