//! The WorkflowExecution being decided → [`WfeFacts`].

use crate::api::{WorkflowExecution, CLEAR_BLOCK_ANNOTATION};

use super::facts::WfeFacts;
use super::rule_view::RuleView;

/// `status.phase`, with an empty or missing phase read as the lifecycle's
/// initial phase.
pub fn phase_of<'a>(wfe: &'a WorkflowExecution, rules: &'a dyn RuleView) -> &'a str {
    match wfe.status.as_ref().and_then(|s| s.phase.as_deref()) {
        None | Some("") => rules.initial_phase(),
        Some(p) => p,
    }
}

/// A map of metadata (labels, annotations): empty when absent, or when no
/// rule reads it.
fn metadata_map(
    rules: &dyn RuleView,
    m: Option<&std::collections::BTreeMap<String, String>>,
) -> std::collections::BTreeMap<String, String> {
    match m {
        Some(m) if rules.reads_metadata() => m.clone(),
        _ => Default::default(),
    }
}

/// `kubernaut.ai/clear-block` annotation value, `""` when absent.
pub fn clear_block(wfe: &WorkflowExecution) -> &str {
    wfe.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLEAR_BLOCK_ANNOTATION))
        .map(String::as_str)
        .unwrap_or("")
}

/// Number of `/`-separated parts (0 for an empty target) and the 0-based
/// index of the first empty part (-1 when none), as ValidateSpec counts them.
pub fn target_shape(target: &str) -> (i64, i64) {
    if target.is_empty() {
        return (0, -1);
    }
    let mut parts = 0i64;
    let mut empty = -1i64;
    for (i, p) in target.split('/').enumerate() {
        parts += 1;
        if p.is_empty() && empty < 0 {
            empty = i as i64;
        }
    }
    (parts, empty)
}

pub fn wfe_facts(wfe: &WorkflowExecution, rules: &dyn RuleView) -> WfeFacts {
    let meta = &wfe.metadata;
    let spec = &wfe.spec;
    let wr = &spec.workflow_ref;
    let status = wfe.status.as_ref();
    let details = status.and_then(|s| s.failure_details.as_ref());
    let (target_parts, target_empty_part) = target_shape(&spec.target_resource);
    WfeFacts {
        name: meta.name.clone().unwrap_or_default(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        generation: meta.generation.unwrap_or(0),
        created_at: meta.creation_timestamp.as_ref().map(|t| t.0),
        deleting: meta.deletion_timestamp.is_some(),
        phase: phase_of(wfe, rules).to_owned(),
        labels: metadata_map(rules, meta.labels.as_ref()),
        annotations: metadata_map(rules, meta.annotations.as_ref()),
        target_resource: spec.target_resource.clone(),
        workflow_id: wr.workflow_id.clone(),
        workflow_name: wr.workflow_name.clone(),
        action_type: wr.action_type.clone(),
        version: wr.version.clone(),
        execution_bundle: wr.execution_bundle.clone(),
        engine: wr.execution_engine.clone().unwrap_or_default(),
        service_account_name: wr.service_account_name.clone().unwrap_or_default(),
        target_parts,
        target_empty_part,
        start_time: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
        completion_time: status.and_then(|s| s.completion_time.as_ref()).map(|t| t.0),
        execution_ref: status
            .and_then(|s| s.execution_ref.as_ref())
            .map(|r| r.name.clone())
            .unwrap_or_default(),
        clear_block: clear_block(wfe).to_owned(),
        times_out_at: spec.times_out_at.as_ref().map(|t| t.0),
        was_execution_failure: details.is_some_and(|d| d.was_execution_failure),
        failure_reason: failure_reason(wfe).to_owned(),
        status: status.cloned().unwrap_or_default(),
        correlation_id: spec
            .remediation_request_ref
            .name
            .clone()
            .unwrap_or_default(),
        parameters: spec.parameters.clone().unwrap_or_default(),
    }
}

/// `failureDetails.reason`, else the flat `failureReason` mirror, else `""`.
pub fn failure_reason(wfe: &WorkflowExecution) -> &str {
    let status = wfe.status.as_ref();
    status
        .and_then(|s| s.failure_details.as_ref())
        .map(|d| d.reason.as_str())
        .filter(|r| !r.is_empty())
        .or_else(|| status.and_then(|s| s.failure_reason.as_deref()))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_shape_counts_parts_and_first_empty() {
        assert_eq!(target_shape(""), (0, -1));
        assert_eq!(target_shape("default/deployment/app"), (3, -1));
        assert_eq!(target_shape("node/n1"), (2, -1));
        assert_eq!(target_shape("default//app"), (3, 1));
        assert_eq!(target_shape("/"), (2, 0));
        assert_eq!(target_shape("a/b/c/d"), (4, -1));
    }
}
