//! The fact view a decision evaluates against: observed facts, derived facts,
//! and (after classification) the failure.

use jiff::Timestamp;

use super::derive::Derived;
use crate::observe::Facts;
use crate::rules::{Fact, FactLookup, FactValue};

/// The failure being described, once known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailureFacts {
    pub reason: String,
    pub message: String,
    pub was_execution_failure: bool,
    pub exit_code: Option<i64>,
    pub recommendation: String,
    pub failed_task_name: Option<String>,
    pub failed_pipeline_task: Option<String>,
    pub failed_task_index: Option<i64>,
    pub execution_time: Option<String>,
}

/// Facts + derived values + failure, read by path.
pub struct Ctx<'a> {
    pub facts: &'a Facts,
    pub derived: &'a Derived,
    pub now: Timestamp,
    pub failure: Option<FailureFacts>,
    pub max_consecutive_failures: i64,
}

fn time(t: Option<Timestamp>) -> FactValue<'static> {
    t.map_or(FactValue::Null, FactValue::Time)
}

impl FactLookup for Ctx<'_> {
    fn fact(&self, fact: Fact) -> FactValue<'_> {
        let w = &self.facts.wfe;
        let x = &self.facts.execution;
        let d = self.derived;
        let f = self.failure.as_ref();
        let rejection = self.facts.env.create_rejection.as_ref();
        match fact {
            Fact::Now => FactValue::Time(self.now),
            Fact::WfeName => FactValue::Str(&w.name),
            Fact::WfeNamespace => FactValue::Str(&w.namespace),
            Fact::WfeUid => FactValue::Str(&w.uid),
            Fact::WfePhase => FactValue::Str(if w.phase.is_empty() {
                "Pending"
            } else {
                &w.phase
            }),
            Fact::WfeDeleting => FactValue::Bool(w.deleting),
            Fact::WfeTargetResource => FactValue::Str(&w.target_resource),
            Fact::WfeTargetParts => FactValue::Int(w.target_parts),
            Fact::WfeTargetEmptyPart => FactValue::Int(w.target_empty_part),
            Fact::WfeWorkflowId => FactValue::Str(&w.workflow_id),
            Fact::WfeWorkflowName => FactValue::Str(&w.workflow_name),
            Fact::WfeActionType => FactValue::Str(&w.action_type),
            Fact::WfeVersion => FactValue::Str(&w.version),
            Fact::WfeExecutionBundle => FactValue::Str(&w.execution_bundle),
            Fact::WfeEngine => FactValue::Str(&w.engine),
            Fact::WfeStartTime => time(w.start_time),
            Fact::WfeCompletionTime => time(w.completion_time),
            Fact::WfeExecutionRef => FactValue::Str(&w.execution_ref),
            Fact::WfeClearBlock => FactValue::Str(&w.clear_block),
            Fact::WfeTimesOutAt => time(w.times_out_at),
            Fact::WfeLockName => FactValue::Owned(super::decide::lock_name(&w.target_resource)),
            Fact::ExecExists => FactValue::Bool(x.exists),
            Fact::ExecKind => FactValue::Str(&x.kind),
            Fact::ExecName => FactValue::Str(&x.name),
            Fact::ExecApiVersion => FactValue::Str(&x.api_version),
            Fact::ExecOwner => FactValue::Str(&x.owner),
            Fact::ExecOwnerName => FactValue::Str(&x.owner_name),
            Fact::ExecOwnerPhase => FactValue::Str(&x.owner_phase),
            Fact::ExecOutcome => FactValue::Str(&x.outcome),
            Fact::ExecReason => FactValue::Str(&x.reason),
            Fact::ExecMessage => FactValue::Str(&x.message),
            Fact::ExecStartTime => time(x.start_time),
            Fact::ExecCompletionTime => time(x.completion_time),
            Fact::ExecTotalTasks => FactValue::Int(x.total_tasks),
            Fact::ExecCompletedTasks => FactValue::Int(x.completed_tasks),
            Fact::ExecStarted => FactValue::Bool(x.started),
            Fact::ExecTaskStopped => FactValue::Bool(x.task_stopped),
            Fact::ExecTasksSucceeded => FactValue::Int(x.tasks_succeeded),
            Fact::ExecEvidenceComplete => FactValue::Bool(x.evidence_complete),
            Fact::ExecChildrenMissing => FactValue::Int(x.children_missing),
            Fact::ExecFailedTaskName => x
                .failed_task
                .as_ref()
                .map_or(FactValue::Null, |t| FactValue::Str(&t.name)),
            Fact::ExecFailedPipelineTask => x
                .failed_task
                .as_ref()
                .and_then(|t| t.pipeline_task.as_deref())
                .map_or(FactValue::Null, FactValue::Str),
            Fact::ExecFailedTaskIndex => x
                .failed_task
                .as_ref()
                .map_or(FactValue::Null, |t| FactValue::Int(t.index)),
            Fact::ExecExitCode => x.exit_code.map_or(FactValue::Null, FactValue::Int),
            Fact::ExecOomExitCode => x.oom_exit_code.map_or(FactValue::Null, FactValue::Int),
            Fact::ExecFailureMessage => FactValue::Str(&x.failure_message),
            Fact::ExecEvidence => FactValue::Evidence(&x.evidence),
            Fact::ExecCreateRejected => FactValue::Bool(rejection.is_some()),
            Fact::ExecCreateCode => rejection.map_or(FactValue::Null, |r| FactValue::Int(r.code)),
            Fact::ExecCreateReason => FactValue::Str(rejection.map_or("", |r| r.reason.as_str())),
            Fact::ExecCreateMessage => FactValue::Str(rejection.map_or("", |r| r.message.as_str())),
            Fact::ExecCreateCauses => {
                rejection.map_or(FactValue::StrList(&[]), |r| FactValue::StrList(&r.causes))
            }
            Fact::History => FactValue::Attempts(&self.facts.history),
            Fact::HistoryAttempts => FactValue::Int(d.attempts),
            Fact::HistoryConsecutiveFailures => FactValue::Int(d.consecutive_failures),
            Fact::HistoryLastFailureAt => time(d.last_failure_at),
            Fact::HistoryBlockingFailure => FactValue::Str(&d.blocking_failure),
            Fact::HistoryBlockingReason => FactValue::Str(&d.blocking_reason),
            Fact::BackoffActive => FactValue::Bool(d.backoff_active),
            Fact::BackoffUntil => time(d.backoff_until),
            Fact::BackoffDelaySeconds => d
                .backoff_delay
                .map_or(FactValue::Null, |x| FactValue::Int(x.as_secs() as i64)),
            Fact::BackoffExhausted => FactValue::Bool(d.backoff_exhausted),
            Fact::BackoffMaxConsecutiveFailures => FactValue::Int(self.max_consecutive_failures),
            Fact::CooldownActive => FactValue::Bool(d.cooldown_active),
            Fact::CooldownUntil => time(d.cooldown_until),
            Fact::CooldownBlockedBy => FactValue::Str(&d.cooldown_blocked_by),
            Fact::CooldownReleaseAt => time(d.release_at),
            Fact::CooldownReleaseDue => FactValue::Bool(d.release_due),
            Fact::CooldownOwnerReleaseAt => time(d.owner_release_at),
            Fact::CooldownOwnerReleasePending => FactValue::Bool(d.owner_release_pending),
            Fact::EnvEngines => FactValue::StrList(&self.facts.env.engines),
            Fact::EnvEngineAvailable => FactValue::Bool(
                self.facts
                    .env
                    .engines
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(&w.engine)),
            ),
            Fact::EnvExecutionNamespace => FactValue::Str(&self.facts.env.execution_namespace),
            Fact::EnvExecutionNamespacePhase => {
                FactValue::Str(&self.facts.env.execution_namespace_phase)
            }
            Fact::EnvDependencyCheck => FactValue::Bool(self.facts.env.dependency_check),
            Fact::EnvMissingDependencies => {
                FactValue::StrList(&self.facts.env.missing_dependencies)
            }
            Fact::FailureReason => f.map_or(FactValue::Null, |f| FactValue::Str(&f.reason)),
            Fact::FailureMessage => f.map_or(FactValue::Null, |f| FactValue::Str(&f.message)),
            Fact::FailureWasExecutionFailure => f.map_or(FactValue::Null, |f| {
                FactValue::Bool(f.was_execution_failure)
            }),
            Fact::FailureExitCode => f
                .and_then(|f| f.exit_code)
                .map_or(FactValue::Null, FactValue::Int),
            Fact::FailureRecommendation => {
                f.map_or(FactValue::Null, |f| FactValue::Str(&f.recommendation))
            }
            Fact::FailureFailedTaskName => f
                .and_then(|f| f.failed_task_name.as_deref())
                .map_or(FactValue::Null, FactValue::Str),
            Fact::FailureFailedPipelineTask => f
                .and_then(|f| f.failed_pipeline_task.as_deref())
                .map_or(FactValue::Null, FactValue::Str),
            Fact::FailureFailedTaskIndex => f
                .and_then(|f| f.failed_task_index)
                .map_or(FactValue::Null, FactValue::Int),
            Fact::FailureExecutionTime => f
                .and_then(|f| f.execution_time.as_deref())
                .map_or(FactValue::Null, FactValue::Str),
        }
    }
}
