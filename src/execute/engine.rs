//! The engines an execution object can be built for, and the API resources
//! of their objects.

use k8s_openapi::api::batch::v1::Job;
use kube::discovery::ApiResource;

use super::error::ExecuteError;
use super::tekton::PIPELINE_RUN_API_VERSION;

/// The engines this crate can build objects for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecutionEngine {
    Tekton,
    Job,
}

impl ExecutionEngine {
    /// `tekton` or `job` (as in `spec.workflowRef.executionEngine`).
    pub fn parse(s: &str) -> Result<ExecutionEngine, ExecuteError> {
        match s {
            "tekton" => Ok(ExecutionEngine::Tekton),
            "job" => Ok(ExecutionEngine::Job),
            other => Err(ExecuteError::UnknownEngine(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionEngine::Tekton => "tekton",
            ExecutionEngine::Job => "job",
        }
    }

    /// The API resource of this engine's execution object.
    pub fn api_resource(self) -> ApiResource {
        match self {
            ExecutionEngine::Tekton => pipeline_run_resource(),
            ExecutionEngine::Job => ApiResource::erase::<Job>(&()),
        }
    }
}

/// `tekton.dev/v1` `PipelineRun`.
pub fn pipeline_run_resource() -> ApiResource {
    ApiResource {
        group: "tekton.dev".into(),
        version: "v1".into(),
        api_version: PIPELINE_RUN_API_VERSION.into(),
        kind: "PipelineRun".into(),
        plural: "pipelineruns".into(),
    }
}

/// `tekton.dev/v1` `TaskRun`.
pub fn task_run_resource() -> ApiResource {
    ApiResource {
        group: "tekton.dev".into(),
        version: "v1".into(),
        api_version: PIPELINE_RUN_API_VERSION.into(),
        kind: "TaskRun".into(),
        plural: "taskruns".into(),
    }
}
