//! Message templates with `{fact.path}` placeholders (STUB: being implemented).

use super::error::EvalError;
use super::sandbox::Sandbox;
use super::value::FactLookup;

#[derive(Debug, Clone)]
pub struct Template {
    text: String,
}

impl Template {
    pub fn literal(text: &str) -> Template {
        Template { text: text.to_string() }
    }
    pub fn render(&self, _facts: &dyn FactLookup, _sandbox: &Sandbox) -> Result<String, EvalError> {
        Ok(self.text.clone())
    }
    pub fn render_line(&self, _facts: &dyn FactLookup, _sandbox: &Sandbox) -> Result<Option<String>, EvalError> {
        Ok(Some(self.text.clone()))
    }
}
