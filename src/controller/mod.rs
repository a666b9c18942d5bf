//! The controller: the only layer that talks to the API server. A
//! kube-runtime `Controller` on WorkflowExecutions, watches on the execution
//! objects and their children, and the reconcile pipeline
//! (`reconcile.rs`): gather → decide → apply, finalize on its own.

mod apply;
pub mod audit;
pub mod cache_trim;
mod config;
mod context;
mod create;
pub mod discovery;
mod error;
mod events;
pub mod failure_backoff;
mod finalize;
mod gather;
pub mod hooks;
pub mod leader;
mod namespace;
pub mod namespace_merge;
pub mod readiness;
mod reconcile;
mod rejection;
mod run;
pub mod shadow;
pub mod snapshot;
pub mod status_patch;
pub mod stores;
mod watches;
mod writes;

pub use audit::{AuditError, AuditSink, InMemoryAuditSink, NoopAuditSink};
pub use config::ControllerConfig;
pub use context::Context;
pub use error::ControllerError;
pub use events::REPORTING_CONTROLLER;
pub use failure_backoff::FailureBackoff;
pub use hooks::{NoopHooks, ReconcileHooks, ReconcileOutcome};
pub use leader::{run_leader_election, LeaderError, LeaderStatus, LeaseSettings};
pub use namespace::NamespaceView;
pub use readiness::Readiness;
pub use run::{
    run_controller, spawn_controller, ControllerHandle, ControllerOptions, ReconcileAllTrigger,
};
pub use shadow::{Shadow, SHADOW_RECORDS};
