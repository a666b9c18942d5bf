//! Declarative matchers, compiled at load time to a native tree. Paths are
//! resolved against the catalogue and literals type-checked then, so
//! evaluation only compares values: no parsing, no allocation for string
//! tests (needles are lowercased once; comparisons are ASCII
//! case-insensitive). Rhai runs only for `expr:` entries.
//!
//! `tree` holds the compiled form; `compile`, `eval` and `display` each add
//! their part of `Matcher`'s behaviour; `text` the string tests.

mod compile;
mod display;
mod eval;
mod text;
mod tree;

pub use tree::{Matcher, Subject};

#[cfg(test)]
mod tests;
