//! The `WorkflowExecution` custom resource (`kubernaut.ai/v1alpha1`).
//!
//! Field names and meanings follow kubernaut's CRD (see
//! `docs/crd.md`), with the deliberate changes of the spec: no `clusterID`,
//! `executionEngine` limited to `tekton`/`job`, a PascalCase pattern instead of
//! an enum for failure reasons, and the backoff / provenance status fields.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired execution of one remediation workflow against one target.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "kubernaut.ai",
    version = "v1alpha1",
    kind = "WorkflowExecution",
    plural = "workflowexecutions",
    singular = "workflowexecution",
    shortname = "wfe",
    namespaced,
    status = "WorkflowExecutionStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Workflow","type":"string","jsonPath":".spec.workflowRef.workflowName"}"#,
    printcolumn = r#"{"name":"WorkflowID","type":"string","jsonPath":".spec.workflowRef.workflowId","priority":1}"#,
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.targetResource"}"#,
    printcolumn = r#"{"name":"Duration","type":"string","jsonPath":".status.duration"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowExecutionSpec {
    /// The parent RemediationRequest; its name is the audit correlation id.
    pub remediation_request_ref: ObjectReference,
    /// The catalog snapshot of the workflow to run.
    pub workflow_ref: WorkflowRef,
    /// The lock key: `namespace/kind/name` or `kind/name`. Case-sensitive.
    pub target_resource: String,
    /// Workflow parameters (UPPER_SNAKE_CASE keys by convention). The keys
    /// become environment variable names of the Job's container, so they
    /// must be valid ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "parameters_schema")]
    pub parameters: Option<BTreeMap<String, String>>,
    /// The confidence of the selection; kept for audit only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The rationale of the selection; kept for audit only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    /// Absolute execution deadline; becomes the Job's activeDeadlineSeconds and
    /// the PipelineRun's `timeouts.pipeline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times_out_at: Option<Time>,
}

/// The execution snapshot of a catalog workflow.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRef {
    pub workflow_id: String,
    pub workflow_name: String,
    pub action_type: String,
    pub version: String,
    /// Digest-pinned OCI reference: the Tekton bundle, or the Job's image.
    pub execution_bundle: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_bundle_digest: Option<String>,
    /// `tekton` or `job`. Optional at admission on purpose: an empty engine is
    /// refused by the rules with a clear ConfigurationError.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "engine_schema")]
    pub execution_engine: Option<String>,
    /// Engine-specific configuration; accepted and ignored (no engine uses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_schema")]
    pub engine_config: Option<serde_json::Value>,
    /// A ServiceAccount name (a DNS subdomain) in the execution namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_dns_subdomain_schema")]
    pub service_account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<WorkflowDependencies>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Allowlist of parameter names: absent/null keeps every parameter, an
    /// empty map strips them all.
    #[serde(default)]
    #[schemars(schema_with = "declared_names_schema")]
    pub declared_parameter_names: Option<BTreeMap<String, bool>>,
}

/// Secrets and ConfigMaps the workflow needs in the execution namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowDependencies {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<NamedRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<NamedRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
pub struct NamedRef {
    /// A Secret or ConfigMap name: a DNS subdomain.
    #[schemars(schema_with = "dns_subdomain_schema")]
    pub name: String,
}

/// Observed state, written only by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowExecutionStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "phase_schema")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// completion − start in whole seconds, Go duration style (`1m30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_ref: Option<ExecutionRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_status: Option<ExecutionStatusSummary>,
    /// Flat mirror of `failureDetails.reason` (read by the orchestrator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_details: Option<FailureDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_clearance: Option<BlockClearance>,
    /// Name of the WFE whose execution object this one collided with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplicated_by: Option<String>,
    /// Consecutive pre-execution failures on the target since its last
    /// success, derived from history on each reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<i32>,
    /// When a held WFE may start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_allowed_execution: Option<Time>,
    /// Why the WFE is held or was refused (mirrors the Blocked condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_reason: Option<String>,
    /// Provenance of the last decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<RulesProvenance>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
pub struct ExecutionRef {
    pub name: String,
}

/// Progress and outcome of the execution object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatusSummary {
    /// `True`, `False` or `Unknown`.
    #[schemars(schema_with = "tristate_schema")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default)]
    pub completed_tasks: i32,
    #[serde(default)]
    pub total_tasks: i32,
    #[serde(default)]
    pub retry_count: i32,
}

/// Why and where an execution failed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureDetails {
    /// Position of the failed TaskRun in `childReferences` (every kind
    /// counted), or of the failing container in the Job's pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_task_index: Option<i32>,
    /// The TaskRun object name, or the Job container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_task_name: Option<String>,
    /// The pipeline task name of the failed TaskRun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_pipeline_task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step_name: Option<String>,
    /// A PascalCase category; the standard set is documented in
    /// `docs/failure-reasons.md`, rules may add more.
    #[schemars(schema_with = "reason_schema")]
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub failed_at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_time_before_failure: Option<String>,
    pub natural_language_summary: String,
    #[serde(default)]
    pub was_execution_failure: bool,
}

/// A manual clearance of a block (kept for compatibility; the
/// `kubernaut.ai/clear-block` annotation is what the rules read).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct BlockClearance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_at: Option<Time>,
    pub cleared_by: String,
    pub clear_reason: String,
    pub clear_method: String,
}

/// Which rule set and rule made the last decision.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
pub struct RulesProvenance {
    /// Content hash of the rule set (`sha256:` + 16 hex).
    pub revision: String,
    /// `file#rule-name` of the deciding rule.
    pub rule: String,
}

fn enum_schema(values: &[&str], nullable: bool) -> schemars::Schema {
    let mut v: Vec<serde_json::Value> = values.iter().map(|s| serde_json::json!(s)).collect();
    if nullable {
        v.push(serde_json::Value::Null);
    }
    let mut s = serde_json::json!({"type": "string", "enum": v});
    if nullable {
        s["nullable"] = serde_json::json!(true);
    }
    schemars::Schema::try_from(s).unwrap_or_default()
}

fn engine_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    enum_schema(&["tekton", "job"], false)
}

fn phase_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    enum_schema(&["Pending", "Running", "Completed", "Failed"], false)
}

fn tristate_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    enum_schema(&["True", "False", "Unknown"], false)
}

fn reason_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::Schema::try_from(serde_json::json!({
        "type": "string",
        "pattern": "^[A-Z][A-Za-z0-9]*$",
        "maxLength": 64
    }))
    .unwrap_or_default()
}

/// `IsEnvVarName` of apimachinery (the strict form every release accepts),
/// as a CEL rule over the keys.
pub const PARAMETER_NAME_RULE: &str = "self.all(k, size(k) <= 253 && k.matches('^[-._a-zA-Z][-._a-zA-Z0-9]*$') && k != '.' && !k.startsWith('..'))";
/// Its message.
pub const PARAMETER_NAME_MESSAGE: &str = "parameter names must be valid environment variable names: letters, digits, '_', '-' or '.', not starting with a digit, not '.' and not starting with '..' (they become the Job's environment variables)";
/// At most this many parameters (also bounds the rule's estimated cost).
pub const MAX_PARAMETERS: u64 = 64;
/// A DNS subdomain (`IsDNS1123Subdomain`).
pub const DNS_SUBDOMAIN_PATTERN: &str =
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

fn parameters_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::Schema::try_from(serde_json::json!({
        "type": "object",
        "nullable": true,
        "description": "Workflow parameters (UPPER_SNAKE_CASE keys by convention). The keys become environment variable names of the Job's container, so they must be valid ones.",
        "maxProperties": MAX_PARAMETERS,
        "additionalProperties": {"type": "string"},
        "x-kubernetes-validations": [{
            "rule": PARAMETER_NAME_RULE,
            "message": PARAMETER_NAME_MESSAGE,
        }],
    }))
    .unwrap_or_default()
}

fn dns_subdomain_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::Schema::try_from(serde_json::json!({
        "type": "string",
        "maxLength": 253,
        "pattern": DNS_SUBDOMAIN_PATTERN,
    }))
    .unwrap_or_default()
}

fn optional_dns_subdomain_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = dns_subdomain_schema(g);
    s.insert("nullable".into(), serde_json::json!(true));
    s
}

fn preserve_unknown_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::Schema::try_from(serde_json::json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    }))
    .unwrap_or_default()
}

fn declared_names_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::Schema::try_from(serde_json::json!({
        "type": "object",
        "nullable": true,
        "additionalProperties": {"type": "boolean"}
    }))
    .unwrap_or_default()
}
