//! Declarative matchers, compiled at load time to a native tree (STUB: being implemented).

use super::catalog::Fact;
use super::error::EvalError;
use super::sandbox::Sandbox;
use super::value::{FactLookup, ItemLookup};

#[derive(Debug, Clone)]
pub struct Matcher {
    _p: (),
}

impl Matcher {
    pub fn always() -> Matcher {
        Matcher { _p: () }
    }
    pub fn eval(&self, _facts: &dyn FactLookup, _sandbox: &Sandbox) -> Result<bool, EvalError> {
        Ok(true)
    }
    pub fn eval_item(&self, _item: &dyn ItemLookup) -> Result<bool, EvalError> {
        Ok(true)
    }
    /// Facts this matcher reads (for `--explain` and coverage).
    pub fn facts(&self) -> Vec<Fact> {
        Vec::new()
    }
}
