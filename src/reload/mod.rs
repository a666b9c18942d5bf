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
mod error;
mod events;
mod fingerprint;
mod load_and_test;
mod options;
mod outcomes;
mod reloader;
mod report;
mod shadow;
mod slot;
mod source;
mod status;
mod task;
mod watched;
pub mod watcher;

pub use error::ReloadError;
pub use fingerprint::Fingerprint;
pub use options::{ReloadArgs, ReloadOptions};
pub use outcomes::{NoReloadOutcomes, ReloadOutcomes};
pub use reloader::{ReloadHandle, Reloader};
pub use shadow::ShadowHandle;
pub use source::{ConfigMapRef, ConfigMapRefError, ConfigMapSource, RulesSource};
pub use status::{
    ActiveRules, ConfigMapStatus, ErrorLocation, LastError, ReloadCounts, ReloadStatus,
    ShadowStatus, SourceStatus,
};
pub use watched::load_initial;
