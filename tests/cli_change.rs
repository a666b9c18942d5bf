//! Changing a rule safely, end to end through the binary: on a copy of
//! `rules/` with three edits (cooldown 5m → 2m, exit code 42 classified as
//! ConfigurationError, a reworded OOM recommendation), `diff` lists exactly
//! the decisions they change, `test` fails only the cooldown tests and
//! passes after `test --update`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wfe-engine"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run wfe-engine")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

const OLD_OOM: &str = "Consider increasing task resource limits.";
const NEW_OOM: &str = "Raise the memory limit of the failed task.";

fn copy_rules(dir: &Path) {
    for f in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap() {
        let p = f.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// The tutorial's three edits on a copy of `rules/`.
fn three_edits(dir: &Path) {
    copy_rules(dir);
    edit(&dir.join("history.yaml"), "period: 5m", "period: 2m");
    edit(
        &dir.join("failures.yaml"),
        "    # 8. A task or container ran and failed.",
        "    # Our workflows exit 42 when their input is invalid.\n    - name: exit-42-bad-input\n      reason: ConfigurationError\n      exitCode: true\n      when:\n        execution.exitCode: 42\n\n    # 8. A task or container ran and failed.",
    );
    edit(&dir.join("summary.yaml"), OLD_OOM, NEW_OOM);
}

fn records(o: &Output) -> Vec<Value> {
    out(o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// The change of `field` in a diff record.
fn change<'a>(r: &'a Value, field: &str) -> &'a Value {
    r["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == field)
        .unwrap_or_else(|| panic!("no change of {field} in {r:#}"))
}

fn fields(r: &Value) -> BTreeSet<String> {
    r["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap().to_string())
        .collect()
}

/// dry-run records of every capture, keyed by file#primary, without the
/// keys that always differ between two sets (revision) or are not decisions.
fn dry_run_records(rules: &str) -> Vec<(String, Value)> {
    let o = run(&[
        "dry-run",
        "--rules",
        rules,
        "-o",
        "json",
        "tests/fixtures/captures",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    records(&o)
        .into_iter()
        .map(|mut r| {
            let file = r["file"].as_str().unwrap().split('#').next().unwrap();
            let key = format!("{file}#{}", r["primary"]);
            r.as_object_mut().unwrap().remove("rulesRevision");
            (key, r)
        })
        .collect()
}

#[test]
fn diff_lists_exactly_the_decisions_the_three_edits_change() {
    let dir = tempfile::tempdir().unwrap();
    three_edits(dir.path());
    let copy = dir.path().to_str().unwrap();
    let o = run(&[
        "diff",
        "--rules",
        copy,
        "-o",
        "json",
        "tests/fixtures/captures",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let diffs = records(&o);

    // Captures: exactly those whose dry-run record differs between the sets.
    let base = dry_run_records("rules");
    let cand = dry_run_records(copy);
    let mut want: BTreeSet<String> = BTreeSet::new();
    for ((k, b), (_, c)) in base.iter().zip(&cand) {
        if b != c {
            want.insert(k.clone());
        }
    }
    let got: BTreeSet<String> = diffs
        .iter()
        .filter(|d| {
            d["source"]
                .as_str()
                .unwrap()
                .starts_with("tests/fixtures/captures/")
        })
        .map(|d| {
            let file = d["source"].as_str().unwrap().split('#').next().unwrap();
            format!("{file}#{}", d["primary"])
        })
        .collect();
    assert_eq!(
        got, want,
        "listed captures = captures whose decision changed"
    );
    assert!(got.len() >= 3, "{got:?}");

    for d in &diffs {
        let f = fields(d);
        let source = d["source"].as_str().unwrap();
        assert!(
            f.iter().any(|x| x != "requeueAfterSeconds"),
            "{source}: a requeue alone is no change"
        );
        assert_ne!(d["baseRevision"], d["candidateRevision"]);
        if source.contains("job-podfailurepolicy-failuretarget.yaml") {
            let reason = change(d, "reason");
            assert_eq!(reason["base"], "TaskFailed");
            assert_eq!(reason["candidate"], "ConfigurationError");
            assert!(f.contains("classificationRule"), "{f:?}");
        } else if source.starts_with("tests/fixtures/captures/")
            || source.starts_with("failures.test.yaml")
        {
            // Every other failure decision listed changed only its summary:
            // the reworded OOM recommendation.
            let allowed: BTreeSet<String> = ["summary", "requeueAfterSeconds"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            assert!(f.is_subset(&allowed), "{source}: {f:?}");
            let s = change(d, "summary");
            assert!(s["base"].as_str().unwrap().contains(OLD_OOM), "{source}");
            assert!(
                s["candidate"].as_str().unwrap().contains(NEW_OOM),
                "{source}"
            );
        }
    }

    // The rule tests' inputs: the cooldown cases show up with no extra files.
    let cases: BTreeSet<&str> = diffs
        .iter()
        .map(|d| d["source"].as_str().unwrap())
        .filter(|s| s.starts_with("lifecycle.test.yaml") || s.starts_with("sequences.test.yaml"))
        .collect();
    let expected = [
        (
            "",
            "the cooldown holds until the longest remaining one ends",
        ),
        (
            " step 1: ",
            "an already held WFE re-decided writes nothing and emits no event",
        ),
        (
            " step 2: ",
            "an already held WFE re-decided writes nothing and emits no event",
        ),
        (
            "",
            "the lock of a WFE whose release falls due now is left to its owner",
        ),
        (
            "",
            "the lock is held during the cooldown and the WFE wakes up when it ends",
        ),
        (
            " step 3: ",
            "fail, backoff, retry, cooldown, success resets the count",
        ),
    ];
    for (step, e) in expected {
        assert!(
            cases.iter().any(|c| c.contains(e) && c.contains(step)),
            "{step}{e} not listed in {cases:?}"
        );
    }
    assert_eq!(cases.len(), expected.len(), "nothing else: {cases:?}");
    let oom_cases = diffs
        .iter()
        .filter(|d| {
            d["source"]
                .as_str()
                .unwrap()
                .starts_with("failures.test.yaml")
        })
        .count();
    assert!(oom_cases >= 2, "the OOM test cases show the new summary");

    // --fail-on-change makes a difference a failure.
    let o = run(&[
        "diff",
        "--rules",
        copy,
        "--fail-on-change",
        "tests/fixtures/captures",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(out(&o).contains("decisions differ"), "{}", out(&o));
}

#[test]
fn diff_of_identical_sets_lists_nothing() {
    let o = run(&[
        "diff",
        "--rules",
        "rules",
        "--fail-on-change",
        "tests/fixtures/captures",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    let text = out(&o);
    assert!(text.lines().last().unwrap().starts_with("0 of "), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 120), "{text}");
}

#[test]
fn diff_reads_scenario_files_and_reports_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let scen = dir.path().join("scenarios.yaml");
    std::fs::write(
        &scen,
        r#"apiVersion: rules.wfe.kubernaut.ai/v1alpha1
kind: RuleTest
metadata: {name: ours}
spec:
  cases:
    - name: a new WFE three minutes after a success on its target
      now: "2026-03-01T10:03:00Z"
      history:
        - {name: before, phase: Completed, completionTime: "2026-03-01T10:00:00Z"}
"#,
    )
    .unwrap();
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    three_edits(&copy);
    let o = run(&[
        "diff",
        "--rules",
        copy.to_str().unwrap(),
        "--scenarios",
        scen.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let d = records(&o)
        .into_iter()
        .find(|d| {
            d["source"]
                .as_str()
                .unwrap()
                .contains("three minutes after a success")
        })
        .expect("the scenario is listed");
    let phase = change(&d, "phase");
    assert_eq!(phase["base"], "Pending");
    assert_eq!(phase["candidate"], "Running");

    std::fs::write(&scen, "kind: RuleTest\n").unwrap();
    let o = run(&[
        "diff",
        "--rules",
        copy.to_str().unwrap(),
        "--scenarios",
        scen.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let o = run(&["diff", "--rules", "/nonexistent"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
}

#[test]
fn a_policy_change_fails_only_the_cooldown_tests_and_update_fixes_them() {
    let dir = tempfile::tempdir().unwrap();
    three_edits(dir.path());
    let copy = dir.path().to_str().unwrap();
    let o = run(&["test", "--rules", copy]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let failed: BTreeSet<String> = out(&o)
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL "))
        .map(|l| l.split_once(' ').unwrap().1.to_string())
        .collect();
    let want: BTreeSet<String> = [
        "lifecycle / the cooldown holds until the longest remaining one ends",
        "lifecycle / the lock is held during the cooldown and the WFE wakes up when it ends",
        "sequences / fail, backoff, retry, cooldown, success resets the count",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(failed, want, "{}", out(&o));

    let before = std::fs::read_to_string(dir.path().join("lifecycle.test.yaml")).unwrap();
    let o = run(&["test", "--rules", copy, "--update"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(
        err(&o).contains("updated the expectations of 3 case(s) in 2 file(s)"),
        "{}",
        err(&o)
    );
    let after = std::fs::read_to_string(dir.path().join("lifecycle.test.yaml")).unwrap();
    // Only the failing values changed: same lines, comments and order.
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(before.lines().count(), after.lines().count());
    assert!(changed.len() <= 3, "{changed:#?}");
    assert!(
        after.contains("holdUntil: \"2026-03-01T10:02:50Z\""),
        "{after}"
    );
    assert!(after.contains("# --- Pending: target history ---"));
    let o = run(&["test", "--rules", copy]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
}

#[test]
fn update_needs_a_directory_it_can_write() {
    let o = run(&["test", "--update"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("--rules DIR"), "{}", err(&o));
}
