//! The engine: `decide(&Facts, &RuleSet, now) -> Decision`, pure and
//! deterministic (DESIGN.md invariants 1, 2, 6, 7).

mod audit;
pub mod cases;
pub mod compare;
mod context;
pub mod decide;
mod decision;
mod derive;
pub mod expect;
pub mod facts_view;
pub mod record;
pub mod replay;
pub mod scenario;
mod status;
pub mod testing;

pub use audit::{
    AuditData, AuditPayload, ErrorDetails, WorkflowAudit, EXECUTION_STARTED, SELECTION_COMPLETED,
    WORKFLOW_COMPLETED, WORKFLOW_FAILED,
};
pub use compare::{compare, diff, DecisionDiff, Field, FieldChange};
pub use decide::{decide, lock_name};
pub use decision::*;
pub use derive::backoff_delay;
pub use record::{record, DecisionRecord, HoldRecord};
pub use status::go_duration;
