//! The locked-down Rhai engine. Rule files are untrusted (DESIGN invariant
//! 6): scripts get no I/O, no `eval`, no module loading, strict variables,
//! strict map properties, and limits on operations, call depth, expression
//! depth, value sizes and wall-clock time. Expressions see the facts as
//! read-only variables built only for the roots they mention.
//!
//! `library` holds the engine and the set's function libraries, `run`
//! compiles and evaluates expressions, `roots` finds the fact roots an
//! expression reads, `values` turns facts into Rhai values, `errors` words
//! Rhai's errors for rule authors.

mod errors;
mod library;
mod roots;
mod run;
mod script;
mod values;

pub use crate::rules::limits::{
    DECISION_TIME_LIMIT, MAX_ARRAY_LEN, MAX_CALL_LEVELS, MAX_EXPR_DEPTH, MAX_FN_EXPR_DEPTH,
    MAX_FUNCTIONS, MAX_MAP_LEN, MAX_OPERATIONS, MAX_STRING_BYTES, MAX_VARIABLES, TIME_LIMIT,
};
pub use library::Sandbox;
pub use roots::{Root, HISTORY_ITEMS_KEY};
pub use script::{Script, ScriptError};
pub use values::to_dynamic;

#[cfg(test)]
mod tests;
