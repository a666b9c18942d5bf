//! The engine: `decide(&Facts, &RuleSet, now) -> Decision`, pure and
//! deterministic (DESIGN.md invariants 1, 2, 6, 7).

mod audit;
mod context;
pub mod decide;
mod decision;
mod derive;
pub mod scenario;
mod status;
pub mod testing;

pub use audit::{
    AuditData, AuditPayload, ErrorDetails, WorkflowAudit, EXECUTION_STARTED, SELECTION_COMPLETED,
    WORKFLOW_COMPLETED, WORKFLOW_FAILED,
};
pub use decide::{decide, lock_name};
pub use decision::*;
pub use derive::backoff_delay;
pub use status::go_duration;
