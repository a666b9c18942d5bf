//! Matcher unit tests: compile from YAML, evaluate against fixed facts.

use super::{Matcher, Subject};
use crate::observe::{Attempt, Evidence};
use crate::rules::catalog::Fact;
use crate::rules::diag::Diags;
use crate::rules::sandbox::Sandbox;
use crate::rules::value::{FactLookup, FactValue};
use crate::rules::yaml::parse_documents;
use std::collections::BTreeMap;

struct F {
    evidence: Vec<Evidence>,
    deps: Vec<String>,
    annotations: BTreeMap<String, String>,
}
impl FactLookup for F {
    fn fact(&self, fact: Fact) -> FactValue<'_> {
        match fact {
            Fact::ExecReason => FactValue::Str("PipelineRunTimeout"),
            Fact::ExecMessage => FactValue::Str("step-build: exit code 137 (OOMKilled) after 3m"),
            Fact::ExecExitCode => FactValue::Int(137),
            Fact::ExecStarted => FactValue::Bool(true),
            Fact::ExecEvidence => FactValue::Evidence(&self.evidence),
            Fact::EnvMissingDependencies => FactValue::StrList(&self.deps),
            Fact::WfeAnnotations => FactValue::StrMap(&self.annotations),
            _ => FactValue::Null,
        }
    }
}

fn facts() -> F {
    F {
        evidence: vec![Evidence {
            source: "step".into(),
            state: "terminated".into(),
            reason: "OOMKilled".into(),
            exit_code: Some(137),
            ..Evidence::default()
        }],
        deps: vec!["secret/db".into()],
        annotations: [("example.com/approved-by".to_string(), "alice".to_string())].into(),
    }
}

fn compile(yaml: &str, ctx: Subject) -> Result<Matcher, Vec<String>> {
    let node = parse_documents(yaml).unwrap().remove(0);
    let mut d = Diags::new("t.yaml");
    let sb = Sandbox::default();
    Matcher::compile(&node, ctx, &sb, &mut d)
        .ok_or_else(|| d.errors.iter().map(|e| e.to_string()).collect())
}

fn check(yaml: &str) -> bool {
    let m = compile(yaml, Subject::Facts).unwrap();
    m.eval(&facts(), &Sandbox::default()).unwrap()
}

#[test]
fn scalar_list_and_operators() {
    assert!(check("execution.reason: pipelineruntimeout"));
    assert!(check("execution.reason: [Foo, PipelineRunTimeout]"));
    assert!(!check("execution.reason: {notIn: [PipelineRunTimeout]}"));
    assert!(check(
        "execution.message: {contains: OOMKILLED, word: exit}"
    ));
    assert!(!check("execution.message: {word: OOM}"));
    assert!(check("execution.message: {word: oomkilled}"));
    assert!(check("execution.message: {startsWith: STEP-}"));
    assert!(check("execution.message: {matches: '(?i)exit code \\d+'}"));
    assert!(check("execution.exitCode: {gte: 137, lt: 200}"));
    assert!(check("execution.exitCode: 137"));
    assert!(check("execution.started: true"));
    assert!(check("execution.failureMessage: null"));
    assert!(check("execution.failureMessage: {exists: false}"));
    assert!(check(
        "execution.message: {containsAny: [nothing, '(oomkilled)']}"
    ));
}

#[test]
fn combinators_and_lists() {
    assert!(check(
        "any: [{execution.exitCode: 1}, {execution.reason: PipelineRunTimeout}]"
    ));
    assert!(check("not: {execution.started: false}"));
    assert!(check(
        "all: [{execution.started: true}, {execution.exitCode: {gt: 0}}]"
    ));
    assert!(check(
        "execution.evidence: {some: {reason: oomkilled, exitCode: 137, source: [step, container]}}"
    ));
    assert!(check("execution.evidence: {none: {synthetic: true}}"));
    assert!(check(
        "env.missingDependencies: {some: {startsWith: secret/}, contains: SECRET/DB}"
    ));
    assert!(check("expr: 'execution.exitCode > 100'"));
}

#[test]
fn attempt_items() {
    let m = compile(
        "phase: Failed\nwasExecutionFailure: true\ncleared: {notEquals: true}",
        Subject::Attempt,
    )
    .unwrap();
    let a = Attempt {
        phase: "failed".into(),
        was_execution_failure: true,
        ..Attempt::default()
    };
    assert!(m.eval_item(&a).unwrap());
    let b = Attempt {
        phase: "Completed".into(),
        ..Attempt::default()
    };
    assert!(!m.eval_item(&b).unwrap());
}

#[test]
fn load_errors_name_the_problem() {
    let e = compile("execution.reasn: x", Subject::Facts).unwrap_err();
    assert!(
        e[0].contains(
            "t.yaml:1:1: unknown fact `execution.reasn` (did you mean `execution.reason`"
        ),
        "{e:?}"
    );
    let e = compile("execution.started: \"yes\"", Subject::Facts).unwrap_err();
    assert!(e[0].contains("Bool"), "{e:?}");
    let e = compile("execution.reason: {gt: 3}", Subject::Facts).unwrap_err();
    assert!(e[0].contains("`gt` does not apply"), "{e:?}");
    let e = compile("execution.reason: {matches: '('}", Subject::Facts).unwrap_err();
    assert!(e[0].contains("invalid regular expression"), "{e:?}");
    let e = compile("expr: 'execution.exitCode >'", Subject::Facts).unwrap_err();
    assert!(e[0].starts_with("t.yaml:1:"), "{e:?}");
    let e = compile("expr: 'true'", Subject::Attempt).unwrap_err();
    assert!(e[0].contains("only allowed"), "{e:?}");
    // Every error of the matcher is reported, not only the first.
    let e = compile(
        "a.b: 1\nexecution.exitCode: {foo: 1}\nexecution.reason: 3",
        Subject::Facts,
    )
    .unwrap_err();
    assert_eq!(e.len(), 3, "{e:?}");
    let e = compile("execution.evidence: {some: {reasn: x}}", Subject::Facts).unwrap_err();
    assert!(e[0].contains("unknown evidence field `reasn`"), "{e:?}");
}

#[test]
fn display_describes_the_tree() {
    let m = compile(
        "execution.reason: [A, B]\nnot: {execution.exitCode: {gt: 1}}",
        Subject::Facts,
    )
    .unwrap();
    assert_eq!(
        m.to_string(),
        "execution.reason in [\"A\", \"B\"] and not(execution.exitCode > 1)"
    );
    assert_eq!(m.facts(), vec![Fact::ExecReason, Fact::ExecExitCode]);
}

#[test]
fn map_entries_by_key() {
    assert!(check("wfe.annotations[example.com/approved-by]: alice"));
    assert!(check(
        "wfe.annotations[example.com/approved-by]: {exists: true}"
    ));
    assert!(check("wfe.annotations[example.com/other]: {exists: false}"));
    assert!(check("wfe.annotations[example.com/other]: null"));
    assert!(check(
        "wfe.annotations: {contains: example.com/approved-by}"
    ));
    assert!(check("wfe.annotations: {exists: true}"));
    assert!(check("wfe.labels: {exists: false}"));
    assert!(check(
        "expr: 'wfe.annotations[\"example.com/approved-by\"] == \"alice\"'"
    ));
    assert!(check("expr: '!(\"example.com/other\" in wfe.annotations)'"));
    let e = compile("wfe.name[x]: y", Subject::Facts).unwrap_err();
    assert!(e[0].contains("not a map"), "{e:?}");
    let e = compile("wfe.annotations[x]: 3", Subject::Facts).unwrap_err();
    assert!(e[0].contains("Str"), "{e:?}");
    let e = compile("wfe.annotations: x", Subject::Facts).unwrap_err();
    assert!(e[0].contains("StrMap"), "{e:?}");
}
