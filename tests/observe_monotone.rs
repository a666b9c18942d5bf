//! Monotone in evidence (failure-classification §3): pruning a failed
//! capture's children (TaskRuns, CustomRuns, Pods) never turns
//! `wasExecutionFailure` from true into false, and never changes the
//! outcome. Checked with the shipped rules, exactly as `dry-run` decides,
//! for every failed capture of the corpus: every subset for captures with
//! few children, random subsets (proptest) for all.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use wfe_engine::engine::{decide, scenario};
use wfe_engine::observe::{self, Capture, EnvFacts};
use wfe_engine::rules::{self, RuleSet};

/// Subsets enumerated exhaustively up to this many children (2^n cases).
const EXHAUSTIVE_UP_TO: usize = 10;

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| {
        rules::load_sources(rules::embedded::sources()).expect("the shipped rules load")
    })
}

/// What pruning may not change: (outcome, phase, wasExecutionFailure).
#[derive(Debug, Clone, PartialEq)]
struct Verdict {
    outcome: String,
    phase: String,
    was_execution_failure: bool,
}

fn verdict(cap: &Capture, keep: &[bool]) -> Verdict {
    let children: Vec<serde_json::Value> = cap
        .children
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(c, _)| c.clone())
        .collect();
    let primary = scenario::adopt_capture(&cap.primary);
    let lifecycle = &rules().lifecycle;
    let wfe =
        observe::wfe_from_value(&scenario::wfe_for_capture(&cap.primary, lifecycle)).expect("wfe");
    let facts = scenario::facts_for(
        &wfe,
        Some(&primary),
        &children,
        &[],
        EnvFacts::default(),
        rules(),
    );
    let d = decide(&facts, rules(), scenario::default_now(Some(&cap.primary)));
    let f = d.status.failure_details.as_ref();
    Verdict {
        outcome: facts.execution.outcome.clone(),
        phase: d.phase.clone(),
        was_execution_failure: f.is_some_and(|f| f.was_execution_failure),
    }
}

/// Every capture of the corpus whose run failed, with its full verdict.
fn failed_captures() -> &'static [(Capture, Verdict)] {
    static CAPS: OnceLock<Vec<(Capture, Verdict)>> = OnceLock::new();
    CAPS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/captures");
        observe::read_captures(&dir)
            .expect("corpus reads")
            .into_iter()
            .filter_map(|cap| {
                let full = verdict(&cap, &vec![true; cap.children.len()]);
                (full.outcome == "Failed").then_some((cap, full))
            })
            .collect()
    })
}

fn check(cap: &Capture, full: &Verdict, keep: &[bool]) -> Result<(), String> {
    let pruned = verdict(cap, keep);
    let kept: Vec<&str> = cap
        .children
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(c, _)| c["metadata"]["name"].as_str().unwrap_or("?"))
        .collect();
    let ctx = || format!("{} keeping {kept:?}: {full:?} -> {pruned:?}", cap.file);
    if pruned.outcome != full.outcome || pruned.phase != full.phase {
        return Err(format!("outcome changed: {}", ctx()));
    }
    if full.was_execution_failure && !pruned.was_execution_failure {
        return Err(format!("wasExecutionFailure true -> false: {}", ctx()));
    }
    Ok(())
}

#[test]
fn the_corpus_has_failed_captures_with_children() {
    let caps = failed_captures();
    assert!(caps.len() >= 20, "{} failed captures", caps.len());
    assert!(caps.iter().filter(|(c, _)| c.children.len() >= 2).count() >= 10);
}

#[test]
fn every_subset_of_a_small_capture_keeps_the_verdict_safe() {
    let mut checked = 0usize;
    for (cap, full) in failed_captures() {
        let n = cap.children.len();
        if n > EXHAUSTIVE_UP_TO {
            continue;
        }
        for mask in 0u32..(1 << n) {
            let keep: Vec<bool> = (0..n).map(|i| mask & (1 << i) != 0).collect();
            if let Err(e) = check(cap, full, &keep) {
                panic!("{e}");
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked} subsets checked");
}

fn capture_and_subset() -> impl Strategy<Value = (usize, Vec<bool>)> {
    let sizes: Vec<usize> = failed_captures()
        .iter()
        .map(|(c, _)| c.children.len())
        .collect();
    (0..sizes.len())
        .prop_flat_map(move |i| (Just(i), proptest::collection::vec(any::<bool>(), sizes[i])))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn pruning_any_children_never_makes_a_failure_look_safe((i, keep) in capture_and_subset()) {
        let (cap, full) = &failed_captures()[i];
        if let Err(e) = check(cap, full, &keep) {
            prop_assert!(false, "{}", e);
        }
    }
}
