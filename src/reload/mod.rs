//! Hot reload of the rules (DESIGN.md invariant 7; docs/hot-reload.md), from
//! one of two [`RulesSource`]s:
//!
//! - a directory: a [`watcher::DirWatcher`] watches the directory itself,
//!   non-recursively, so the kubelet's `..data` swap and editors' temp-file
//!   renames are both seen as entries changing in it;
//! - a ConfigMap read through the API: a kube-runtime watcher on that one
//!   name, and every outcome reported as an Event on the ConfigMap
//!   (`RulesApplied`, `RulesRejected` with every `file:line:col`).
//!
//! The [`Reloader`] debounces change signals, loads the whole set, runs the
//! set's own rule tests, and swaps the new set into the shared `ArcSwap`
//! only when all of it is good; otherwise the last good set stays active and
//! the error is kept for `/rules`.
//!
//! A second reloader can keep a candidate set for shadow evaluation
//! ([`Reloader::spawn_shadow`]): same sources, same gate, its own Event
//! reasons; the candidate is only stored, for the controller to evaluate
//! beside the active set.

mod configmap;
mod dir_source;
mod events;
mod fingerprint;
mod gate;
mod options;
mod reloader;
mod report;
mod shadow;
mod slot;
mod source;
mod status;
pub mod watcher;

pub use fingerprint::Fingerprint;
pub use options::{ReloadArgs, ReloadOptions};
pub use reloader::{ReloadHandle, Reloader};
pub use shadow::ShadowHandle;
pub use source::{ConfigMapRef, ConfigMapSource, RulesSource};
pub use status::{
    ActiveRules, ConfigMapStatus, ErrorLocation, LastError, ReloadCounts, ReloadStatus,
    ShadowStatus,
};

use std::path::PathBuf;
use std::time::Duration;

use crate::rules::{load_dir, LoadErrors, RuleSet};

/// The set to start with, loaded (without the rule-test gate, as before any
/// reload) from `source`. A ConfigMap whose set does not load also gets a
/// `RulesRejected` Event, so its editor sees why the engine does not start.
pub async fn load_initial(source: &RulesSource) -> Result<RuleSet, ReloadError> {
    match source {
        RulesSource::Directory(dir) => load_dir(dir).map_err(ReloadError::Invalid),
        RulesSource::ConfigMap(cm) => configmap::initial(cm).await,
    }
}

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
