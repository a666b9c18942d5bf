//! Audit records (kubernaut's four event types, §11), each with the
//! idempotency key `<wfe uid>/<event type>` so a replay is recognisable.
//!
//! The payload is typed: building it on every decision costs a few string
//! copies, and it serializes to the same JSON kubernaut's DataStorage expects.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use super::outcome::FailureOutcome;
use crate::observe::Facts;
use crate::rules::SummaryPolicy;

pub const SELECTION_COMPLETED: &str = "workflowexecution.selection.completed";
pub const EXECUTION_STARTED: &str = "workflowexecution.execution.started";
pub const WORKFLOW_COMPLETED: &str = "workflowexecution.workflow.completed";
pub const WORKFLOW_FAILED: &str = "workflowexecution.workflow.failed";

/// An audit record (kubernaut's four event types), with its idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// e.g. `workflowexecution.execution.started`.
    pub event_type: String,
    /// `<wfe uid>/<event type>`.
    pub idempotency_key: String,
    pub payload: AuditPayload,
}

/// What a record describes beyond the WFE itself.
pub struct AuditInput<'a> {
    /// The phase the record reports (the phase left for `execution.started`,
    /// the phase reached for the end of the workflow).
    pub phase: &'a str,
    pub execution_name: Option<&'a str>,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub duration: Option<&'a str>,
    pub failure: Option<&'a FailureOutcome>,
}

/// The payload of an audit record: a typed workflow event, or (for sinks and
/// tests that relay foreign records) any JSON value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AuditPayload {
    Workflow(Box<WorkflowAudit>),
    Raw(serde_json::Value),
}

impl From<serde_json::Value> for AuditPayload {
    fn from(v: serde_json::Value) -> Self {
        AuditPayload::Raw(v)
    }
}

/// The common envelope (§11).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowAudit {
    pub version: &'static str,
    pub event_type: &'static str,
    pub event_timestamp: Timestamp,
    pub event_category: &'static str,
    pub event_action: &'static str,
    pub event_outcome: &'static str,
    pub actor_type: &'static str,
    pub actor_id: &'static str,
    pub resource_type: &'static str,
    pub resource_id: String,
    pub correlation_id: String,
    pub namespace: String,
    pub event_data: AuditData,
}

/// `event_data`: the workflow and, depending on the event, the execution
/// and the failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditData {
    pub workflow_id: String,
    pub workflow_version: String,
    pub workflow_name: String,
    pub container_image: String,
    pub execution_name: String,
    pub phase: String,
    pub target_resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipelinerun_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_task_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_details: Option<ErrorDetails>,
}

/// `error_details` of a failure record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDetails {
    pub component: &'static str,
    pub code: String,
    pub message: String,
    pub retry_possible: bool,
}

fn event_type_name(event_type: &str) -> &'static str {
    match event_type {
        SELECTION_COMPLETED => SELECTION_COMPLETED,
        EXECUTION_STARTED => EXECUTION_STARTED,
        WORKFLOW_COMPLETED => WORKFLOW_COMPLETED,
        _ => WORKFLOW_FAILED,
    }
}

/// Build one record; a failure's error code comes from the Summary rules.
pub fn record(
    facts: &Facts,
    summary: &SummaryPolicy,
    event_type: &str,
    now: Timestamp,
    input: &AuditInput,
) -> AuditRecord {
    let w = &facts.wfe;
    let event_type = event_type_name(event_type);
    let (action, outcome) = match event_type {
        SELECTION_COMPLETED => ("completed", "success"),
        EXECUTION_STARTED => ("started", "success"),
        WORKFLOW_COMPLETED => ("completed", "success"),
        _ => ("failed", "failure"),
    };
    let executing = event_type != SELECTION_COMPLETED;
    let f = input.failure;
    let data = AuditData {
        workflow_id: w.workflow_id.clone(),
        workflow_version: w.version.clone(),
        workflow_name: w.workflow_name.clone(),
        container_image: w.execution_bundle.clone(),
        execution_name: w.name.clone(),
        phase: input.phase.to_string(),
        target_resource: w.target_resource.clone(),
        action_type: executing.then(|| w.action_type.clone()),
        parameters: executing.then(|| w.parameters.clone()),
        pipelinerun_name: input
            .execution_name
            .filter(|_| executing)
            .map(str::to_string),
        started_at: input.started_at,
        completed_at: input.completed_at,
        duration: input.duration.map(str::to_string),
        failure_reason: f.map(|f| f.reason.clone()),
        failure_message: f.map(|f| f.message.clone()),
        failed_task_name: f.and_then(|f| f.failed_task_name.clone()),
        error_details: f.map(|f| error_details(f, summary)),
    };
    AuditRecord {
        event_type: event_type.to_string(),
        idempotency_key: format!("{}/{}", w.uid, event_type),
        payload: AuditPayload::Workflow(Box::new(WorkflowAudit {
            version: "1.0",
            event_type,
            event_timestamp: now,
            event_category: "workflowexecution",
            event_action: action,
            event_outcome: outcome,
            actor_type: "service",
            actor_id: "workflowexecution-controller",
            resource_type: "WorkflowExecution",
            resource_id: w.name.clone(),
            correlation_id: w.correlation_id.clone(),
            namespace: w.namespace.clone(),
            event_data: data,
        })),
    }
}

/// Code and retryability by reason (the Summary's `auditErrors`); without a
/// fixed retryability a retry is possible unless the workflow ran.
fn error_details(f: &FailureOutcome, summary: &SummaryPolicy) -> ErrorDetails {
    let e = summary.audit_error(&f.reason);
    let code = e.code.clone();
    let retry = e.retry_possible.unwrap_or(!f.was_execution_failure);
    let mut message = match &f.failed_task_name {
        Some(t) => format!("Pipeline failed at task '{t}'"),
        None => "Workflow execution failed".to_string(),
    };
    if !f.message.is_empty() {
        message.push_str(": ");
        message.push_str(&f.message);
    }
    ErrorDetails {
        component: "workflowexecution",
        code,
        message,
        retry_possible: retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_serializes_like_datastorage_expects() {
        let mut facts = Facts::default();
        facts.wfe.uid = "u-1".into();
        facts.wfe.name = "wfe-1".into();
        facts.wfe.namespace = "ns".into();
        facts.wfe.correlation_id = "rr-1".into();
        let now: Timestamp = "2026-03-01T10:00:00Z".parse().unwrap();
        let rules = crate::rules::load_sources(crate::rules::embedded::sources()).unwrap();
        let r = record(
            &facts,
            &rules.summary,
            EXECUTION_STARTED,
            now,
            &AuditInput {
                phase: "Waiting",
                execution_name: Some("wfe-abc"),
                started_at: Some(now),
                completed_at: None,
                duration: None,
                failure: None,
            },
        );
        assert_eq!(r.idempotency_key, "u-1/workflowexecution.execution.started");
        let v = serde_json::to_value(&r.payload).unwrap();
        assert_eq!(v["event_type"], EXECUTION_STARTED);
        assert_eq!(v["event_action"], "started");
        assert_eq!(v["correlation_id"], "rr-1");
        assert_eq!(v["event_timestamp"], "2026-03-01T10:00:00Z");
        assert_eq!(v["event_data"]["pipelinerun_name"], "wfe-abc");
        assert_eq!(v["event_data"]["phase"], "Waiting");
        assert!(v["event_data"].get("failure_reason").is_none());
    }
}
