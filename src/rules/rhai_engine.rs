//! The Rhai engine rules run in: which packages, which functions are taken
//! away, and the limits wired in. Rule files are untrusted (DESIGN invariant
//! 6), so anything that can block the thread or grow memory outside the
//! engine's own size accounting is not reachable.

use rhai::packages::{
    BasicArrayPackage, BasicMapPackage, BasicMathPackage, CorePackage, LogicPackage,
    MoreStringPackage, Package,
};
use rhai::{Dynamic, Engine, EvalAltResult, Module, FLOAT, INT};

use super::limits::{self, *};

/// Functions of the standard packages that rules may not call, and why.
const BLOCKED: &[(&str, &str)] = &[(
    "sleep",
    "`sleep` is not available in rules (it would block the controller)",
)];

/// Keywords taken away at parse time. `curry` copies a function pointer with
/// all its curried values, and those copies are outside the engine's size
/// accounting: 27 self-curries are 2^27 values. Closures keep working (they
/// capture shared values, not copies).
const DISABLED_SYMBOLS: &[&str] = &["eval", "curry"];

/// A hint for a compile error of `source` when it names a disabled keyword
/// (Rhai's own message only says the syntax is wrong).
pub(crate) fn disabled_hint(source: &str) -> String {
    let named: Vec<&str> = DISABLED_SYMBOLS
        .iter()
        .copied()
        .filter(|s| {
            source.match_indices(s).any(|(i, _)| {
                let before = source[..i].chars().next_back();
                let after = source[i + s.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .collect();
    if named.is_empty() {
        String::new()
    } else {
        format!(" (`{}` is not available in rules)", named.join("`, `"))
    }
}

pub(crate) fn new_engine() -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(CorePackage::new().as_shared_module());
    engine.register_global_module(LogicPackage::new().as_shared_module());
    engine.register_global_module(MoreStringPackage::new().as_shared_module());
    engine.register_global_module(BasicArrayPackage::new().as_shared_module());
    engine.register_global_module(BasicMapPackage::new().as_shared_module());
    engine.register_global_module(BasicMathPackage::new().as_shared_module());
    // Registered last: modules loaded later are searched first, so these
    // replace the packages' versions.
    engine.register_global_module(blocked_functions().into());
    for symbol in DISABLED_SYMBOLS {
        engine.disable_symbol(*symbol);
    }
    engine.set_strict_variables(true);
    engine.set_fail_on_invalid_map_property(true);
    // The operation limit is counted in `on_progress` (see limits.rs), so
    // that it stays hit after a native function swallows its error.
    engine.set_max_operations(0);
    engine.set_max_call_levels(MAX_CALL_LEVELS);
    engine.set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FN_EXPR_DEPTH);
    engine.set_max_string_size(MAX_STRING_BYTES);
    engine.set_max_array_size(MAX_ARRAY_LEN);
    engine.set_max_map_size(MAX_MAP_LEN);
    engine.set_max_functions(MAX_FUNCTIONS);
    engine.set_max_variables(MAX_VARIABLES);
    engine.on_print(|s| tracing::debug!(target: "wfe_engine::rules::rhai", "print: {s}"));
    engine.on_debug(
        |s, _src, pos| tracing::debug!(target: "wfe_engine::rules::rhai", "debug at {pos}: {s}"),
    );
    engine.on_progress(|ops| limits::on_progress(ops).map(|l| Dynamic::from(l.message())));
    engine
}

fn blocked_functions() -> Module {
    let mut m = Module::new();
    for (name, why) in BLOCKED {
        let why_int = *why;
        let why_float = *why;
        m.set_native_fn(*name, move |_: INT| -> Result<(), Box<EvalAltResult>> {
            Err(why_int.into())
        });
        m.set_native_fn(*name, move |_: FLOAT| -> Result<(), Box<EvalAltResult>> {
            Err(why_float.into())
        });
    }
    m
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::rules::catalog::Fact;
    use crate::rules::value::{FactLookup, FactValue};
    use crate::rules::Sandbox;

    struct NoFacts;
    impl FactLookup for NoFacts {
        fn fact(&self, _: Fact) -> FactValue<'_> {
            FactValue::Null
        }
    }

    /// Evaluates `expr` with `lib`; the error message or the value, and how long it took.
    fn run(lib: &str, expr: &str) -> (Result<bool, String>, Duration) {
        let sb = Sandbox::with_libraries(&[("lib.rhai".into(), lib.into())])
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        let t = Instant::now();
        let r = sb
            .compile_expr(expr)
            .map_err(|e| e.message)
            .and_then(|s| sb.eval_bool(&s, &NoFacts).map_err(|e| e.message));
        (r, t.elapsed())
    }

    #[test]
    fn sleep_is_not_reachable() {
        for arg in ["1e300", "9223372036854775807", "1", "0.5"] {
            let (r, took) = run(&format!("fn nap() {{ sleep({arg}); true }}"), "nap()");
            let msg = r.unwrap_err();
            assert!(msg.contains("sleep"), "{msg}");
            assert!(took < Duration::from_millis(500), "{took:?}");
        }
        let (r, _) = run("", "sleep(1e300) == ()");
        assert!(r.unwrap_err().contains("not available"));
    }

    #[test]
    fn curry_is_refused_at_load_and_closures_still_work() {
        let sb = Sandbox::default();
        let e = sb.compile_expr("Fn(\"x\").curry(1) == ()").unwrap_err();
        assert!(e.message.contains("curry"), "{}", e.message);
        let e = Sandbox::with_libraries(&[(
            "l.rhai".into(),
            "fn f() { let a = |x| x; for i in 0..27 { a = a.curry(a); } true }".into(),
        )])
        .unwrap_err();
        assert!(e[0].1.message.contains("curry"), "{:?}", e);
        let (r, _) = run(
            "fn f(list, r) { let k = r; list.filter(|e| e == k).len() == 1 }",
            "f([1, 2], 2)",
        );
        assert!(r.unwrap());
    }

    #[test]
    fn a_sort_comparator_over_the_operation_limit_fails_the_guard() {
        let (r, took) = run(
            "fn spin(a, b) { loop { } }\nfn sorted() { let x = [3, 1, 2]; x.sort(|a, b| spin(a, b)); true }",
            "sorted()",
        );
        let msg = r.unwrap_err();
        assert!(msg.contains("limit"), "{msg}");
        assert!(took < Duration::from_millis(500), "{took:?}");
        let (r, _) = run(
            "fn d() { let x = [3, 1, 2]; x.dedup(|a, b| { loop {} }); true }",
            "d()",
        );
        assert!(r.unwrap_err().contains("limit"));
    }

    #[test]
    fn the_function_limit_is_per_rule_set() {
        let lib = |prefix: &str| -> String {
            (0..400)
                .map(|i| format!("fn {prefix}{i}() {{ {i} }}\n"))
                .collect()
        };
        let e =
            Sandbox::with_libraries(&[("a.rhai".into(), lib("a")), ("b.rhai".into(), lib("b"))])
                .unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "b.rhai");
        assert!(
            e[0].1.message.contains("more than 512 functions"),
            "{:?}",
            e
        );
        assert!(Sandbox::with_libraries(&[("a.rhai".into(), lib("a"))]).is_ok());
    }
}
