//! Where a rule lives: `file#name` and its line. Every trace, provenance
//! stamp and test report names rules this way.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// Where a rule lives: `file#name`, plus its line for traces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RuleId {
    /// Shared, so tracing a rule on every decision costs no allocation.
    pub file: Arc<str>,
    pub name: Arc<str>,
    pub line: u32,
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.file, self.name)
    }
}
