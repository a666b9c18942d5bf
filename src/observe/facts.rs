//! `Facts`: the small, normalized view of everything around one
//! WorkflowExecution that the rules may read. Every field is documented in
//! `docs/facts.md` under the path the rules use (`wfe.targetResource`, ...).
//!
//! Facts are plain data: no Kubernetes types, no clock. Observe fills them;
//! the engine derives more (history counts, backoff, cooldown, failure) from
//! them and the rule set.

use jiff::Timestamp;
use serde::Serialize;

/// Everything the rules can know about one WorkflowExecution.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub wfe: WfeFacts,
    pub execution: ExecutionFacts,
    /// Other WorkflowExecutions on the same target, newest first.
    pub history: Vec<Attempt>,
    pub env: EnvFacts,
}

/// The WorkflowExecution being decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WfeFacts {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub generation: i64,
    pub created_at: Option<Timestamp>,
    /// `deletionTimestamp` is set.
    pub deleting: bool,
    /// `status.phase`; an empty phase reads as `Pending`.
    pub phase: String,
    pub target_resource: String,
    pub workflow_id: String,
    pub workflow_name: String,
    pub action_type: String,
    pub version: String,
    pub execution_bundle: String,
    /// `spec.workflowRef.executionEngine`, `""` when absent.
    pub engine: String,
    pub service_account_name: String,
    /// Number of `/`-separated parts of `targetResource` (0 when empty).
    pub target_parts: i64,
    /// 0-based index of the first empty part of `targetResource`, -1 if none.
    pub target_empty_part: i64,
    pub start_time: Option<Timestamp>,
    pub completion_time: Option<Timestamp>,
    /// `status.executionRef.name`, `""` when unset.
    pub execution_ref: String,
    /// Value of the `kubernaut.ai/clear-block` annotation, `""` when absent.
    pub clear_block: String,
    /// `spec.timesOutAt`.
    pub times_out_at: Option<Timestamp>,
    /// `status.failureDetails.wasExecutionFailure` of this WFE (terminal only).
    pub was_execution_failure: bool,
    /// `status.failureDetails.reason` of this WFE, `""` when none.
    pub failure_reason: String,
    /// `metadata.labels`/`annotations` are not facts; the current status is
    /// carried so the engine can compute the desired status and whether it
    /// changed (not readable by rules).
    #[serde(skip)]
    pub status: crate::api::WorkflowExecutionStatus,
    /// `spec.remediationRequestRef.name`: the audit correlation id.
    pub correlation_id: String,
    /// `spec.parameters` (unfiltered, as audited).
    pub parameters: std::collections::BTreeMap<String, String>,
}

/// The execution object found at this WFE's lock name (PipelineRun or Job),
/// whoever owns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionFacts {
    /// The object exists (in the cluster or the capture).
    pub exists: bool,
    /// `PipelineRun`, `Job`, or `""` when there is none.
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// Tekton API version of the primary object (`tekton.dev/v1`, `tekton.dev/v1beta1`), or `batch/v1`.
    pub api_version: String,
    /// `self` (labelled as this WFE's), `other` (another WFE's), `none` (no
    /// owner label), or `""` when the object does not exist.
    pub owner: String,
    /// Value of the `kubernaut.ai/workflow-execution` label.
    pub owner_name: String,
    /// Value of the `kubernaut.ai/source-namespace` label.
    pub owner_namespace: String,
    /// Phase of the owning WFE when it is another WFE we know of, else `""`.
    pub owner_phase: String,
    /// `Running`, `Completed` or `Failed` (see failure-classification §1).
    pub outcome: String,
    /// Reason and message of the primary object's deciding condition.
    pub reason: String,
    pub message: String,
    pub start_time: Option<Timestamp>,
    pub completion_time: Option<Timestamp>,
    /// Child references / pods known so far, and how many of them succeeded.
    pub total_tasks: i64,
    pub completed_tasks: i64,
    /// Job pod retries (`status.failed` while still running, or the pods beyond the first).
    pub retry_count: i64,
    /// Evidence that some step or container really started executing
    /// (failure-classification §3.2).
    pub started: bool,
    /// Child tasks that succeeded: TaskRuns and CustomRuns with
    /// `Succeeded=True` (objects or embedded entries), or a Job's
    /// `status.succeeded`.
    pub tasks_succeeded: i64,
    /// Nothing that could hide evidence of execution is missing: every
    /// referenced TaskRun is in the view and no child runs code observe
    /// cannot read (CustomRun, nested PipelineRun); for a Job, as many
    /// not-succeeded pods are present as it counts failed.
    pub evidence_complete: bool,
    /// Some task failed, was cancelled or timed out (TaskRun `Succeeded=False`
    /// other than `FailureIgnored`, or a failed Job pod/condition).
    pub task_stopped: bool,
    /// Children referenced by the primary object but missing from the view.
    pub children_missing: i64,
    pub failed_task: Option<FailedTask>,
    /// The first real (non-synthetic) non-zero exit code of the failed task.
    pub exit_code: Option<i64>,
    /// Exit code of the OOM-killed step, sidecar or (init) container of the
    /// failed task (Tekton) or of the newest OOM-killed Job pod.
    pub oom_exit_code: Option<i64>,
    /// The most specific human text about the failure (failed TaskRun message,
    /// container termination/waiting message), falling back to `message`.
    pub failure_message: String,
    /// Every reason/message found on the primary object, the failed task, its
    /// steps and pods (Tekton), or the Job and its pods.
    pub evidence: Vec<Evidence>,
}

/// The failed task (Tekton) or failing container (Job).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedTask {
    /// TaskRun object name, or the Job container name.
    pub name: String,
    /// `pipelineTaskName` (Tekton only).
    pub pipeline_task: Option<String>,
    /// Index in `childReferences` (every kind counted) or in the pod
    /// template's `containers`.
    pub index: i64,
}

/// One reason/message pair found somewhere in the execution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// Where it was found: `pipelineRun`, `taskRun`, `step`, `sidecar`,
    /// `container`, `initContainer`, `pod`, `podCondition`, `job`, `jobCondition`.
    pub source: String,
    /// The state it describes: `condition`, `terminated`, `waiting`,
    /// `lastTerminated`, `status`.
    pub state: String,
    /// The reason as written (compare case-insensitively).
    pub reason: String,
    pub message: String,
    /// Exit code for terminated containers/steps.
    pub exit_code: Option<i64>,
    /// Tekton wrote this termination itself (exit 1, reason = TaskRun reason).
    pub synthetic: bool,
    /// Name of the object or container it came from.
    pub name: String,
    /// The condition's `type` for `condition` items (`Succeeded`, `Failed`,
    /// `DisruptionTarget`, ...), `""` otherwise.
    #[serde(rename = "type")]
    pub condition_type: String,
}

/// Another WorkflowExecution on the same target.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub phase: String,
    /// `failureDetails.reason`, `""` when none.
    pub reason: String,
    pub was_execution_failure: bool,
    pub created_at: Option<Timestamp>,
    pub completion_time: Option<Timestamp>,
    /// Carries a non-empty `kubernaut.ai/clear-block` annotation.
    pub cleared: bool,
}

/// What the controller (or the dry-run flags) knows about its environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvFacts {
    /// Engines the controller can run (`job` always; `tekton` when its CRDs are discovered).
    pub engines: Vec<String>,
    pub execution_namespace: String,
    /// `Active`, `Terminating`, `Missing`, or `""` when the controller does
    /// not know (it cannot watch the namespace and no create told it).
    pub execution_namespace_phase: String,
    /// Whether the dependency check runs.
    pub dependency_check: bool,
    /// Declared dependencies that are missing or empty, e.g. `secret/db-creds`.
    pub missing_dependencies: Vec<String>,
    /// The API server's refusal of this WFE's execution object, when the
    /// controller just tried to create it (invariant 9: the answer is a fact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_rejection: Option<CreateRejection>,
}

impl Default for EnvFacts {
    fn default() -> Self {
        EnvFacts {
            engines: vec!["tekton".into(), "job".into()],
            execution_namespace: crate::api::DEFAULT_EXECUTION_NAMESPACE.into(),
            execution_namespace_phase: NAMESPACE_ACTIVE.into(),
            dependency_check: false,
            missing_dependencies: Vec::new(),
            create_rejection: None,
        }
    }
}

/// `env.executionNamespacePhase` of a namespace that accepts new objects.
pub const NAMESPACE_ACTIVE: &str = "Active";
/// … of a namespace being deleted (creates are refused with 403).
pub const NAMESPACE_TERMINATING: &str = "Terminating";
/// … of a namespace that does not exist (creates are refused with 404).
pub const NAMESPACE_MISSING: &str = "Missing";

/// A create refused by the API server, as its `Status` says it: the HTTP
/// code, the `reason` (`Invalid`, `Forbidden`, `BadRequest`, `NotFound`,
/// ...), the message, and one line per `details.causes` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRejection {
    pub code: i64,
    pub reason: String,
    pub message: String,
    pub causes: Vec<String>,
}
