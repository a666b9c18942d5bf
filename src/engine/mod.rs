//! The engine: `decide(&Facts, &RuleSet, now) -> Decision`, pure and
//! deterministic (DESIGN.md invariants 1, 2, 6, 7).

mod decision;

pub use decision::*;
