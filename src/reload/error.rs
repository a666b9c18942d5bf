//! Why a candidate rule set was refused, or could not be looked at.

use std::path::PathBuf;
use std::time::Duration;

use super::status::ErrorLocation;
use crate::rules::LoadErrors;

/// Why a candidate rule set was refused (or could not be looked at).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("invalid rule set:\n{0}")]
    Invalid(LoadErrors),
    #[error("{failed} rule test case(s) failed:\n{details}")]
    TestsFailed {
        failed: usize,
        details: String,
        locations: Vec<ErrorLocation>,
    },
    #[error("loading and testing the rule set did not finish within {0:?}")]
    Timeout(Duration),
    #[error("loading or testing the rule set panicked")]
    Panicked,
    #[error("cannot start the rule-test thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },
    #[error("the rules ConfigMap {0} does not exist")]
    ConfigMapMissing(String),
    #[error("{what}: {source}")]
    Api {
        what: String,
        source: Box<kube::Error>,
    },
}

impl ReloadError {
    /// Every `file:line:col` the error points at.
    pub fn locations(&self) -> Vec<ErrorLocation> {
        match self {
            ReloadError::Invalid(errors) => errors
                .0
                .iter()
                .map(|e| ErrorLocation {
                    file: e.file.clone(),
                    line: e.line,
                    column: e.column,
                    message: e.message.clone(),
                })
                .collect(),
            ReloadError::TestsFailed { locations, .. } => locations.clone(),
            _ => Vec::new(),
        }
    }
}
