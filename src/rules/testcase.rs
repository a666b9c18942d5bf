//! The `RuleTest` document: test cases that live beside the rules, with their
//! inputs inline (a rules directory ships as one flat ConfigMap).

use serde::Deserialize;

use super::model::RuleId;

/// Keys an `expect:` mapping may hold (the engine's test view has exactly
/// these; a unit test in `engine::testing` keeps the two in step).
pub const EXPECT_KEYS: &[&str] = &[
    "outcome",
    "reason",
    "wasExecutionFailure",
    "failedTaskName",
    "failedPipelineTask",
    "failedTaskIndex",
    "exitCode",
    "message",
    "summary",
    "phase",
    "rulesRevision",
    "rule",
    "classificationRule",
    "hold",
    "holdUntil",
    "requeueAfterSeconds",
    "effects",
    "events",
    "audit",
    "consecutiveFailures",
    "blockedReason",
    "deduplicatedBy",
    "statusChanged",
    "rulesError",
];

/// Keys of the short form of a history entry.
pub const HISTORY_KEYS: &[&str] = &[
    "name",
    "namespace",
    "phase",
    "reason",
    "wasExecutionFailure",
    "completionTime",
    "cleared",
    "target",
];

/// Keys of a case's `env:` overrides.
pub const ENV_KEYS: &[&str] = &[
    "engines",
    "missingDependencies",
    "dependencyCheck",
    "executionNamespace",
    "executionNamespacePhase",
    "createRejection",
];

/// A loaded `RuleTest` document.
#[derive(Debug, Clone)]
pub struct RuleTestDoc {
    pub id: RuleId,
    pub cases: Vec<TestCase>,
}

/// One case: a single decision, or a virtual-time sequence.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    /// Source line of the case (filled by the loader).
    #[serde(skip)]
    pub line: u32,
    /// Evaluation instant: RFC 3339, or relative to the policy
    /// (`2026-03-01T10:00:00Z + cooldown + 2s`). Default: the newest
    /// observed timestamp of the inputs, else 2026-01-01T00:00:00Z.
    #[serde(default)]
    pub now: Option<String>,
    /// The WFE (a full object or only the fields that matter; the rest is
    /// filled with a valid default). Default: a Running WFE of the capture.
    #[serde(default)]
    pub wfe: Option<serde_json::Value>,
    /// Inline capture: multi-document YAML of the execution and its children.
    #[serde(default)]
    pub capture: Option<String>,
    /// Other WFEs on the target (inline objects or the short form).
    #[serde(default)]
    pub history: Vec<serde_json::Value>,
    /// Environment overrides: `engines`, `missingDependencies`, `dependencyCheck`.
    #[serde(default)]
    pub env: Option<serde_json::Value>,
    /// Expected result; only the keys given are compared.
    #[serde(default)]
    pub expect: Option<serde_json::Value>,
    /// Virtual-time sequence on one target; each step is a new WFE.
    #[serde(default)]
    pub sequence: Vec<SequenceStep>,
}

/// One step of a sequence: a new WFE on the target at `at` (or, with
/// `again`, the previous step's WFE decided again).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SequenceStep {
    /// RFC 3339, or relative: `+30s` after the previous step.
    pub at: String,
    /// Decide the previous step's WFE again (as the controller re-decides a
    /// WFE it already wrote) instead of creating a new one.
    #[serde(default)]
    pub again: bool,
    /// What its execution ends as, if it starts (inline capture).
    #[serde(default)]
    pub capture: Option<String>,
    /// Overrides of the step's WFE.
    #[serde(default)]
    pub wfe: Option<serde_json::Value>,
    /// Mark the newest failed WFE of the sequence as cleared before this step.
    #[serde(default)]
    pub clear_block: Option<String>,
    /// Expected result (required in a rules directory; optional in a
    /// `diff --scenarios` file).
    #[serde(default)]
    pub expect: Option<serde_json::Value>,
}
