//! The controller layer's error enum.

use crate::execute::ExecuteError;

/// Why a reconcile failed (it is retried with per-object backoff).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("kubernetes API {verb} {what}: {source}")]
    Api {
        verb: &'static str,
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot build the execution object: {0}")]
    Build(#[from] ExecuteError),
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("WorkflowExecution has no {0}")]
    MissingField(&'static str),
    #[error("cleanup of {object} failed: {source}")]
    Cleanup {
        object: String,
        #[source]
        source: Box<ControllerError>,
    },
    /// The controller task ended abnormally (panicked or was aborted).
    #[error("controller stopped: {0}")]
    Stopped(#[source] tokio::task::JoinError),
    /// The decision's task on the blocking pool did not complete (it
    /// panicked or the runtime is shutting down).
    #[error("the decision did not complete: {0}")]
    Decide(#[source] tokio::task::JoinError),
    /// The API server refused the execution object and no rule took the
    /// refusal (retried with backoff).
    #[error("the API server refused the execution object and no rule handles it: {0}")]
    Rejected(String),
}

impl ControllerError {
    pub(crate) fn api(verb: &'static str, what: impl Into<String>, source: kube::Error) -> Self {
        ControllerError::Api {
            verb,
            what: what.into(),
            source,
        }
    }

    /// A short label for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            ControllerError::Api { source, .. } if is_conflict(source) => "conflict",
            ControllerError::Api { .. } => "api",
            ControllerError::Build(_) => "build",
            ControllerError::Encode { .. } => "encode",
            ControllerError::MissingField(_) => "invalid",
            ControllerError::Cleanup { .. } => "cleanup",
            ControllerError::Decide(_) => "stopped",
            ControllerError::Stopped(_) => "stopped",
            ControllerError::Rejected(_) => "rejected",
        }
    }
}

/// HTTP status of an API error response, if it was one.
pub(crate) fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    status_code(e) == Some(404)
}

pub(crate) fn is_conflict(e: &kube::Error) -> bool {
    status_code(e) == Some(409) && !is_already_exists(e)
}

pub(crate) fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists")
}
