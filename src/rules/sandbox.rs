//! The locked-down Rhai engine. Rule files are untrusted (DESIGN invariant
//! 6): scripts get no I/O, no `eval`, no module loading, strict variables,
//! strict map properties, and limits on operations, call depth, expression
//! depth, value sizes and wall-clock time. Expressions see the facts as
//! read-only variables built only for the roots they mention.

use std::collections::HashMap;
use std::fmt;

use rhai::{Dynamic, Engine, EvalAltResult, Map, Position, Scope, AST};

use super::catalog::{AttemptField, EvidenceField, Fact};
use super::error::EvalError;
use super::limits::{before_eval, EvalScope, Limit};
pub use super::limits::{
    DECISION_TIME_LIMIT, MAX_ARRAY_LEN, MAX_CALL_LEVELS, MAX_EXPR_DEPTH, MAX_FN_EXPR_DEPTH,
    MAX_FUNCTIONS, MAX_MAP_LEN, MAX_OPERATIONS, MAX_STRING_BYTES, MAX_VARIABLES, TIME_LIMIT,
};
use super::regex_budget::RegexBudget;
use super::rhai_engine::{disabled_hint, new_engine};
use super::value::{FactLookup, FactValue, ItemLookup};

/// The variables an expression can read; each is a read-only map (or INT for
/// `now`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Wfe,
    Execution,
    History,
    Backoff,
    Cooldown,
    Env,
    Failure,
    Now,
}

impl Root {
    pub const ALL: [Root; 8] = [
        Root::Wfe,
        Root::Execution,
        Root::History,
        Root::Backoff,
        Root::Cooldown,
        Root::Env,
        Root::Failure,
        Root::Now,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Root::Wfe => "wfe",
            Root::Execution => "execution",
            Root::History => "history",
            Root::Backoff => "backoff",
            Root::Cooldown => "cooldown",
            Root::Env => "env",
            Root::Failure => "failure",
            Root::Now => "now",
        }
    }

    fn from_name(name: &str) -> Option<Root> {
        Root::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// Key of the attempt list inside the `history` map (`history.items`).
pub const HISTORY_ITEMS_KEY: &str = "items";

/// A compiled expression, sharing the function libraries of its rule set
/// (compiled once per set, not copied into every expression), and the roots
/// it reads.
#[derive(Clone)]
pub struct Script {
    ast: AST,
    roots: Vec<Root>,
    facts: Vec<Fact>,
    source: String,
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

fn script_error(message: String, pos: Position) -> ScriptError {
    let line = pos.line().and_then(|l| u32::try_from(l).ok()).unwrap_or(0);
    let col = pos
        .position()
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(0);
    ScriptError { line, col, message }
}

/// The engine plus the function libraries of the rule set.
pub struct Sandbox {
    engine: Engine,
    library: AST,
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
}

fn friendly_type(t: &str) -> &str {
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

fn eval_error(e: &EvalAltResult) -> EvalError {
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

/// Find the roots an expression mentions and the facts it reads, from its
/// text: identifiers not preceded by `.` and outside string literals.
fn scan_roots(src: &str) -> (Vec<Root>, Vec<Fact>) {
    let bytes = src.as_bytes();
    let mut roots = Vec::new();
    let mut facts = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        // Backtick strings are scanned as code: `${...}` interpolates.
        if c == b'"' || c == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let after_dot = start > 0 && bytes[start - 1] == b'.';
            if after_dot {
                continue;
            }
            if let Some(root) = Root::from_name(&src[start..i]) {
                if !roots.contains(&root) {
                    roots.push(root);
                }
                let field = read_field(bytes, i);
                let path = match (root, field) {
                    (Root::Now, _) => Some("now".to_string()),
                    (Root::History, Some(HISTORY_ITEMS_KEY)) => Some("history".to_string()),
                    (_, Some(f)) => Some(format!("{}.{f}", root.name())),
                    (_, None) => None,
                };
                if let Some(fact) = path.as_deref().and_then(Fact::from_path) {
                    if !facts.contains(&fact) {
                        facts.push(fact);
                    }
                }
            }
            continue;
        }
        i += 1;
    }
    (roots, facts)
}

fn read_field(bytes: &[u8], mut i: usize) -> Option<&str> {
    if bytes.get(i) != Some(&b'.') {
        return None;
    }
    i += 1;
    let start = i;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    std::str::from_utf8(&bytes[start..i]).ok()
}

/// The Rhai value of a fact: times as INT unix seconds, null as `()`.
pub fn to_dynamic(v: &FactValue<'_>) -> Dynamic {
    match v {
        FactValue::Null => Dynamic::UNIT,
        FactValue::Bool(b) => Dynamic::from_bool(*b),
        FactValue::Int(i) => Dynamic::from_int(*i),
        FactValue::Str(s) => Dynamic::from(s.to_string()),
        FactValue::Owned(s) => Dynamic::from(s.clone()),
        FactValue::Time(t) => Dynamic::from_int(t.as_second()),
        FactValue::StrList(l) => {
            Dynamic::from_array(l.iter().map(|s| Dynamic::from(s.clone())).collect())
        }
        FactValue::Evidence(items) => Dynamic::from_array(
            items
                .iter()
                .map(|e| {
                    let mut m = Map::new();
                    for f in EvidenceField::ALL {
                        m.insert(f.path().into(), to_dynamic(&e.evidence_field(*f)));
                    }
                    Dynamic::from_map(m)
                })
                .collect(),
        ),
        FactValue::Attempts(items) => Dynamic::from_array(
            items
                .iter()
                .map(|a| {
                    let mut m = Map::new();
                    for f in AttemptField::ALL {
                        m.insert(f.path().into(), to_dynamic(&a.attempt_field(*f)));
                    }
                    Dynamic::from_map(m)
                })
                .collect(),
        ),
    }
}

fn root_value(root: Root, facts: &dyn FactLookup) -> Dynamic {
    if root == Root::Now {
        return to_dynamic(&facts.fact(Fact::Now));
    }
    let prefix = root.name();
    let mut map = Map::new();
    for fact in Fact::ALL {
        let path = fact.path();
        if root == Root::History && path == "history" {
            map.insert(HISTORY_ITEMS_KEY.into(), to_dynamic(&facts.fact(*fact)));
            continue;
        }
        if let Some(key) = path
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('.'))
        {
            map.insert(key.into(), to_dynamic(&facts.fact(*fact)));
        }
    }
    Dynamic::from_map(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    struct NoFacts;
    impl FactLookup for NoFacts {
        fn fact(&self, fact: Fact) -> FactValue<'_> {
            match fact {
                Fact::ExecReason => FactValue::Str("OOMKilled"),
                Fact::ExecExitCode => FactValue::Int(137),
                _ => FactValue::Null,
            }
        }
    }

    fn eval(src: &str) -> Result<bool, EvalError> {
        let sb = Sandbox::default();
        let s = sb
            .compile_expr(src)
            .map_err(|e| EvalError::new(e.message))?;
        sb.eval_bool(&s, &NoFacts)
    }

    fn with_lib(lib: &str, expr: &str) -> (Result<bool, EvalError>, Duration) {
        let sb = Sandbox::with_libraries(&[("lib.rhai".into(), lib.into())]).unwrap();
        let s = sb.compile_expr(expr).unwrap();
        let t = Instant::now();
        let r = sb.eval_bool(&s, &NoFacts);
        (r, t.elapsed())
    }

    #[test]
    fn reads_facts() {
        assert!(eval(r#"execution.reason == "OOMKilled" && execution.exitCode == 137"#).unwrap());
        assert!(eval("wfe.name == ()").unwrap());
    }

    #[test]
    fn missing_property_is_an_error() {
        let e = eval("execution.nope == 1").unwrap_err();
        assert!(e.message.contains("no such property"), "{}", e.message);
    }

    #[test]
    fn undeclared_variable_is_a_compile_error() {
        let sb = Sandbox::default();
        let e = sb.compile_expr("foo == 1").unwrap_err();
        assert!(e.message.contains("foo"), "{}", e.message);
    }

    #[test]
    fn eval_is_refused() {
        let sb = Sandbox::default();
        assert!(sb.compile_expr(r#"eval("1 == 1")"#).is_err());
    }

    #[test]
    fn non_boolean_is_an_error() {
        let e = eval(r#""yes""#).unwrap_err();
        assert!(
            e.message.contains("expected a boolean") || e.message.contains("must return a boolean"),
            "{}",
            e.message
        );
        let e = eval(r#"execution.reason - 1 == 2"#).unwrap_err();
        assert!(e.message.contains("script error"), "{}", e.message);
    }

    #[test]
    fn infinite_loop_is_stopped_quickly() {
        let (r, took) = with_lib("fn spin() { loop { } }", "spin()");
        let msg = r.unwrap_err().message;
        assert!(
            msg.contains("operation limit") || msg.contains("time limit"),
            "{msg}"
        );
        assert!(took < Duration::from_millis(500), "{took:?}");
    }

    #[test]
    fn deep_recursion_is_stopped() {
        let (r, took) = with_lib("fn down(n) { down(n + 1) }", "down(0)");
        let msg = r.unwrap_err().message;
        assert!(msg.contains("call depth"), "{msg}");
        assert!(took < Duration::from_millis(500), "{took:?}");
    }

    #[test]
    fn huge_allocations_are_stopped() {
        let (r, took) = with_lib(r#"fn big() { let s = "x"; loop { s += s; } }"#, "big()");
        let msg = r.unwrap_err().message;
        assert!(msg.contains("size limit"), "{msg}");
        assert!(took < Duration::from_millis(500), "{took:?}");
        let (r, _) = with_lib(
            "fn arr() { let a = []; loop { a.push(a.len()); } }",
            "arr()",
        );
        let msg = r.unwrap_err().message;
        assert!(
            // Whichever limit comes first (the clock can win on a loaded debug build).
            msg.contains("size limit")
                || msg.contains("operation limit")
                || msg.contains("time limit"),
            "{msg}"
        );
    }

    #[test]
    fn libraries_hold_functions_only() {
        let e = Sandbox::with_libraries(&[("a.rhai".into(), "fn f() { 1 }\nlet x = 2;".into())])
            .unwrap_err();
        assert_eq!(e[0].1.line, 2);
        assert!(e[0].1.message.contains("only define functions"));
        let e = Sandbox::with_libraries(&[("a.rhai".into(), "fn f( { 1 }".into())]).unwrap_err();
        assert!(e[0].1.message.contains("syntax error"));
        // Functions cannot reach the facts: they are pure.
        let e = Sandbox::with_libraries(&[("a.rhai".into(), "fn f() { execution.reason }".into())])
            .unwrap_err();
        assert!(e[0].1.message.contains("execution"), "{}", e[0].1.message);
    }

    #[test]
    fn closures_over_fact_lists_work() {
        // The example of docs/rules.md.
        let (r, _) = with_lib(
            "fn any_reason(list, r) { list.some(|e| e == r) }",
            r#"any_reason(["a", "OOMKilled"], execution.reason) && execution.exitCode != ()"#,
        );
        assert!(r.unwrap());
    }

    #[test]
    fn library_functions_are_callable() {
        let (r, _) = with_lib(
            "fn is_oom(r) { r == \"OOMKilled\" }",
            "is_oom(execution.reason)",
        );
        assert!(r.unwrap());
    }
}
