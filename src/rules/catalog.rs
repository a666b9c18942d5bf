//! The catalogue of facts the rules can read: every path, its type and its
//! meaning. Matchers and templates resolve paths against this table when a
//! rule set is loaded, so a typo is a load error at `file:line:col`, never a
//! silent `null` at run time. `docs/facts.md` documents the same table.

use serde::Serialize;

/// The type of a fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FactType {
    Bool,
    Int,
    Str,
    /// An RFC 3339 instant, or null.
    Time,
    /// A list of strings.
    StrList,
    /// A list of evidence items (see [`EvidenceField`]).
    EvidenceList,
    /// A list of attempts (see [`AttemptField`]).
    AttemptList,
}

macro_rules! facts {
    ($( $variant:ident => $path:literal : $ty:ident, $doc:literal; )*) => {
        /// A fact the rules can read, by its path.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Fact { $( #[doc = $doc] $variant, )* }

        impl Fact {
            /// Every fact, in documentation order.
            pub const ALL: &'static [Fact] = &[ $( Fact::$variant, )* ];

            /// The dotted path rules use.
            pub fn path(self) -> &'static str {
                match self { $( Fact::$variant => $path, )* }
            }

            pub fn ty(self) -> FactType {
                match self { $( Fact::$variant => FactType::$ty, )* }
            }

            pub fn doc(self) -> &'static str {
                match self { $( Fact::$variant => $doc, )* }
            }

            /// Resolve a dotted path.
            pub fn from_path(path: &str) -> Option<Fact> {
                match path { $( $path => Some(Fact::$variant), )* _ => None }
            }
        }
    };
}

facts! {
    Now => "now": Time, "The evaluation instant (the controller's clock, or `--now` / a test's `now`).";
    WfeName => "wfe.name": Str, "Name of the WorkflowExecution.";
    WfeNamespace => "wfe.namespace": Str, "Its namespace.";
    WfeUid => "wfe.uid": Str, "Its uid (the seed of the backoff jitter).";
    WfePhase => "wfe.phase": Str, "Current `status.phase`; empty reads as `Pending`.";
    WfeDeleting => "wfe.deleting": Bool, "`metadata.deletionTimestamp` is set.";
    WfeTargetResource => "wfe.targetResource": Str, "`spec.targetResource`, the lock key.";
    WfeTargetParts => "wfe.targetParts": Int, "Number of `/`-separated parts of the target (0 when empty).";
    WfeTargetEmptyPart => "wfe.targetEmptyPart": Int, "0-based index of the first empty part of the target, -1 if none.";
    WfeWorkflowId => "wfe.workflowId": Str, "`spec.workflowRef.workflowId`.";
    WfeWorkflowName => "wfe.workflowName": Str, "`spec.workflowRef.workflowName`.";
    WfeActionType => "wfe.actionType": Str, "`spec.workflowRef.actionType`.";
    WfeVersion => "wfe.version": Str, "`spec.workflowRef.version`.";
    WfeExecutionBundle => "wfe.executionBundle": Str, "`spec.workflowRef.executionBundle`.";
    WfeEngine => "wfe.engine": Str, "`spec.workflowRef.executionEngine` (`tekton`, `job`, or empty).";
    WfeStartTime => "wfe.startTime": Time, "`status.startTime`.";
    WfeCompletionTime => "wfe.completionTime": Time, "`status.completionTime`.";
    WfeExecutionRef => "wfe.executionRef": Str, "`status.executionRef.name`, empty when unset.";
    WfeClearBlock => "wfe.clearBlock": Str, "Value of the `kubernaut.ai/clear-block` annotation.";
    WfeTimesOutAt => "wfe.timesOutAt": Time, "`spec.timesOutAt`.";
    WfeLockName => "wfe.lockName": Str, "The deterministic execution object name for the target (`wfe-` + 16 hex of sha256).";
    ExecExists => "execution.exists": Bool, "An execution object exists at this WFE's lock name.";
    ExecKind => "execution.kind": Str, "`PipelineRun`, `Job`, or empty.";
    ExecName => "execution.name": Str, "Its name (`wfe-` + 16 hex of sha256(target)).";
    ExecApiVersion => "execution.apiVersion": Str, "Its apiVersion (`tekton.dev/v1`, `tekton.dev/v1beta1`, `batch/v1`).";
    ExecOwner => "execution.owner": Str, "`self`, `other` (another WFE's label), `none` (unlabelled), or empty.";
    ExecOwnerName => "execution.ownerName": Str, "The `kubernaut.ai/workflow-execution` label value.";
    ExecOwnerPhase => "execution.ownerPhase": Str, "Phase of the owning WFE when it is another known WFE, else empty.";
    ExecOutcome => "execution.outcome": Str, "`Running`, `Completed` or `Failed`; empty when there is no object.";
    ExecReason => "execution.reason": Str, "Reason of the primary object's deciding condition.";
    ExecMessage => "execution.message": Str, "Message of that condition.";
    ExecStartTime => "execution.startTime": Time, "`status.startTime` of the execution object.";
    ExecCompletionTime => "execution.completionTime": Time, "`status.completionTime` of the execution object.";
    ExecTotalTasks => "execution.totalTasks": Int, "Child TaskRuns/pods known so far.";
    ExecCompletedTasks => "execution.completedTasks": Int, "Of those, how many succeeded.";
    ExecStarted => "execution.started": Bool, "Some step or container really started executing (a Tekton synthetic termination only with a real `startedAt`).";
    ExecTasksSucceeded => "execution.tasksSucceeded": Int, "Child TaskRuns/CustomRuns with `Succeeded=True` (objects or embedded), or the Job's `status.succeeded`.";
    ExecEvidenceComplete => "execution.evidenceComplete": Bool, "No evidence of execution can be missing: every referenced TaskRun is present and no CustomRun/nested PipelineRun; a Job has as many not-succeeded pods as it counts failed.";
    ExecTaskStopped => "execution.taskStopped": Bool, "Some task failed, was cancelled or timed out (not `FailureIgnored`).";
    ExecChildrenMissing => "execution.childrenMissing": Int, "Children referenced by the run but absent (pruned) from the view.";
    ExecFailedTaskName => "execution.failedTaskName": Str, "TaskRun name of the failed task, or the failing Job container.";
    ExecFailedPipelineTask => "execution.failedPipelineTask": Str, "`pipelineTaskName` of the failed TaskRun.";
    ExecFailedTaskIndex => "execution.failedTaskIndex": Int, "Its index in `childReferences` / the pod template (null when none).";
    ExecExitCode => "execution.exitCode": Int, "First real non-zero exit code of the failed task (null when none).";
    ExecOomExitCode => "execution.oomExitCode": Int, "Exit code of the OOM-killed step, sidecar or (init) container of the failed task or Job pod (null when none).";
    ExecFailureMessage => "execution.failureMessage": Str, "Most specific failure text (failed TaskRun or container), else the run's message.";
    ExecEvidence => "execution.evidence": EvidenceList, "Every reason/message found on the run, the failed task, its steps and pods.";
    ExecCreateRejected => "execution.createRejected": Bool, "The API server just refused to create this WFE's execution object (set only in the decision that follows the refusal).";
    ExecCreateCode => "execution.createCode": Int, "HTTP code of that refusal (400, 403, 404, 422, ...); null when none.";
    ExecCreateReason => "execution.createReason": Str, "`reason` of its Status (`Invalid`, `Forbidden`, `BadRequest`, `NotFound`, ...).";
    ExecCreateMessage => "execution.createMessage": Str, "The API server's message, as sent (it names the fields at fault).";
    ExecCreateCauses => "execution.createCauses": StrList, "`details.causes` of the Status, one `message` per cause (field errors of an `Invalid` answer).";
    History => "history": AttemptList, "Other WFEs on the same target, newest first.";
    HistoryAttempts => "history.attempts": Int, "How many of them are attempts (per the History rules).";
    HistoryConsecutiveFailures => "history.consecutiveFailures": Int, "Counted failures since the last success or cleared block (per the Backoff rules).";
    HistoryLastFailureAt => "history.lastFailureAt": Time, "Completion time of the newest counted failure.";
    HistoryBlockingFailure => "history.blockingFailure": Str, "Name of the newest attempt if it failed during execution and is not cleared, else empty.";
    HistoryBlockingReason => "history.blockingReason": Str, "Its failure reason.";
    BackoffActive => "backoff.active": Bool, "A backoff delay is running (`now < backoff.until`).";
    BackoffUntil => "backoff.until": Time, "End of the backoff delay (null when there are no counted failures).";
    BackoffDelaySeconds => "backoff.delaySeconds": Int, "The jittered delay in seconds.";
    BackoffExhausted => "backoff.exhausted": Bool, "`history.consecutiveFailures >= backoff.maxConsecutiveFailures`.";
    BackoffMaxConsecutiveFailures => "backoff.maxConsecutiveFailures": Int, "The configured limit.";
    CooldownActive => "cooldown.active": Bool, "An attempt on the target finished less than the cooldown ago.";
    CooldownUntil => "cooldown.until": Time, "When the longest running cooldown ends.";
    CooldownBlockedBy => "cooldown.blockedBy": Str, "The WFE whose cooldown ends last.";
    CooldownReleaseAt => "cooldown.releaseAt": Time, "This WFE's own lock release time (`completionTime + period`).";
    CooldownReleaseDue => "cooldown.releaseDue": Bool, "`now >= cooldown.releaseAt`.";
    CooldownOwnerReleaseAt => "cooldown.ownerReleaseAt": Time, "When the other, finished WFE owning the execution object releases it (its `completionTime + period`), plus `staleLockGrace`; null when the owner is unknown or not finished.";
    CooldownOwnerReleasePending => "cooldown.ownerReleasePending": Bool, "`now < cooldown.ownerReleaseAt`: the owner is expected to release the lock itself.";
    EnvEngines => "env.engines": StrList, "Engines the controller can run.";
    EnvEngineAvailable => "env.engineAvailable": Bool, "`wfe.engine` is one of `env.engines`.";
    EnvExecutionNamespace => "env.executionNamespace": Str, "Namespace of execution objects.";
    EnvExecutionNamespacePhase => "env.executionNamespacePhase": Str, "`Active`, `Terminating`, `Missing`, or empty when unknown.";
    EnvDependencyCheck => "env.dependencyCheck": Bool, "The dependency check is on.";
    EnvMissingDependencies => "env.missingDependencies": StrList, "Declared dependencies missing or empty (`secret/x`, `configmap/y`).";
    FailureReason => "failure.reason": Str, "The classified reason (after classification only).";
    FailureMessage => "failure.message": Str, "The failure message.";
    FailureWasExecutionFailure => "failure.wasExecutionFailure": Bool, "Whether the failure happened during execution.";
    FailureExitCode => "failure.exitCode": Int, "Exit code reported with the failure (null when none).";
    FailureRecommendation => "failure.recommendation": Str, "The Summary rules' recommendation for the reason.";
    FailureFailedTaskName => "failure.failedTaskName": Str, "Failed TaskRun / container reported with the failure (classified failures only).";
    FailureFailedPipelineTask => "failure.failedPipelineTask": Str, "Its pipeline task name.";
    FailureFailedTaskIndex => "failure.failedTaskIndex": Int, "Its index.";
    FailureExecutionTime => "failure.executionTime": Str, "Execution time before the failure (Go duration, whole seconds), when the WFE had started.";
}

macro_rules! item_fields {
    ($name:ident, $( $variant:ident => $path:literal : $ty:ident, $doc:literal; )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $( #[doc = $doc] $variant, )* }
        impl $name {
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];
            pub fn path(self) -> &'static str { match self { $( $name::$variant => $path, )* } }
            pub fn ty(self) -> FactType { match self { $( $name::$variant => FactType::$ty, )* } }
            pub fn doc(self) -> &'static str { match self { $( $name::$variant => $doc, )* } }
            pub fn from_path(path: &str) -> Option<$name> {
                match path { $( $path => Some($name::$variant), )* _ => None }
            }
        }
    };
}

item_fields! { EvidenceField,
    Source => "source": Str, "`pipelineRun`, `taskRun`, `step`, `sidecar`, `container`, `initContainer`, `pod`, `podCondition`, `job`, `jobCondition`.";
    State => "state": Str, "`condition`, `terminated`, `terminationReason`, `waiting`, `lastTerminated`, `status`.";
    Reason => "reason": Str, "The reason as written.";
    Message => "message": Str, "The message.";
    ExitCode => "exitCode": Int, "Exit code of a terminated step/container.";
    Synthetic => "synthetic": Bool, "Tekton wrote this step termination itself (not a real exit).";
    Name => "name": Str, "Object, step or container name.";
    Type => "type": Str, "The condition type of a `condition` item (`Succeeded`, `Failed`, `DisruptionTarget`, ...), else empty.";
}

item_fields! { AttemptField,
    Name => "name": Str, "Name of the other WFE.";
    Namespace => "namespace": Str, "Its namespace.";
    Phase => "phase": Str, "Its phase.";
    Reason => "reason": Str, "Its `failureDetails.reason`.";
    WasExecutionFailure => "wasExecutionFailure": Bool, "Its `failureDetails.wasExecutionFailure`.";
    CompletionTime => "completionTime": Time, "Its `status.completionTime`.";
    Cleared => "cleared": Bool, "It carries a non-empty `kubernaut.ai/clear-block` annotation.";
}
