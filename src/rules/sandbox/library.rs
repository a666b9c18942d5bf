//! The sandbox of a rule set: the locked-down engine plus the set's `.rhai`
//! function libraries, compiled once per set.

use std::collections::HashMap;
use std::fmt;

use rhai::{Engine, AST};

use super::script::{script_error, ScriptError};
use crate::rules::limits::MAX_FUNCTIONS;
use crate::rules::regex_budget::RegexBudget;
use crate::rules::rhai_engine::{disabled_hint, new_engine};

/// The engine plus the function libraries of the rule set.
pub struct Sandbox {
    pub(super) engine: Engine,
    pub(super) library: AST,
    /// The set's regexes are compiled under one budget (see regex_budget.rs).
    pub(crate) regexes: RegexBudget,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fns: Vec<String> = self
            .library
            .iter_functions()
            .map(|m| m.name.to_string())
            .collect();
        f.debug_struct("Sandbox").field("functions", &fns).finish()
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox {
            engine: new_engine(),
            library: AST::empty(),
            regexes: RegexBudget::default(),
        }
    }
}

impl Sandbox {
    /// A sandbox with the given `.rhai` function libraries (`(file, source)`).
    /// Libraries hold `fn` definitions only; every problem is returned.
    pub fn with_libraries(
        libs: &[(String, String)],
    ) -> Result<Sandbox, Vec<(String, ScriptError)>> {
        let engine = new_engine();
        let mut library = AST::empty();
        let mut errors = Vec::new();
        // (name, arity) -> file, for every function of the set so far.
        let mut seen: HashMap<(String, usize), String> = HashMap::new();
        for (file, src) in libs {
            let ast = match engine.compile(src) {
                Ok(ast) => ast,
                Err(e) => {
                    let pos = e.position();
                    errors.push((
                        file.clone(),
                        script_error(
                            format!("Rhai syntax error: {}{}", e.err_type(), disabled_hint(src)),
                            pos,
                        ),
                    ));
                    continue;
                }
            };
            if let Some(stmt) = ast.statements().first() {
                errors.push((
                    file.clone(),
                    script_error(
                        "a .rhai library may only define functions (`fn name(..) { .. }`); top-level statements are not allowed"
                            .into(),
                        stmt.position(),
                    ),
                ));
                continue;
            }
            let count = ast.iter_functions().count();
            if seen.len() + count > MAX_FUNCTIONS {
                // The limit is per rule set: Rhai's own applies per file.
                errors.push((
                    file.clone(),
                    ScriptError {
                        line: 1,
                        col: 1,
                        message: format!(
                            "the .rhai libraries of the rule set define more than {MAX_FUNCTIONS} functions ({} before this file, {count} in it)",
                            seen.len()
                        ),
                    },
                ));
                break;
            }
            for f in ast.iter_functions() {
                let key = (f.name.to_string(), f.params.len());
                if let Some(other) = seen.get(&key) {
                    errors.push((
                        file.clone(),
                        ScriptError {
                            line: 0,
                            col: 0,
                            message: format!(
                                "function {}/{} is also defined in {other}",
                                f.name,
                                f.params.len()
                            ),
                        },
                    ));
                }
                seen.insert(key, file.clone());
            }
            library = library.merge(&ast);
        }
        if errors.is_empty() {
            Ok(Sandbox {
                engine,
                library,
                regexes: RegexBudget::default(),
            })
        } else {
            Err(errors)
        }
    }

    /// Names of the library functions, for documentation and `check` output.
    pub fn functions(&self) -> Vec<String> {
        self.library
            .iter_functions()
            .map(|m| format!("{}/{}", m.name, m.params.len()))
            .collect()
    }
}
