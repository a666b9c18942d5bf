//! The command line as a user meets it: one exit-code rule for every
//! command, a closed pipe that ends quietly, tables that fit 120 columns,
//! the evaluation instant stated, rule errors visible in every format, and
//! the rule-test and check options.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wfe-engine"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run wfe-engine")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn copy_rules(dir: &Path, with_tests: bool) {
    for f in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if with_tests || !name.contains(".test.") {
            std::fs::copy(&p, dir.join(&name)).unwrap();
        }
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn exit_codes_follow_one_rule() {
    let bad = tempfile::tempdir().unwrap();
    copy_rules(bad.path(), true);
    edit(
        &bad.path().join("lifecycle.yaml"),
        "to: Running",
        "to: Runing",
    );
    let bad = bad.path().to_str().unwrap();
    // 1: invalid rules, in every command that loads them.
    for args in [
        vec!["check", "--rules", bad],
        vec!["test", "--rules", bad],
        vec!["dry-run", "--rules", bad, "tests/fixtures/captures"],
        vec!["diff", "--rules", bad, "tests/fixtures/captures"],
        vec!["run", "--rules", bad],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", err(&o));
        assert!(err(&o).contains("lifecycle.yaml:"), "{args:?}: {}", err(&o));
    }
    // 2: usage and input errors, `run` included.
    for args in [
        vec!["run", "--rules", "/nonexistent"],
        vec![
            "run",
            "--rules",
            "rules",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ],
        vec![
            "dry-run",
            "--rules",
            "/nonexistent",
            "tests/fixtures/captures",
        ],
        vec!["test", "--run", "(unclosed"],
        vec!["capture", "not-a-namespaced-name"],
        vec![
            "explain",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "ns/name",
        ],
        vec!["check", "--no-such-flag"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
        assert!(!err(&o).contains("panicked"), "{args:?}");
    }
}

/// `| head` closes stdout early: the command ends quietly with 0.
#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let capture =
        std::fs::read("tests/fixtures/captures/tekton-v1-oom-stepoom-v1.12.yaml").unwrap();
    for i in 0..300 {
        std::fs::write(dir.path().join(format!("c{i:03}.yaml")), &capture).unwrap();
    }
    for format in ["table", "json", "yaml"] {
        let mut child = bin()
            .args([
                "dry-run",
                "--explain",
                "-o",
                format,
                dir.path().to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // The reader is dropped here: stdout is closed after one line.
        let o = child.wait_with_output().unwrap();
        assert!(!first.is_empty());
        assert_eq!(o.status.code(), Some(0), "{format}: {}", err(&o));
        assert!(err(&o).is_empty(), "{format}: {}", err(&o));
    }
}

#[test]
fn tables_fit_120_columns_unless_wide() {
    let o = run(&["dry-run", "tests/fixtures/captures"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    let long: Vec<&str> = text.lines().filter(|l| l.chars().count() > 120).collect();
    assert!(long.is_empty(), "{long:#?}");
    assert!(text.contains('…'), "long values are cut");
    let wide = out(&run(&["dry-run", "-o", "wide", "tests/fixtures/captures"]));
    assert!(wide.lines().any(|l| l.chars().count() > 120));
    assert!(wide.contains(
        "tests/fixtures/captures/tekton-v1-unschedulable-insufficient-memory-timeout-v1.12.yaml"
    ));
    let bare = out(&run(&[
        "dry-run",
        "--no-headers",
        "tests/fixtures/captures",
    ]));
    assert!(
        !bare.contains("SOURCE") && !bare.contains("rules revision"),
        "{bare}"
    );
    assert_eq!(
        bare.lines().filter(|l| !l.starts_with(' ')).count(),
        text.lines().filter(|l| !l.starts_with(' ')).count() - 3,
        "one line less at the top, two at the bottom"
    );
}

/// Without `--now`, the newest timestamp in the inputs (here the history's
/// March completion), stated in the output; never a fixed date in the past.
#[test]
fn the_default_now_is_the_newest_input_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let wfe = dir.path().join("wfe.yaml");
    std::fs::write(
        &wfe,
        "apiVersion: kubernaut.ai/v1alpha1\nkind: WorkflowExecution\nmetadata: {name: next, namespace: default}\nspec:\n  remediationRequestRef: {name: rr}\n  targetResource: default/deployment/app\n  workflowRef: {workflowId: w, workflowName: w, actionType: a, version: \"1\", executionBundle: b, executionEngine: tekton}\n",
    )
    .unwrap();
    let hist = dir.path().join("history.yaml");
    std::fs::write(
        &hist,
        "apiVersion: kubernaut.ai/v1alpha1\nkind: WorkflowExecution\nmetadata: {name: before, namespace: default}\nspec:\n  remediationRequestRef: {name: rr}\n  targetResource: default/deployment/app\n  workflowRef: {workflowId: w, workflowName: w, actionType: a, version: \"1\", executionBundle: b, executionEngine: tekton}\nstatus: {phase: Completed, completionTime: \"2026-03-01T10:00:00Z\"}\n",
    )
    .unwrap();
    let (w, h) = (wfe.to_str().unwrap(), hist.to_str().unwrap());
    let o = run(&["dry-run", "--wfe", w, "--history", h]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("held: CooldownActive until 2026-03-01T10:05:00Z"),
        "{text}"
    );
    assert!(
        text.contains("evaluated at 2026-03-01T10:00:00Z (the newest timestamp in the inputs)"),
        "{text}"
    );
    let o = run(&[
        "dry-run",
        "--wfe",
        w,
        "--history",
        h,
        "-o",
        "json",
        "--facts",
    ]);
    let r: Value = serde_json::from_str(out(&o).lines().next().unwrap()).unwrap();
    assert_eq!(r["now"], "2026-03-01T10:00:00Z");
    assert_eq!(r["hold"]["reason"], "CooldownActive");
    // --facts: what the rules see, derived facts included.
    assert_eq!(r["facts"]["wfe.name"], "next");
    assert_eq!(r["facts"]["cooldown.active"], true);
    assert_eq!(r["facts"]["cooldown.blockedBy"], "before");
    let table = out(&run(&["dry-run", "--wfe", w, "--history", h, "--facts"]));
    assert!(
        table.contains("fact cooldown.until: 2026-03-01T10:05:00Z"),
        "{table}"
    );
}

/// A rule that fails at evaluation time shows in every output format, and
/// the summary on stderr points at where it is.
#[test]
fn rule_errors_appear_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    copy_rules(dir.path(), false);
    edit(
        &dir.path().join("lifecycle.yaml"),
        "      when:\n        execution.outcome: Completed\n",
        "      when:\n        expr: \"spin()\"\n",
    );
    std::fs::write(
        dir.path().join("spin.rhai"),
        "fn spin() { let x = 0; loop { x += 1; } }\n",
    )
    .unwrap();
    let rules = dir.path().to_str().unwrap();
    let capture = "tests/fixtures/captures/tekton-v1-succeeded.yaml";
    for (format, key) in [
        ("json", "rulesError"),
        ("yaml", "rulesError:"),
        ("table", "rules error:"),
    ] {
        let o = run(&["dry-run", "--rules", rules, "-o", format, capture]);
        assert_eq!(o.status.code(), Some(1), "{format}");
        assert!(
            // The operation or (on a loaded machine) the time limit stops it.
            out(&o).contains(key) && out(&o).contains("limit exceeded"),
            "{format}: {}",
            out(&o)
        );
        let hint = if format == "table" {
            "`rules error`"
        } else {
            "`rulesError`"
        };
        assert!(err(&o).contains(hint), "{format}: {}", err(&o));
    }
    // `test` shows the rule error in the failure.
    let t = dir.path().join("t.test.yaml");
    std::fs::write(
        &t,
        "apiVersion: rules.wfe.kubernaut.ai/v1alpha1\nkind: RuleTest\nmetadata: {name: t}\nspec:\n  cases:\n    - name: completes\n      capture: |\n        apiVersion: tekton.dev/v1\n        kind: PipelineRun\n        metadata: {name: x, namespace: kubernaut-workflows}\n        status: {conditions: [{type: Succeeded, status: \"True\", reason: Succeeded}]}\n      expect: {phase: Running}\n",
    )
    .unwrap();
    let o = run(&["test", "--rules", rules, t.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out(&o).contains("rules error: ") && out(&o).contains("limit exceeded"),
        "{}",
        out(&o)
    );
}

#[test]
fn test_options_filter_list_and_report() {
    let o = run(&["test", "--run", "cooldown", "-v"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let text = out(&o);
    let passes: Vec<&str> = text.lines().filter(|l| l.starts_with("PASS ")).collect();
    assert!(
        !passes.is_empty() && passes.iter().all(|l| l.contains("cooldown")),
        "{text}"
    );
    let o = run(&["test", "-o", "junit"]);
    let xml = out(&o);
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert_eq!(
        xml.matches("<testcase ").count(),
        xml.split("tests=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    );
    let o = run(&["test", "-o", "json"]);
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["failed"], 0);
    assert!(v["cases"].as_array().unwrap().len() >= 50);
    // A rule no test exercises fails with --fail-unexercised.
    let dir = tempfile::tempdir().unwrap();
    copy_rules(dir.path(), true);
    edit(
        &dir.path().join("failures.yaml"),
        "    # 8. A task or container ran and failed.",
        "    - name: untested\n      reason: ConfigurationError\n      when:\n        execution.exitCode: 99\n\n    # 8. A task or container ran and failed.",
    );
    let d = dir.path().to_str().unwrap();
    assert_eq!(run(&["test", "--rules", d]).status.code(), Some(0));
    let o = run(&["test", "--rules", d, "--fail-unexercised"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("untested"), "{}", out(&o));
}

/// RuleTest content is checked when the set loads: a bad time, an unknown
/// expectation key, a malformed inline capture are errors at file:line.
#[test]
fn check_reports_rule_test_content_and_strict_warnings() {
    let dir = tempfile::tempdir().unwrap();
    copy_rules(dir.path(), false);
    std::fs::write(
        dir.path().join("bad.test.yaml"),
        "apiVersion: rules.wfe.kubernaut.ai/v1alpha1\nkind: RuleTest\nmetadata: {name: bad}\nspec:\n  cases:\n    - name: a\n      now: \"yesterday\"\n      expect: {phase: Running}\n    - name: b\n      expect: {phaze: Running}\n    - name: c\n      capture: |\n        kind: [unclosed\n      expect: {phase: Running}\n    - name: d\n      expect: {holdUntil: \"now + coldown\"}\n",
    )
    .unwrap();
    let o = run(&["check", "--rules", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let e = err(&o);
    for want in [
        "bad.test.yaml:7:",
        "`now`",
        "bad.test.yaml:10:",
        "unknown key \"phaze\"",
        "inline capture",
        "coldown",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
    // A warning passes `check` but fails `check --strict`.
    let dir = tempfile::tempdir().unwrap();
    copy_rules(dir.path(), false);
    edit(
        &dir.path().join("failures.yaml"),
        "    # 8. A task or container ran and failed.",
        "    - name: catch-all\n      reason: Unknown\n      when: {expr: \"true\"}\n\n    # 8. A task or container ran and failed.",
    );
    let d = dir.path().to_str().unwrap();
    let o = run(&["check", "--rules", d]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        out(&o).contains("rule `task-failed` can never match"),
        "{}",
        out(&o)
    );
    assert_eq!(
        run(&["check", "--strict", "--rules", d]).status.code(),
        Some(1)
    );
    // A misspelt fact inside `expr:` is caught by check.
    edit(
        &dir.path().join("failures.yaml"),
        "expr: \"true\"",
        "expr: \"execution.reasn == \\\"x\\\"\"",
    );
    let o = run(&["check", "--rules", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("unknown fact `execution.reasn`"),
        "{}",
        err(&o)
    );
}
