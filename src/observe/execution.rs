//! The execution object (PipelineRun or Job) → [`ExecutionFacts`]: identity,
//! ownership, then the engine-specific reading.

use serde_json::Value;

use super::facts::ExecutionFacts;
use super::json::{kind, label, name, namespace, str_at, uid};
use super::rule_view::RuleView;
use super::{attach, job, tekton};
use crate::api::WorkflowExecution;

/// Label naming the WFE that created an execution object.
pub const OWNER_LABEL: &str = "kubernaut.ai/workflow-execution";
/// Label naming that WFE's namespace.
pub const OWNER_NAMESPACE_LABEL: &str = "kubernaut.ai/source-namespace";

/// Facts about the execution object at this WFE's lock name. `primary` is
/// the PipelineRun or Job (None when absent), `children` its TaskRuns,
/// CustomRuns and Pods, `others` the other WFEs known (for the owner's phase).
pub fn execution_facts(
    primary: Option<&Value>,
    children: &[Value],
    wfe_name: &str,
    wfe_namespace: &str,
    others: &[WorkflowExecution],
    rules: &dyn RuleView,
) -> ExecutionFacts {
    let mut out = ExecutionFacts::default();
    let Some(obj) = primary.filter(|p| p.is_object()) else {
        return out;
    };
    out.exists = true;
    out.kind = kind(obj).to_owned();
    out.name = name(obj).to_owned();
    out.namespace = namespace(obj).to_owned();
    out.api_version = str_at(obj, &["apiVersion"]).to_owned();
    if rules.reads_metadata() {
        out.labels = string_map(obj.pointer("/metadata/labels"));
        out.annotations = string_map(obj.pointer("/metadata/annotations"));
    }
    owner(obj, wfe_name, wfe_namespace, others, rules, &mut out);

    // Evidence belongs to this run only: children naming another object's
    // uid (an earlier run under the same name) are left out.
    let own = attach::own_children(kind(obj), uid(obj), children);
    match kind(obj) {
        "Job" => job::job_facts(obj, &own, &mut out),
        // Anything else is read as a PipelineRun: a Succeeded condition is the
        // only contract, and an unknown shape then reads as Running.
        _ => tekton::tekton_facts(obj, &own, &mut out),
    }
    out
}

fn owner(
    obj: &Value,
    wfe_name: &str,
    wfe_namespace: &str,
    others: &[WorkflowExecution],
    rules: &dyn RuleView,
    out: &mut ExecutionFacts,
) {
    // An empty label value names nobody: the object is unlabelled. The
    // annotation of the same key carries the raw WFE name when the label had
    // to be shortened (names over 63 characters); prefer it when present.
    let raw = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(OWNER_LABEL))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());
    let Some(owner_name) = raw.or_else(|| label(obj, OWNER_LABEL).filter(|n| !n.is_empty())) else {
        out.owner = "none".into();
        out.owner_namespace = label(obj, OWNER_NAMESPACE_LABEL).unwrap_or("").to_owned();
        return;
    };
    let owner_ns = label(obj, OWNER_NAMESPACE_LABEL).unwrap_or("");
    out.owner_name = owner_name.to_owned();
    out.owner_namespace = owner_ns.to_owned();
    // An object labelled by an older release may lack the namespace label.
    let is_self = owner_name == wfe_name && (owner_ns.is_empty() || owner_ns == wfe_namespace);
    if is_self {
        out.owner = "self".into();
        return;
    }
    out.owner = "other".into();
    let known = others.iter().find(|w| {
        w.metadata.name.as_deref() == Some(owner_name)
            && (owner_ns.is_empty() || w.metadata.namespace.as_deref().unwrap_or("") == owner_ns)
    });
    if let Some(w) = known {
        out.owner_phase = super::wfe::phase_of(w, rules).to_owned();
    }
}

/// The string entries of a metadata map (labels, annotations).
fn string_map(v: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}
