//! Sandbox unit tests: facts are read, limits stop hostile scripts quickly.

use std::time::{Duration, Instant};

use super::Sandbox;
use crate::rules::catalog::Fact;
use crate::rules::error::EvalError;
use crate::rules::value::{FactLookup, FactValue};

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
        msg.contains("size limit") || msg.contains("operation limit") || msg.contains("time limit"),
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

#[test]
fn maps_are_maps_and_time_functions_are_there() {
    struct M(std::collections::BTreeMap<String, String>);
    impl FactLookup for M {
        fn fact(&self, fact: Fact) -> FactValue<'_> {
            match fact {
                Fact::WfeAnnotations => FactValue::StrMap(&self.0),
                Fact::Now => FactValue::Time("2026-03-01T22:30:00Z".parse().unwrap()),
                _ => FactValue::Null,
            }
        }
    }
    let m = M([("a.io/x".to_string(), "1".to_string())].into());
    let sb = Sandbox::default();
    let run = |src: &str| {
        let s = sb.compile_expr(src).map_err(|e| e.message)?;
        sb.eval_bool(&s, &m).map_err(|e| e.message)
    };
    assert_eq!(run(r#"wfe.annotations["a.io/x"] == "1""#), Ok(true));
    assert_eq!(run(r#""a.io/y" in wfe.annotations"#), Ok(false));
    assert!(run(r#"wfe.annotations["a.io/y"] == ()"#).is_err());
    assert_eq!(
        run(r#"minutes_of_day(now, "Europe/Berlin") == clock_minutes("23:30")"#),
        Ok(true)
    );
    assert_eq!(run(r#"day_of_week(now, "UTC") == 7"#), Ok(true));
    assert_eq!(run(r#"duration_secs("2m") == 120"#), Ok(true));
}

/// `until` is a Rhai keyword: `cooldown.until` does not parse, and the
/// error says how to read it; `cooldown["until"]` does.
#[test]
fn a_keyword_field_is_read_by_index() {
    let sb = Sandbox::default();
    let e = sb.compile_expr("cooldown.until == ()").unwrap_err();
    assert!(
        e.message.contains("cooldown[\"until\"]") || e.message.contains("[\"until\"]"),
        "{}",
        e.message
    );
    let s = sb.compile_expr(r#"cooldown["until"] == ()"#).unwrap();
    assert_eq!(s.facts(), &[Fact::CooldownUntil]);
    assert!(sb.eval_bool(&s, &NoFacts).unwrap());
}
