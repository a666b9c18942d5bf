//! Trimming of cached objects: the reflector stores keep only what `observe`
//! reads, so memory stays low with thousands of executions cached. Removed:
//! `managedFields` and the last-applied annotation everywhere, and the bulky
//! specs (params, workspaces, embedded task/pipeline specs, volumes, env)
//! that no fact is derived from.

use kube::api::{DynamicObject, ObjectMeta};
use serde_json::{Map, Value};

use crate::api::WorkflowExecution;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn trim_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
        if a.is_empty() {
            meta.annotations = None;
        }
    }
}

/// Trim a WorkflowExecution for the cache (its spec and status are small
/// and read in full).
pub fn trim_wfe(wfe: &mut WorkflowExecution) {
    trim_meta(&mut wfe.metadata);
}

/// Trim an object of the execution namespace by kind.
pub fn trim_object(obj: &mut DynamicObject) {
    let kind = obj
        .types
        .as_ref()
        .map(|t| t.kind.clone())
        .unwrap_or_default();
    trim_object_as(&kind, obj);
}

/// Trim an object whose kind is known from the watch it came from.
pub fn trim_object_as(kind: &str, obj: &mut DynamicObject) {
    trim_meta(&mut obj.metadata);
    let data = &mut obj.data;
    match kind {
        "PipelineRun" => {
            remove(
                data,
                &["spec"],
                &["params", "workspaces", "taskRunTemplate", "pipelineRef"],
            );
            remove(data, &["status"], &["provenance", "spanContext"]);
            // Only the task names (declaration order) are read from the
            // resolved pipeline spec.
            for list in ["tasks", "finally"] {
                names_only(data, &["status", "pipelineSpec", list]);
            }
            if let Some(ps) =
                get_mut(data, &["status", "pipelineSpec"]).and_then(Value::as_object_mut)
            {
                ps.retain(|k, _| k == "tasks" || k == "finally");
            }
        }
        "TaskRun" | "CustomRun" => {
            remove(
                data,
                &["spec"],
                &["params", "taskSpec", "taskRef", "podTemplate", "workspaces"],
            );
            remove(
                data,
                &["status"],
                &["taskSpec", "provenance", "spanContext"],
            );
        }
        "Job" => {
            names_only(data, &["spec", "template", "spec", "containers"]);
            names_only(data, &["spec", "template", "spec", "initContainers"]);
            if let Some(ps) =
                get_mut(data, &["spec", "template", "spec"]).and_then(Value::as_object_mut)
            {
                ps.retain(|k, _| k == "containers" || k == "initContainers");
            }
        }
        "Pod" => {
            names_only(data, &["spec", "containers"]);
            names_only(data, &["spec", "initContainers"]);
            if let Some(ps) = get_mut(data, &["spec"]).and_then(Value::as_object_mut) {
                ps.retain(|k, _| k == "containers" || k == "initContainers" || k == "nodeName");
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |cur, k| cur.get_mut(*k))
}

fn remove(v: &mut Value, path: &[&str], keys: &[&str]) {
    if let Some(obj) = get_mut(v, path).and_then(Value::as_object_mut) {
        for k in keys {
            obj.remove(*k);
        }
    }
}

/// Replace each element of the list at `path` by `{name}`.
fn names_only(v: &mut Value, path: &[&str]) {
    if let Some(list) = get_mut(v, path).and_then(Value::as_array_mut) {
        for item in list.iter_mut() {
            let name = item.get("name").cloned().unwrap_or(Value::Null);
            let mut m = Map::new();
            m.insert("name".into(), name);
            *item = Value::Object(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dynamic(v: Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn pipeline_run_keeps_status_and_task_names() {
        let mut pr = dynamic(json!({
            "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"name": "wfe-1", "namespace": "x",
                "labels": {"kubernaut.ai/workflow-execution": "w"},
                "annotations": {LAST_APPLIED: "{...}", "keep": "me"},
                "managedFields": [{"manager": "m"}]},
            "spec": {"params": [{"name": "A", "value": "1"}], "timeouts": {"pipeline": "1h0m0s"}},
            "status": {
                "conditions": [{"type": "Succeeded", "status": "Unknown"}],
                "childReferences": [{"kind": "TaskRun", "name": "t1", "pipelineTaskName": "a"}],
                "pipelineSpec": {"tasks": [{"name": "a", "taskSpec": {"steps": [{"script": "big"}]}}], "params": []},
                "provenance": {"featureFlags": {}}
            }
        }));
        trim_object(&mut pr);
        assert!(pr.metadata.managed_fields.is_none());
        let ann = pr.metadata.annotations.as_ref().unwrap();
        assert_eq!(ann.len(), 1);
        assert!(pr.metadata.labels.is_some());
        assert!(pr.data["spec"].get("params").is_none());
        assert_eq!(pr.data["spec"]["timeouts"]["pipeline"], "1h0m0s");
        assert_eq!(
            pr.data["status"]["pipelineSpec"],
            json!({"tasks": [{"name": "a"}]})
        );
        assert_eq!(pr.data["status"]["childReferences"][0]["name"], "t1");
        assert!(pr.data["status"].get("provenance").is_none());
    }

    #[test]
    fn pods_and_jobs_keep_container_names_and_status() {
        let mut pod = dynamic(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "x"},
            "spec": {"containers": [{"name": "workflow", "image": "i", "env": [{"name": "A"}]}],
                     "volumes": [{"name": "tmp"}]},
            "status": {"containerStatuses": [{"name": "workflow", "state": {"terminated": {"exitCode": 137}}}]}
        }));
        trim_object(&mut pod);
        assert_eq!(
            pod.data["spec"],
            json!({"containers": [{"name": "workflow"}]})
        );
        assert_eq!(
            pod.data["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            137
        );

        let mut job = dynamic(json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "j", "namespace": "x"},
            "spec": {"backoffLimit": 0, "template": {"spec": {"containers": [{"name": "workflow", "env": []}], "volumes": []}}},
            "status": {"failed": 1}
        }));
        trim_object(&mut job);
        assert_eq!(job.data["spec"]["backoffLimit"], 0);
        assert_eq!(
            job.data["spec"]["template"]["spec"],
            json!({"containers": [{"name": "workflow"}]})
        );
    }

    #[test]
    fn odd_shapes_do_not_panic() {
        for v in [
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": "nope"}),
            json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": "p"}, "status": {"pipelineSpec": {"tasks": "x"}}}),
        ] {
            let mut o = dynamic(v);
            trim_object(&mut o);
        }
    }
}
