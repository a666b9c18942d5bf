//! Execute: builds the execution objects (Tekton PipelineRun, batch/v1 Job)
//! for a WorkflowExecution, their lock name and labels. Pure: no I/O, no
//! clock (the caller passes `now`), deterministic output.

mod build;
mod durations;
mod engine;
mod error;
mod input;
pub mod job;
pub mod labels;
pub mod params;
pub mod tekton;

pub use build::build;
pub(crate) use durations::{go_duration, seconds_until};
pub use engine::{pipeline_run_resource, task_run_resource, ExecutionEngine};
pub use error::ExecuteError;
pub use input::BuildInput;
pub use labels::{label_value, labelled_as, lock_name};

#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;

    use jiff::Timestamp;
    use k8s_openapi::api::core::v1::ObjectReference;

    use crate::api::{WorkflowExecution, WorkflowExecutionSpec, WorkflowRef};

    pub fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    pub fn spec_with_params(
        params: &[(&str, &str)],
        declared: Option<&[(&str, bool)]>,
    ) -> WorkflowExecutionSpec {
        let mut spec = wfe("w", "ns", "ns/Deployment/a").spec;
        if !params.is_empty() {
            spec.parameters = Some(
                params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        spec.workflow_ref.declared_parameter_names = declared.map(|d| {
            d.iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<BTreeMap<_, _>>()
        });
        spec
    }

    pub fn wfe(name: &str, ns: &str, target: &str) -> WorkflowExecution {
        let mut w = WorkflowExecution::new(
            name,
            WorkflowExecutionSpec {
                remediation_request_ref: ObjectReference {
                    name: Some("rr-1".into()),
                    ..Default::default()
                },
                workflow_ref: WorkflowRef {
                    workflow_id: "wf-1".into(),
                    workflow_name: "restart".into(),
                    action_type: "RestartDeployment".into(),
                    version: "1.0.0".into(),
                    execution_bundle: "quay.io/k/restart@sha256:abc".into(),
                    execution_engine: Some("tekton".into()),
                    ..Default::default()
                },
                target_resource: target.into(),
                parameters: None,
                confidence: None,
                rationale: None,
                times_out_at: None,
            },
        );
        w.metadata.namespace = Some(ns.into());
        w
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{at, wfe};
    use super::*;

    #[test]
    fn durations_in_go_format() {
        assert_eq!(go_duration(1), "1s");
        assert_eq!(go_duration(61), "1m1s");
        assert_eq!(go_duration(3600), "1h0m0s");
        assert_eq!(go_duration(90061), "25h1m1s");
    }

    #[test]
    fn seconds_until_floors_and_clamps() {
        let now = at("2026-01-01T00:00:00.500Z");
        assert_eq!(seconds_until(at("2026-01-01T00:00:10.400Z"), now), 9);
        assert_eq!(seconds_until(at("2026-01-01T00:00:10.600Z"), now), 10);
        assert_eq!(seconds_until(now, now), 1);
    }

    #[test]
    fn build_both_engines_as_dynamic_objects() {
        let w = wfe("w", "ns", "ns/Deployment/a");
        let input = BuildInput {
            wfe: &w,
            namespace: "exec",
            now: at("2026-01-01T00:00:00Z"),
        };
        let pr = build(ExecutionEngine::Tekton, &input).unwrap();
        assert_eq!(pr.types.as_ref().unwrap().kind, "PipelineRun");
        assert_eq!(pr.metadata.namespace.as_deref(), Some("exec"));
        let j = build(ExecutionEngine::Job, &input).unwrap();
        assert_eq!(j.types.as_ref().unwrap().api_version, "batch/v1");
        assert_eq!(j.metadata.name, pr.metadata.name);
        assert_eq!(j.data["spec"]["backoffLimit"], 0);
    }

    #[test]
    fn unknown_engine_is_a_clear_error() {
        let err = ExecutionEngine::parse("ansible").unwrap_err();
        assert!(err.to_string().contains("ansible"), "{err}");
        assert_eq!(
            ExecutionEngine::parse("job").unwrap().api_resource().plural,
            "jobs"
        );
    }
}
