//! The execute layer's error enum.

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
