//! Rule sets: the file format, the loader (whole directory, every error at
//! `file:line:col`), static checks, the content revision, and the locked-down
//! Rhai sandbox. See `docs/rules.md`.

pub mod catalog;
mod check;
mod diag;
mod duration;
pub mod embedded;
mod error;
mod expr_check;
mod fields;
pub mod flow;
mod kinds;
pub mod limits;
mod load;
pub mod matcher;
mod model;
mod names;
pub mod regex_budget;
mod rhai_engine;
pub mod sandbox;
pub mod scenarios;
pub mod template;
pub mod test_update;
pub mod testcase;
mod testcheck;
pub mod timeexpr;
pub mod value;
mod yaml;

pub use catalog::{AttemptField, EvidenceField, Fact, FactType};
pub use check::STANDARD_REASONS;
pub use duration::parse_duration;
pub use error::{EvalError, LoadError, LoadErrors};
pub use load::{
    load_dir, load_sources, read_sources, SourceFile, API_VERSION, KINDS, MAX_FILE_BYTES,
    MAX_SET_BYTES,
};
pub use matcher::Context as MatcherContext;
pub use matcher::Matcher;
pub use model::*;
pub use sandbox::Sandbox;
pub use template::Template;
pub use testcase::{RuleTestDoc, SequenceStep, TestCase};
pub use timeexpr::{PolicyTerm, TimeExpr};
pub use value::{FactLookup, FactValue, ItemLookup};
