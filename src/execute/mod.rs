//! Execute: builds the execution objects (Tekton PipelineRun, batch/v1 Job)
//! for a WorkflowExecution, their lock name and labels. Pure: no I/O, no
//! clock (the caller passes `now`), deterministic output.

pub mod job;
pub mod labels;
pub mod params;
pub mod tekton;

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube::api::DynamicObject;
use kube::discovery::ApiResource;

use crate::api::WorkflowExecution;

pub use labels::{label_value, labelled_as, lock_name};

/// Errors of the execute layer: the WFE cannot be turned into an object.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    #[error("WorkflowExecution has no metadata.{0}")]
    MissingMetadata(&'static str),
    #[error("execution engine {0:?} has no builder (expected \"tekton\" or \"job\")")]
    UnknownEngine(String),
    #[error("cannot encode the {kind}: {source}")]
    Encode {
        kind: &'static str,
        source: serde_json::Error,
    },
}

/// The engines this crate can build objects for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    Tekton,
    Job,
}

impl Engine {
    /// `tekton` or `job` (as in `spec.workflowRef.executionEngine`).
    pub fn parse(s: &str) -> Result<Engine, ExecuteError> {
        match s {
            "tekton" => Ok(Engine::Tekton),
            "job" => Ok(Engine::Job),
            other => Err(ExecuteError::UnknownEngine(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Tekton => "tekton",
            Engine::Job => "job",
        }
    }

    /// The API resource of this engine's execution object.
    pub fn api_resource(self) -> ApiResource {
        match self {
            Engine::Tekton => pipeline_run_resource(),
            Engine::Job => ApiResource::erase::<Job>(&()),
        }
    }
}

/// `tekton.dev/v1` `PipelineRun`.
pub fn pipeline_run_resource() -> ApiResource {
    ApiResource {
        group: "tekton.dev".into(),
        version: "v1".into(),
        api_version: tekton::PIPELINE_RUN_API_VERSION.into(),
        kind: "PipelineRun".into(),
        plural: "pipelineruns".into(),
    }
}

/// `tekton.dev/v1` `TaskRun`.
pub fn task_run_resource() -> ApiResource {
    ApiResource {
        group: "tekton.dev".into(),
        version: "v1".into(),
        api_version: tekton::PIPELINE_RUN_API_VERSION.into(),
        kind: "TaskRun".into(),
        plural: "taskruns".into(),
    }
}

/// What a builder needs: the WFE, where the object goes, and the instant
/// deadlines are computed from.
#[derive(Debug, Clone, Copy)]
pub struct BuildInput<'a> {
    pub wfe: &'a WorkflowExecution,
    /// The execution namespace.
    pub namespace: &'a str,
    pub now: Timestamp,
}

/// Metadata shared by both engines.
#[derive(Debug, Clone)]
pub(crate) struct BuiltMeta<'a> {
    pub name: String,
    pub owner_name: &'a str,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Declared dependencies, duplicates removed (duplicate volumes or
/// workspaces would make the API server refuse the object).
#[derive(Debug, Clone, Default)]
pub(crate) struct Deps<'a> {
    pub secrets: Vec<&'a str>,
    pub config_maps: Vec<&'a str>,
}

impl<'a> BuildInput<'a> {
    pub(crate) fn metadata(&self) -> Result<BuiltMeta<'a>, ExecuteError> {
        let wfe: &'a WorkflowExecution = self.wfe;
        let name = wfe
            .metadata
            .name
            .as_deref()
            .ok_or(ExecuteError::MissingMetadata("name"))?;
        let namespace = wfe
            .metadata
            .namespace
            .as_deref()
            .ok_or(ExecuteError::MissingMetadata("namespace"))?;
        let owner = labels::Owner {
            name,
            namespace,
            workflow_id: &wfe.spec.workflow_ref.workflow_id,
            target_resource: &wfe.spec.target_resource,
        };
        Ok(BuiltMeta {
            name: lock_name(&wfe.spec.target_resource),
            owner_name: name,
            labels: labels::execution_labels(&owner),
            annotations: labels::execution_annotations(&owner),
        })
    }

    pub(crate) fn dependencies(&self) -> Deps<'a> {
        let wfe: &'a WorkflowExecution = self.wfe;
        let mut deps = Deps::default();
        if let Some(d) = &wfe.spec.workflow_ref.dependencies {
            for s in &d.secrets {
                if !deps.secrets.contains(&s.name.as_str()) {
                    deps.secrets.push(&s.name);
                }
            }
            for c in &d.config_maps {
                if !deps.config_maps.contains(&c.name.as_str()) {
                    deps.config_maps.push(&c.name);
                }
            }
        }
        deps
    }
}

/// Build the execution object for `engine` as a `DynamicObject`, ready to
/// create through `Api<DynamicObject>` with [`Engine::api_resource`].
pub fn build(engine: Engine, input: &BuildInput<'_>) -> Result<DynamicObject, ExecuteError> {
    let value = match engine {
        Engine::Tekton => tekton::pipeline_run(input)?,
        Engine::Job => {
            let mut v =
                serde_json::to_value(job::job(input)?).map_err(|source| ExecuteError::Encode {
                    kind: "Job",
                    source,
                })?;
            // k8s-openapi types carry no TypeMeta; the object needs it.
            v["apiVersion"] = "batch/v1".into();
            v["kind"] = "Job".into();
            v
        }
    };
    serde_json::from_value(value).map_err(|source| ExecuteError::Encode {
        kind: engine_kind(engine),
        source,
    })
}

fn engine_kind(engine: Engine) -> &'static str {
    match engine {
        Engine::Tekton => "PipelineRun",
        Engine::Job => "Job",
    }
}

/// Whole seconds from `now` until `deadline` (fractions dropped), at least 1.
pub(crate) fn seconds_until(deadline: Timestamp, now: Timestamp) -> i64 {
    let secs = deadline.as_second()
        - now.as_second()
        - i64::from(deadline.subsec_nanosecond() < now.subsec_nanosecond());
    secs.max(1)
}

/// A Go `time.Duration` string for whole seconds (`1h2m3s`, `45s`), which
/// is what Tekton parses.
pub(crate) fn go_duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

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
        let pr = build(Engine::Tekton, &input).unwrap();
        assert_eq!(pr.types.as_ref().unwrap().kind, "PipelineRun");
        assert_eq!(pr.metadata.namespace.as_deref(), Some("exec"));
        let j = build(Engine::Job, &input).unwrap();
        assert_eq!(j.types.as_ref().unwrap().api_version, "batch/v1");
        assert_eq!(j.metadata.name, pr.metadata.name);
        assert_eq!(j.data["spec"]["backoffLimit"], 0);
    }

    #[test]
    fn unknown_engine_is_a_clear_error() {
        let err = Engine::parse("ansible").unwrap_err();
        assert!(err.to_string().contains("ansible"), "{err}");
        assert_eq!(Engine::parse("job").unwrap().api_resource().plural, "jobs");
    }
}
