//! Compiling each document kind into the rule model, one file per kind with
//! its static checks. Every problem is recorded with its position;
//! positions the checks need later are kept in [`Spans`]. `parts` collects
//! the kinds of a set, places the extension documents and runs the checks.

mod backoff;
mod classification;
mod common;
mod cooldown;
mod extensions;
mod findings;
mod history;
mod lifecycle;
mod parts;
mod rule_test;
mod summary;
mod transition;

pub(crate) use common::check_rule_name;
pub use common::Doc;
pub use findings::STANDARD_REASONS;
pub use parts::{Parts, KINDS, REPEATABLE_KINDS, SINGLE_KINDS};
pub use rule_test::compile_with as rule_test_with;
