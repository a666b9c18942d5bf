//! Building the execution object of either engine as a `DynamicObject`.

use kube::api::DynamicObject;

use super::engine::ExecutionEngine;
use super::error::ExecuteError;
use super::input::BuildInput;
use super::{job, tekton};

/// Build the execution object for `engine` as a `DynamicObject`, ready to
/// create through `Api<DynamicObject>` with [`ExecutionEngine::api_resource`].
pub fn build(
    engine: ExecutionEngine,
    input: &BuildInput<'_>,
) -> Result<DynamicObject, ExecuteError> {
    let value = match engine {
        ExecutionEngine::Tekton => tekton::pipeline_run(input)?,
        ExecutionEngine::Job => {
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

fn engine_kind(engine: ExecutionEngine) -> &'static str {
    match engine {
        ExecutionEngine::Tekton => "PipelineRun",
        ExecutionEngine::Job => "Job",
    }
}
