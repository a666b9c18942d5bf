//! Audit records (kubernaut's four event types, §11), each with the
//! idempotency key `<wfe uid>/<event type>` so a replay is recognisable.

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::decision::{AuditRecord, FailureOutcome};
use crate::observe::Facts;

pub const SELECTION_COMPLETED: &str = "workflowexecution.selection.completed";
pub const EXECUTION_STARTED: &str = "workflowexecution.execution.started";
pub const WORKFLOW_COMPLETED: &str = "workflowexecution.workflow.completed";
pub const WORKFLOW_FAILED: &str = "workflowexecution.workflow.failed";

/// What a record describes beyond the WFE itself.
pub struct AuditInput<'a> {
    pub phase: &'a str,
    pub execution_name: Option<&'a str>,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub duration: Option<&'a str>,
    pub failure: Option<&'a FailureOutcome>,
}

fn base_payload(facts: &Facts, input: &AuditInput) -> Map<String, Value> {
    let w = &facts.wfe;
    let mut m = Map::new();
    m.insert("workflow_id".into(), json!(w.workflow_id));
    m.insert("workflow_version".into(), json!(w.version));
    m.insert("workflow_name".into(), json!(w.workflow_name));
    m.insert("container_image".into(), json!(w.execution_bundle));
    m.insert("execution_name".into(), json!(w.name));
    m.insert("phase".into(), json!(input.phase));
    m.insert("target_resource".into(), json!(w.target_resource));
    m
}

/// Build one record.
pub fn record(facts: &Facts, event_type: &str, now: Timestamp, input: &AuditInput) -> AuditRecord {
    let w = &facts.wfe;
    let mut data = base_payload(facts, input);
    let (action, outcome) = match event_type {
        SELECTION_COMPLETED => ("completed", "success"),
        EXECUTION_STARTED => ("started", "success"),
        WORKFLOW_COMPLETED => ("completed", "success"),
        _ => ("failed", "failure"),
    };
    if event_type != SELECTION_COMPLETED {
        data.insert("action_type".into(), json!(w.action_type));
        data.insert("parameters".into(), json!(w.parameters));
        if let Some(n) = input.execution_name {
            data.insert("pipelinerun_name".into(), json!(n));
        }
    }
    if let Some(t) = input.started_at {
        data.insert("started_at".into(), json!(t.to_string()));
    }
    if let Some(t) = input.completed_at {
        data.insert("completed_at".into(), json!(t.to_string()));
    }
    if let Some(d) = input.duration {
        data.insert("duration".into(), json!(d));
    }
    if let Some(f) = input.failure {
        data.insert("failure_reason".into(), json!(f.reason));
        data.insert("failure_message".into(), json!(f.message));
        if let Some(t) = &f.failed_task_name {
            data.insert("failed_task_name".into(), json!(t));
        }
        data.insert("error_details".into(), error_details(f));
    }
    let payload = json!({
        "version": "1.0",
        "event_type": event_type,
        "event_timestamp": now.to_string(),
        "event_category": "workflowexecution",
        "event_action": action,
        "event_outcome": outcome,
        "actor_type": "service",
        "actor_id": "workflowexecution-controller",
        "resource_type": "WorkflowExecution",
        "resource_id": w.name,
        "correlation_id": w.correlation_id,
        "namespace": w.namespace,
        "event_data": Value::Object(data),
    });
    AuditRecord {
        event_type: event_type.to_string(),
        idempotency_key: format!("{}/{}", w.uid, event_type),
        payload,
    }
}

/// `error_details` of a failure record: code and retryability by reason.
fn error_details(f: &FailureOutcome) -> Value {
    let (code, retry) = match f.reason.as_str() {
        "ConfigurationError" | "Forbidden" => ("ERR_WORKFLOW_NOT_FOUND", false),
        "ImagePullBackOff" => ("ERR_IMAGE_PULL", true),
        "TaskFailed" => ("ERR_PIPELINE_FAILED", !f.was_execution_failure),
        "PreviousExecutionFailed" | "ExhaustedRetries" => ("ERR_PIPELINE_FAILED", false),
        _ => ("ERR_PIPELINE_FAILED", !f.was_execution_failure),
    };
    let mut message = match &f.failed_task_name {
        Some(t) => format!("Pipeline failed at task '{t}'"),
        None => "Workflow execution failed".to_string(),
    };
    if !f.message.is_empty() {
        message.push_str(": ");
        message.push_str(&f.message);
    }
    json!({
        "component": "workflowexecution",
        "code": code,
        "message": message,
        "retry_possible": retry,
    })
}
