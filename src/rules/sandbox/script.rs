//! A compiled expression and a compile error's position.

use std::fmt;

use rhai::{Position, AST};

use super::roots::Root;
use crate::rules::catalog::Fact;

/// A compiled expression, sharing the function libraries of its rule set
/// (compiled once per set, not copied into every expression), and the roots
/// it reads.
#[derive(Clone)]
pub struct Script {
    pub(super) ast: AST,
    pub(super) roots: Vec<Root>,
    pub(super) facts: Vec<Fact>,
    pub(super) source: String,
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Script({:?})", self.source)
    }
}

impl Script {
    pub fn source(&self) -> &str {
        &self.source
    }
    /// Facts the expression reads (found in its text; may over-approximate).
    pub fn facts(&self) -> &[Fact] {
        &self.facts
    }
}

/// A Rhai compile error with its position inside the script (1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    pub line: u32,
    pub col: u32,
    pub message: String,
}

pub(super) fn script_error(message: String, pos: Position) -> ScriptError {
    let line = pos.line().and_then(|l| u32::try_from(l).ok()).unwrap_or(0);
    let col = pos
        .position()
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(0);
    ScriptError { line, col, message }
}
