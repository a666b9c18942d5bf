//! The Tekton `PipelineRun` for a WorkflowExecution (reference §3.2, with the
//! spec's changes: sorted params, `timeouts.pipeline` from `timesOutAt`,
//! valid label values).

use serde_json::{json, Map, Value};

use super::params::{filter_params, TARGET_RESOURCE_PARAM};
use super::{go_duration, seconds_until, BuildInput, ExecuteError};

/// API version of the PipelineRuns we create.
pub const PIPELINE_RUN_API_VERSION: &str = "tekton.dev/v1";
/// Name of the Pipeline the bundle must contain.
pub const BUNDLE_PIPELINE_NAME: &str = "workflow";

/// Build the PipelineRun. Deterministic: the same input gives the same bytes.
pub fn pipeline_run(input: &BuildInput<'_>) -> Result<Value, ExecuteError> {
    let meta = input.metadata()?;
    let spec = &input.wfe.spec;
    let wref = &spec.workflow_ref;

    let mut params: Vec<Value> = filter_params(spec)
        .kept
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    params.push(json!({"name": TARGET_RESOURCE_PARAM, "value": spec.target_resource}));

    let mut run_spec = Map::new();
    run_spec.insert(
        "pipelineRef".into(),
        json!({
            "resolver": "bundles",
            "params": [
                {"name": "bundle", "value": wref.execution_bundle},
                {"name": "name", "value": BUNDLE_PIPELINE_NAME},
                {"name": "kind", "value": "pipeline"},
            ],
        }),
    );
    run_spec.insert("params".into(), Value::Array(params));

    let deps = input.dependencies();
    if !deps.secrets.is_empty() || !deps.config_maps.is_empty() {
        let mut ws = Vec::new();
        for s in &deps.secrets {
            ws.push(json!({"name": format!("secret-{s}"), "secret": {"secretName": s}}));
        }
        for c in &deps.config_maps {
            ws.push(json!({"name": format!("configmap-{c}"), "configMap": {"name": c}}));
        }
        run_spec.insert("workspaces".into(), Value::Array(ws));
    }

    let mut template = Map::new();
    if let Some(sa) = wref
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        template.insert("serviceAccountName".into(), json!(sa));
    }
    template.insert(
        "podTemplate".into(),
        json!({"securityContext": {
            "runAsNonRoot": true,
            "seccompProfile": {"type": "RuntimeDefault"},
        }}),
    );
    run_spec.insert("taskRunTemplate".into(), Value::Object(template));

    if let Some(deadline) = &spec.times_out_at {
        let secs = seconds_until(deadline.0, input.now);
        run_spec.insert("timeouts".into(), json!({"pipeline": go_duration(secs)}));
    }

    Ok(json!({
        "apiVersion": PIPELINE_RUN_API_VERSION,
        "kind": "PipelineRun",
        "metadata": {
            "name": meta.name,
            "namespace": input.namespace,
            "labels": meta.labels,
            "annotations": meta.annotations,
        },
        "spec": Value::Object(run_spec),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{NamedRef, WorkflowDependencies};
    use crate::execute::labels::*;
    use crate::execute::testing::{at, wfe};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn build(w: &crate::api::WorkflowExecution) -> Value {
        pipeline_run(&BuildInput {
            wfe: w,
            namespace: "kubernaut-workflows",
            now: at("2026-01-01T00:00:00Z"),
        })
        .unwrap()
    }

    #[test]
    fn identity_labels_and_bundle_reference() {
        let w = wfe("restart-api", "team-a", "team-a/Deployment/api");
        let pr = build(&w);
        assert_eq!(pr["apiVersion"], "tekton.dev/v1");
        assert_eq!(pr["kind"], "PipelineRun");
        assert_eq!(pr["metadata"]["name"], lock_name("team-a/Deployment/api"));
        assert_eq!(pr["metadata"]["namespace"], "kubernaut-workflows");
        let labels = &pr["metadata"]["labels"];
        assert_eq!(labels[LABEL_WORKFLOW_EXECUTION], "restart-api");
        assert_eq!(labels[LABEL_SOURCE_NAMESPACE], "team-a");
        assert_eq!(labels[LABEL_TARGET_RESOURCE], "team-a__Deployment__api");
        assert_eq!(labels[LABEL_WORKFLOW_ID], "wf-1");
        assert!(labels.get(LABEL_EXECUTION_ENGINE).is_none());
        assert_eq!(
            pr["metadata"]["annotations"][ANNOTATION_TARGET_RESOURCE],
            "team-a/Deployment/api"
        );
        assert!(pr["metadata"].get("ownerReferences").is_none());
        let r = &pr["spec"]["pipelineRef"];
        assert_eq!(r["resolver"], "bundles");
        assert_eq!(
            r["params"],
            json!([
                {"name": "bundle", "value": "quay.io/k/restart@sha256:abc"},
                {"name": "name", "value": "workflow"},
                {"name": "kind", "value": "pipeline"},
            ])
        );
        assert!(pr["spec"].get("timeouts").is_none());
        assert!(pr["spec"].get("workspaces").is_none());
    }

    #[test]
    fn params_sorted_filtered_with_target_last() {
        let mut w = wfe("w", "ns", "ns/Deployment/a");
        w.spec.parameters = Some(
            [
                ("ZED", "z"),
                ("ALPHA", "a"),
                ("SECRET", "s"),
                ("TARGET_RESOURCE", "x"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        w.spec.workflow_ref.declared_parameter_names = Some(
            [
                ("ZED", true),
                ("ALPHA", true),
                ("SECRET", false),
                ("TARGET_RESOURCE", true),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        );
        let pr = build(&w);
        assert_eq!(
            pr["spec"]["params"],
            json!([
                {"name": "ALPHA", "value": "a"},
                {"name": "ZED", "value": "z"},
                {"name": "TARGET_RESOURCE", "value": "ns/Deployment/a"},
            ])
        );
    }

    #[test]
    fn workspaces_service_account_and_security() {
        let mut w = wfe("w", "ns", "ns/Deployment/a");
        w.spec.workflow_ref.service_account_name = Some("runner".into());
        w.spec.workflow_ref.dependencies = Some(WorkflowDependencies {
            secrets: vec![
                NamedRef { name: "db".into() },
                NamedRef { name: "db".into() },
            ],
            config_maps: vec![NamedRef { name: "cfg".into() }],
        });
        let pr = build(&w);
        assert_eq!(
            pr["spec"]["workspaces"],
            json!([
                {"name": "secret-db", "secret": {"secretName": "db"}},
                {"name": "configmap-cfg", "configMap": {"name": "cfg"}},
            ])
        );
        let t = &pr["spec"]["taskRunTemplate"];
        assert_eq!(t["serviceAccountName"], "runner");
        assert_eq!(t["podTemplate"]["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            t["podTemplate"]["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
    }

    #[test]
    fn timeout_from_times_out_at() {
        let mut w = wfe("w", "ns", "ns/Deployment/a");
        w.spec.times_out_at = Some(Time(at("2026-01-01T01:02:03Z")));
        assert_eq!(build(&w)["spec"]["timeouts"]["pipeline"], "1h2m3s");
        // A deadline already passed still gives a valid, minimal timeout.
        w.spec.times_out_at = Some(Time(at("2025-12-31T00:00:00Z")));
        assert_eq!(build(&w)["spec"]["timeouts"]["pipeline"], "1s");
    }

    #[test]
    fn deterministic_bytes() {
        let mut w = wfe("w", "ns", "ns/Deployment/a");
        w.spec.parameters = Some(
            (0..50)
                .map(|i| (format!("P{}", (i * 37) % 50), i.to_string()))
                .collect(),
        );
        let a = serde_json::to_string(&build(&w)).unwrap();
        let b = serde_json::to_string(&build(&w.clone())).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn missing_name_is_an_error_not_a_panic() {
        let mut w = wfe("w", "ns", "ns/Deployment/a");
        w.metadata.name = None;
        let err = pipeline_run(&BuildInput {
            wfe: &w,
            namespace: "x",
            now: at("2026-01-01T00:00:00Z"),
        })
        .unwrap_err();
        assert!(err.to_string().contains("name"), "{err}");
    }
}
