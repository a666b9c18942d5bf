//! Rhai's evaluation errors, worded for rule authors.

use rhai::{EvalAltResult, Position};

use crate::rules::error::EvalError;
use crate::rules::limits::{Limit, MAX_CALL_LEVELS};

pub(super) fn friendly_type(t: &str) -> &str {
    match t {
        "()" => "() (null)",
        "i64" => "int",
        "f64" => "float",
        "bool" => "boolean",
        "ImmutableString" | "string" => "string",
        "rhai::Array" | "array" => "array",
        "rhai::Map" | "map" => "map",
        other => other,
    }
}

pub(super) fn eval_error(e: &EvalAltResult) -> EvalError {
    let at = |pos: &Position| {
        if pos.is_none() {
            String::new()
        } else {
            format!(" (script {pos})")
        }
    };
    let message = match e {
        EvalAltResult::ErrorTooManyOperations(p) => {
            format!("{}{}", Limit::Operations.message(), at(p))
        }
        EvalAltResult::ErrorTerminated(token, p) => {
            format!("{}{}", token, at(p))
        }
        EvalAltResult::ErrorStackOverflow(p) => {
            format!(
                "call depth limit exceeded ({MAX_CALL_LEVELS} levels){}",
                at(p)
            )
        }
        EvalAltResult::ErrorDataTooLarge(what, p) => {
            format!("size limit exceeded: {what} too large{}", at(p))
        }
        EvalAltResult::ErrorPropertyNotFound(name, p) => {
            format!("no such property `{name}`{}", at(p))
        }
        EvalAltResult::ErrorMismatchOutputType(expected, actual, p) => {
            format!(
                "expected {}, got {}{}",
                friendly_type(expected),
                friendly_type(actual),
                at(p)
            )
        }
        EvalAltResult::ErrorInFunctionCall(name, _, inner, _) => {
            let inner = eval_error(inner);
            format!("in function {name}: {}", inner.message)
        }
        other => format!("script error: {other}"),
    };
    EvalError::new(message)
}
