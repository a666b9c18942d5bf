//! The engine: `decide(&Facts, &RuleSet, now) -> Decision`, pure and
//! deterministic (DESIGN.md invariants 1, 2, 6, 7, 10), and the offline
//! tools built on it: rule tests (`rule_tests`, `cases`, `expect`),
//! replays of captures (`replay`, `scenario`), decision records and
//! comparisons (`record`, `compare`), the fact table of `dry-run --facts`.

mod audit;
pub mod cases;
pub mod compare;
mod conditions;
pub mod decide;
#[cfg(test)]
mod decide_tests;
mod decision;
mod derive;
mod effects;
mod end_status;
mod events;
pub mod expect;
mod fact_table;
mod fact_view;
mod failure;
mod hold;
mod outcome;
pub mod record;
pub mod replay;
mod requeue;
pub mod rule_tests;
pub mod scenario;
mod select;
mod status;

pub use audit::{
    AuditData, AuditPayload, AuditRecord, ErrorDetails, WorkflowAudit, EXECUTION_STARTED,
    SELECTION_COMPLETED, WORKFLOW_COMPLETED, WORKFLOW_FAILED,
};
pub use compare::{compare, diff, DecisionDiff, Field, FieldChange};
pub use decide::decide;
pub use decision::*;
pub use derive::backoff_delay;
pub use fact_table::fact_values;
pub use outcome::FailureOutcome;
pub use record::{record, DecisionRecord, HoldRecord};
pub use status::go_duration;
