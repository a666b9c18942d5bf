//! DESIGN invariant 10: the lifecycle lives in rules. The engine and the
//! controller name no phase, condition type or reason the shipped rules
//! define (they ask the rule set, and transitions declare what they write);
//! the only names left in their code are the ones listed here, each with
//! why it is not the rules' business.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::collections::BTreeSet;
use std::path::Path;

use wfe_engine::rules::{load_sources, ConditionChange, RuleSet};

/// (file, literal, why): names that are not the lifecycle's.
const ALLOWED: &[(&str, &str, &str)] = &[(
    "src/controller/gather.rs",
    "Failed",
    "a batch/v1 Job condition type (the Kubernetes API), not a WFE phase",
)];

fn shipped() -> RuleSet {
    load_sources(wfe_engine::rules::embedded::sources()).expect("shipped rules")
}

/// Every phase, reason and condition type the shipped rules name.
fn lifecycle_names(rules: &RuleSet) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let lc = &rules.lifecycle;
    names.extend(lc.phases.iter().map(|p| p.name.clone()));
    for t in &lc.transitions {
        if let Some(r) = t.failure.as_ref().and_then(|f| f.reason.clone()) {
            names.insert(r);
        }
        if let Some(h) = &t.hold {
            names.insert(h.reason.clone());
        }
        names.extend(t.events.iter().map(|e| e.reason.clone()));
        for c in &t.conditions {
            match &c.change {
                ConditionChange::Remove(t) => {
                    names.insert(t.clone());
                }
                ConditionChange::Set(s) => {
                    names.insert(s.type_.clone());
                    names.extend(s.reason.as_literal().map(str::to_string));
                }
            }
        }
    }
    names.extend(rules.classification.rules.iter().map(|r| r.reason.clone()));
    names.insert(rules.classification.default_reason.clone());
    names
}

/// String literals of the non-test code of every `.rs` file under `dir`.
fn literals(dir: &Path, out: &mut Vec<(String, usize, String)>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let p = entry.expect("entry").path();
        if p.is_dir() {
            literals(&p, out);
            continue;
        }
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        if !name.ends_with(".rs") || name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).expect("read");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let rel = p
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(&p)
            .display()
            .to_string();
        for (i, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for lit in line.split('"').skip(1).step_by(2) {
                out.push((rel.clone(), i + 1, lit.to_string()));
            }
        }
    }
}

#[test]
fn engine_and_controller_name_nothing_of_the_lifecycle() {
    let rules = shipped();
    let names = lifecycle_names(&rules);
    for expected in [
        "Pending",
        "Failed",
        "Ready",
        "Blocked",
        "TaskFailed",
        "OOMKilled",
    ] {
        assert!(names.contains(expected), "the scan would miss {expected}");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for dir in ["src/engine", "src/controller"] {
        literals(&root.join(dir), &mut found);
    }
    let offending: Vec<String> = found
        .iter()
        .filter(|(_, _, lit)| names.contains(lit))
        .filter(|(file, _, lit)| !ALLOWED.iter().any(|(f, l, _)| f == file && l == lit))
        .map(|(file, line, lit)| format!("{file}:{line}: \"{lit}\""))
        .collect();
    for (file, lit, why) in ALLOWED {
        assert!(
            found.iter().any(|(f, _, l)| f == file && l == lit),
            "stale allow-list entry {file} \"{lit}\" ({why}): remove it"
        );
    }
    assert!(
        offending.is_empty(),
        "lifecycle names in engine/controller code (ask the rule set, or declare it in the rules):\n{}",
        offending.join("\n")
    );
}

/// The scan sees string literals, so a name written into engine code is
/// caught (this test guards the guard).
#[test]
fn the_scan_finds_a_name_written_in_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("x.rs"),
        "fn f(p: &str) -> bool { p == \"Running\" }\n#[cfg(test)]\nmod t { const X: &str = \"Failed\"; }\n",
    )
    .expect("write");
    let mut found = Vec::new();
    literals(dir.path(), &mut found);
    let lits: Vec<&str> = found.iter().map(|(_, _, l)| l.as_str()).collect();
    assert_eq!(lits, ["Running"]);
}
