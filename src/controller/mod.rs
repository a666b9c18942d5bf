//! The controller: the only layer that talks to the API server. A
//! kube-runtime `Controller` on WorkflowExecutions, watches on the execution
//! objects and their children, and `reconcile = observe → decide → apply`.

mod apply;
pub mod audit;
mod context;
pub mod discovery;
mod error;
pub mod error_policy;
mod events;
mod gather;
pub mod hooks;
pub mod leader;
pub mod mux;
mod namespace;
pub mod readiness;
mod reconcile;
mod rejection;
mod run;
pub mod shadow;
pub mod snapshot;
pub mod status_patch;
pub mod stores;
pub mod trim;
mod watches;

pub use audit::{AuditError, AuditSink, InMemoryAuditSink, NoopAuditSink};
pub use context::{Context, ControllerConfig};
pub use error::ControllerError;
pub use error_policy::FailureBackoff;
pub use events::REPORTING_CONTROLLER;
pub use hooks::{NoopHooks, ReconcileHooks, ReconcileOutcome};
pub use leader::{run_leader_election, LeaderError, LeaderStatus, LeaseLock, LeaseSettings};
pub use namespace::NamespaceView;
pub use readiness::Readiness;
pub use run::{
    run_controller, spawn_controller, ControllerHandle, ControllerOptions, ReconcileAllTrigger,
};
pub use shadow::{Shadow, SHADOW_RECORDS};
