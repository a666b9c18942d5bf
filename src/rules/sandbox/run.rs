//! Compiling and evaluating expressions in the sandbox.

use jiff::Timestamp;
use rhai::{Dynamic, Scope, AST};

use super::errors::{eval_error, friendly_type};
use super::library::Sandbox;
use super::roots::{scan_roots, Root};
use super::script::{script_error, Script, ScriptError};
use super::values::root_value;
use crate::rules::error::EvalError;
use crate::rules::limits::{before_eval, EvalScope};
use crate::rules::rhai_engine::disabled_hint;
use crate::rules::value::FactLookup;

impl Sandbox {
    /// Compile an expression. Undeclared variables are compile errors.
    pub fn compile_expr(&self, source: &str) -> Result<Script, ScriptError> {
        let mut scope = Scope::new();
        for root in Root::ALL {
            // Plain (not constant) so the optimizer cannot fold the dummy value.
            scope.push_dynamic(root.name(), Dynamic::UNIT);
        }
        let ast = self
            .engine
            .compile_expression_with_scope(&scope, source)
            .map_err(|e| {
                script_error(
                    format!(
                        "Rhai syntax error: {}{}",
                        e.err_type(),
                        disabled_hint(source)
                    ),
                    e.position(),
                )
            })?;
        let (roots, facts) = scan_roots(source);
        Ok(Script {
            ast: AST::new(
                ast.statements().iter().cloned(),
                self.library.shared_lib().clone(),
            ),
            roots,
            facts,
            source: source.to_string(),
        })
    }

    fn run(&self, script: &Script, facts: &dyn FactLookup) -> Result<Dynamic, EvalError> {
        let mut scope = Scope::new();
        for root in &script.roots {
            scope.push_constant_dynamic(root.name(), root_value(*root, facts));
        }
        before_eval().map_err(|l| EvalError::new(l.message()))?;
        let guard = EvalScope::enter();
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &script.ast);
        // A limit hit inside a native function that swallowed the error (a
        // sort comparator) still fails the evaluation.
        if let Some(limit) = guard.tripped() {
            return Err(EvalError::new(limit.message()));
        }
        result.map_err(|e| eval_error(&e))
    }

    /// Evaluate a boolean expression.
    pub fn eval_bool(&self, script: &Script, facts: &dyn FactLookup) -> Result<bool, EvalError> {
        let v = self.run(script, facts)?;
        v.as_bool().map_err(|t| {
            EvalError::new(format!(
                "expression must return a boolean, got {}",
                friendly_type(t)
            ))
        })
    }

    /// Evaluate an expression for a message: strings as they are, `()` as
    /// "", numbers and booleans as text.
    pub fn eval_string(
        &self,
        script: &Script,
        facts: &dyn FactLookup,
    ) -> Result<String, EvalError> {
        let v = self.run(script, facts)?;
        if v.is_unit() {
            return Ok(String::new());
        }
        if v.is_string() || v.is_int() || v.is_bool() || v.is_float() || v.is_char() {
            return Ok(v.to_string());
        }
        Err(EvalError::new(format!(
            "expression must return a string, got {}",
            friendly_type(v.type_name())
        )))
    }

    /// Evaluate an expression for an instant: INT unix seconds, or `()` for
    /// none.
    pub fn eval_time(
        &self,
        script: &Script,
        facts: &dyn FactLookup,
    ) -> Result<Option<Timestamp>, EvalError> {
        let v = self.run(script, facts)?;
        if v.is_unit() {
            return Ok(None);
        }
        let secs = v.as_int().map_err(|t| {
            EvalError::new(format!(
                "expression must return a time (unix seconds) or (), got {}",
                friendly_type(t)
            ))
        })?;
        Timestamp::from_second(secs)
            .map(Some)
            .map_err(|e| EvalError::new(format!("{secs} is not a valid time: {e}")))
    }
}
