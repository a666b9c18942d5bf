//! The command line, end to end through the built binary: dry-run against the
//! capture corpus, exit codes, explain output, rule test output, the CRD.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::hostile::PENDING_WFE;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wfe-engine"))
}

fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run wfe-engine")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

const KEYS: &[&str] = &[
    "file",
    "primary",
    "now",
    "outcome",
    "reason",
    "wasExecutionFailure",
    "failedTaskName",
    "failedPipelineTask",
    "failedTaskIndex",
    "exitCode",
    "message",
    "summary",
    "phase",
    "hold",
    "rulesRevision",
    "rule",
    "classificationRule",
    "rulesError",
];

/// Every capture of the corpus against its expected outcome (the golden
/// file, through `--expect`), with exactly the documented record keys.
#[test]
fn dry_run_matches_the_capture_corpus() {
    let o = run(&[
        "dry-run",
        "-o",
        "json",
        "--expect",
        "tests/fixtures/captures/expected.yaml",
        "tests/fixtures/captures",
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let text = stdout(&o);
    let first = text.lines().next().unwrap();
    let order: Vec<usize> = KEYS
        .iter()
        .map(|k| first.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "keys in the documented order: {first}"
    );
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(rows.len() >= 40, "corpus too small: {}", rows.len());
    for r in &rows {
        let obj = r.as_object().expect("object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        let mut want = KEYS.to_vec();
        keys.sort_unstable();
        want.sort_unstable();
        assert_eq!(keys, want, "exactly the documented keys");
        let file = obj["file"].as_str().unwrap();
        assert!(
            obj["primary"]
                .as_str()
                .is_some_and(|p| p.matches('/').count() == 2),
            "{file}: primary is kind/namespace/name"
        );
        if obj["outcome"] == "Failed" {
            assert!(
                obj["summary"]
                    .as_str()
                    .unwrap()
                    .contains("Recommendation: "),
                "{file}: summary has a recommendation"
            );
            // The classification rule that chose the reason (null: the default reason).
            assert!(
                obj["classificationRule"].is_null()
                    || obj["classificationRule"]
                        .as_str()
                        .unwrap()
                        .starts_with("failures.yaml#"),
                "{file}"
            );
        } else {
            assert!(
                obj["wasExecutionFailure"].is_null(),
                "{file}: null unless failed"
            );
        }
        assert!(obj["rulesRevision"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
        assert!(obj["rulesError"].is_null());
    }
}

/// A golden file that no longer matches: exit 1 and a diff naming the entry.
#[test]
fn dry_run_expect_reports_differences() {
    let dir = tempfile::tempdir().unwrap();
    let golden = dir.path().join("expected.yaml");
    std::fs::write(
        &golden,
        "tekton-v1-oom-stepoom-v1.12.yaml: {reason: TaskFailed, exitCode: 137}\nnot-there.yaml: {reason: OOMKilled}\n",
    )
    .unwrap();
    let o = run(&[
        "dry-run",
        "--expect",
        golden.to_str().unwrap(),
        "tests/fixtures/captures/tekton-v1-oom-stepoom-v1.12.yaml",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("-  reason: TaskFailed") && err.contains("+  reason: OOMKilled"),
        "{err}"
    );
    assert!(err.contains("-not-there.yaml: in "), "{err}");
    assert!(
        !err.contains("exitCode"),
        "matching keys are not listed: {err}"
    );
}

#[test]
fn dry_run_is_deterministic() {
    let a = stdout(&run(&["dry-run", "-o", "json", "tests/fixtures/captures"]));
    let b = stdout(&run(&["dry-run", "-o", "json", "tests/fixtures/captures"]));
    assert_eq!(a, b);
}

#[test]
fn dry_run_reads_stdin_and_explains() {
    let capture =
        std::fs::read("tests/fixtures/captures/tekton-v1-oom-stepoom-v1.12.yaml").unwrap();
    let mut child = bin()
        .args(["dry-run", "--explain", "-"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&capture).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("OOMKilled"), "{out}");
    // The trace names each rule tried with file:line, matched or not.
    assert!(out.contains("✓ lifecycle.yaml:"), "{out}");
    assert!(out.contains("· lifecycle.yaml:"), "{out}");
    assert!(
        out.contains("failures.yaml:") && out.contains("(classification)"),
        "{out}"
    );
    assert!(out.contains("rules revision sha256:"), "{out}");
}

#[test]
fn dry_run_with_a_pending_wfe_and_history_shows_the_hold() {
    let dir = tempfile::tempdir().unwrap();
    let wfe = dir.path().join("wfe.yaml");
    std::fs::write(&wfe, PENDING_WFE).unwrap();
    let hist = dir.path().join("history.yaml");
    std::fs::write(
        &hist,
        r#"apiVersion: kubernaut.ai/v1alpha1
kind: WorkflowExecution
metadata: {name: before, namespace: default}
spec:
  remediationRequestRef: {name: rr-0}
  targetResource: default/deployment/app
  workflowRef: {workflowId: w, workflowName: w, actionType: a, version: "1", executionBundle: b, executionEngine: tekton}
status: {phase: Completed, completionTime: "2026-03-01T10:00:00Z"}
"#,
    )
    .unwrap();
    let o = run(&[
        "dry-run",
        "--wfe",
        wfe.to_str().unwrap(),
        "--history",
        hist.to_str().unwrap(),
        "--now",
        "2026-03-01T10:02:00Z",
        "-o",
        "yaml",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("phase: Pending"), "{out}");
    assert!(out.contains("reason: CooldownActive"), "{out}");
    assert!(out.contains("until: 2026-03-01T10:05:00Z"), "{out}");
}

#[test]
fn bad_captures_exit_2_with_the_file_named() {
    for f in std::fs::read_dir("tests/fixtures/bad").unwrap() {
        let p = f.unwrap().path();
        let o = run(&["dry-run", p.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{}: {err}", p.display());
        assert!(
            err.contains(p.file_name().unwrap().to_str().unwrap()),
            "{}: message names the file: {err}",
            p.display()
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = run(&["dry-run", "tests/fixtures/bad/malformed.yaml"]);
    assert!(
        stderr(&o).contains("malformed.yaml:"),
        "line number given: {}",
        stderr(&o)
    );
    let o = run(&["dry-run", "/nonexistent/capture.yaml"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["dry-run"]).status.code(), Some(2));
    assert_eq!(run(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(run(&["dry-run", "-o", "xml", "x"]).status.code(), Some(2));
    assert_eq!(
        run(&["dry-run", "--now", "yesterday", "tests/fixtures/captures"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["check", "--rules", "/nonexistent"]).status.code(),
        Some(2)
    );
}

#[test]
fn check_accepts_the_shipped_rules() {
    let o = run(&["check", "--rules", "rules"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("revision sha256:"));
    // The built-in default is the same set.
    let b = run(&["check"]);
    let rev = |s: String| {
        s.split("revision ")
            .nth(1)
            .map(|r| r.split(',').next().unwrap().to_string())
    };
    assert_eq!(rev(stdout(&o)), rev(stdout(&b)));
}

#[test]
fn check_rejects_invalid_rules_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir("rules").unwrap() {
        let p = f.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let lc = dir.path().join("lifecycle.yaml");
    let text = std::fs::read_to_string(&lc)
        .unwrap()
        .replace("to: Running", "to: Runing");
    std::fs::write(&lc, text).unwrap();
    let o = run(&["check", "--rules", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("lifecycle.yaml:") && err.contains("Runing"),
        "{err}"
    );
}

#[test]
fn shipped_rule_tests_pass_and_cover_every_rule() {
    let o = run(&["test", "--rules", "rules"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let last = out.lines().last().unwrap();
    assert!(last.ends_with("passed, 0 failed"), "{last}");
    assert!(out.contains("Every rule was exercised by a test."), "{out}");
}

#[test]
fn a_failing_rule_test_shows_a_diff_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("extra.test.yaml");
    std::fs::write(
        &t,
        r#"apiVersion: rules.wfe.kubernaut.ai/v1alpha1
kind: RuleTest
metadata: {name: extra}
spec:
  cases:
    - name: wrong expectation
      now: "2026-03-01T10:00:00Z"
      expect: {phase: Failed, reason: OOMKilled}
    - name: right expectation
      now: "2026-03-01T10:00:00Z"
      expect: {phase: Running}
"#,
    )
    .unwrap();
    let o = run(&["test", "--rules", "rules", t.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(
        out.contains("-phase: Failed") && out.contains("+phase: Running"),
        "{out}"
    );
    assert_eq!(out.lines().last().unwrap(), "1 passed, 1 failed");
    assert!(out.contains("Rules no test exercised"), "{out}");
}

#[test]
fn crd_matches_the_deployed_file() {
    let o = run(&["crd"]);
    assert_eq!(o.status.code(), Some(0));
    let on_disk = std::fs::read_to_string("deploy/crd.yaml").expect("deploy/crd.yaml");
    assert_eq!(
        stdout(&o),
        on_disk,
        "deploy/crd.yaml is stale: run `wfe-engine crd > deploy/crd.yaml`"
    );
    assert!(on_disk.contains("self == oldSelf"));
    assert!(on_disk.contains("shortNames:\n    - wfe"));
}

#[test]
fn embedded_rules_match_the_rules_directory() {
    let mut on_disk: Vec<(String, String)> = std::fs::read_dir("rules")
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    on_disk.sort();
    let mut embedded: Vec<(String, String)> = wfe_engine::rules::embedded::FILES
        .iter()
        .map(|(n, c)| (n.to_string(), c.to_string()))
        .collect();
    embedded.sort();
    assert_eq!(
        on_disk.iter().map(|f| &f.0).collect::<Vec<_>>(),
        embedded.iter().map(|f| &f.0).collect::<Vec<_>>(),
        "src/rules/embedded.rs must list every file of rules/"
    );
    assert_eq!(on_disk, embedded);
    let total: usize = on_disk.iter().map(|f| f.1.len()).sum();
    assert!(
        total < 1024 * 1024,
        "rules/ ships as one ConfigMap: under 1 MiB"
    );
}

/// A hostile rule (an endless loop in an expression) is stopped by the
/// sandbox limits within milliseconds: the decision carries a RulesError,
/// nothing panics, and the command says so with exit 1.
#[test]
fn a_looping_rule_is_stopped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir("rules").unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if !name.contains(".test.") {
            std::fs::copy(&p, dir.path().join(&name)).unwrap();
        }
    }
    let lc = dir.path().join("lifecycle.yaml");
    let text = std::fs::read_to_string(&lc).unwrap().replace(
        "      when:\n        execution.outcome: Completed\n",
        "      when:\n        expr: \"spin()\"\n",
    );
    std::fs::write(&lc, text).unwrap();
    std::fs::write(
        dir.path().join("spin.rhai"),
        "fn spin() { let x = 0; loop { x += 1; } }\n",
    )
    .unwrap();
    let start = std::time::Instant::now();
    let o = run(&[
        "dry-run",
        "--rules",
        dir.path().to_str().unwrap(),
        "tests/fixtures/captures/tekton-v1-succeeded.yaml",
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(out.contains("rules error"), "{out}");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    assert!(!stderr(&o).contains("panicked"));
}

/// Every fact a rule can read is documented in docs/facts.md.
#[test]
fn every_fact_is_documented() {
    let doc = std::fs::read_to_string("docs/facts.md").expect("docs/facts.md");
    let missing: Vec<&str> = wfe_engine::rules::Fact::ALL
        .iter()
        .map(|f| f.path())
        .filter(|p| !doc.contains(&format!("`{p}`")))
        .collect();
    assert!(missing.is_empty(), "undocumented facts: {missing:?}");
}
