//! Running a rule set's own `RuleTest` cases (or extra ones): decide each
//! case (`cases`), check its expectations (`expect`), and report passes,
//! failures with their diffs, and the rules no test exercised.

use std::collections::BTreeSet;

use serde::Serialize;

use super::cases::{run_case, Step};
use super::decision::Decision;
use super::expect::{actual, check, render_diff, Mismatch};
use crate::rules::{RuleId, RuleSet, RuleTestDoc, TestCase};

pub use super::cases::parse_now;

/// Result of running rule tests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TestReport {
    pub passed: usize,
    pub failed: usize,
    pub failures: Vec<TestFailure>,
    /// Every case run, in order (for `-v`, JUnit and JSON output).
    pub cases: Vec<CaseResult>,
    /// Rules no test exercised.
    pub uncovered: Vec<RuleId>,
}

/// One case's result.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub test: String,
    pub case: String,
    pub file: String,
    pub line: u32,
    pub passed: bool,
}

/// One failing case, with a readable expected/actual diff.
#[derive(Debug, Clone, Serialize)]
pub struct TestFailure {
    pub test: String,
    pub case: String,
    pub file: String,
    pub line: u32,
    pub diff: String,
    /// The first rule error of the case's decisions, if a rule failed.
    pub rules_error: Option<String>,
    /// What `test --update` would write: per failing step, the keys to set.
    /// Empty when the case's inputs are invalid (nothing to update).
    pub edits: Vec<StepEdit>,
}

/// The expectation of one decision of a failing case, as it should read.
#[derive(Debug, Clone, Serialize)]
pub struct StepEdit {
    /// Sequence step index, `None` for a single case.
    pub step: Option<usize>,
    pub mismatches: Vec<Mismatch>,
}

/// Run every `RuleTest` case of the set against the set itself.
pub fn run_rule_tests(rules: &RuleSet) -> TestReport {
    run_cases(
        rules,
        rules
            .tests
            .iter()
            .flat_map(|t| t.cases.iter().map(move |c| (t, c))),
    )
}

/// Run the given cases (from the set or from extra files).
pub fn run_cases<'a>(
    rules: &RuleSet,
    cases: impl Iterator<Item = (&'a RuleTestDoc, &'a TestCase)>,
) -> TestReport {
    let mut report = TestReport::default();
    let mut covered: BTreeSet<RuleId> = BTreeSet::new();
    for (doc, case) in cases {
        let failure = match run_case(rules, rules, doc, case) {
            Ok(steps) => {
                steps
                    .iter()
                    .for_each(|s| mark_covered(&s.decision, &mut covered));
                check_steps(rules, &steps)
            }
            Err(e) => Some((e.to_string(), None, Vec::new())),
        };
        report.cases.push(CaseResult {
            test: doc.id.name.to_string(),
            case: case.name.clone(),
            file: doc.id.file.to_string(),
            line: case.line,
            passed: failure.is_none(),
        });
        match failure {
            None => report.passed += 1,
            Some((diff, rules_error, edits)) => {
                report.failed += 1;
                report.failures.push(TestFailure {
                    test: doc.id.name.to_string(),
                    case: case.name.clone(),
                    file: doc.id.file.to_string(),
                    line: case.line,
                    diff,
                    rules_error,
                    edits,
                });
            }
        }
    }
    let all = rules
        .lifecycle
        .transitions
        .iter()
        .map(|t| &t.id)
        .chain(rules.classification.rules.iter().map(|r| &r.id));
    report.uncovered = all.filter(|id| !covered.contains(*id)).cloned().collect();
    report
}

type Failure = (String, Option<String>, Vec<StepEdit>);

/// Check every step's expectation; `None` when all hold.
fn check_steps(rules: &RuleSet, steps: &[Step<'_>]) -> Option<Failure> {
    let mut diff = String::new();
    let mut edits = Vec::new();
    let mut rules_error = None;
    for s in steps {
        let Some(expect) = s.expect else { continue };
        let view = actual(&s.facts, &s.decision, s.at);
        let mismatches = match check(expect, &view, s.at, rules) {
            Ok(m) => m,
            Err(e) => return Some((format!("invalid test input: {e}"), None, Vec::new())),
        };
        if mismatches.is_empty() {
            continue;
        }
        if rules_error.is_none() {
            rules_error = s.decision.rules_error.clone();
        }
        if s.index.is_some() {
            diff.push_str(&format!("sequence {}:\n", s.label()));
        }
        diff.push_str(&render_diff(expect, &mismatches));
        edits.push(StepEdit {
            step: s.index,
            mismatches,
        });
    }
    (!edits.is_empty()).then_some((diff, rules_error, edits))
}

fn mark_covered(d: &Decision, covered: &mut BTreeSet<RuleId>) {
    if let Some(r) = &d.rule {
        covered.insert(r.clone());
    }
    if let Some(r) = d.failure.as_ref().and_then(|f| f.rule.as_ref()) {
        covered.insert(r.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys a test may expect are exactly the keys of the test view.
    #[test]
    fn expect_keys_match_the_view() {
        let rules = crate::rules::load_sources(crate::rules::embedded::sources()).unwrap();
        let doc = &rules.tests[0];
        let steps = run_case(&rules, &rules, doc, &doc.cases[0]).unwrap();
        let view = actual(&steps[0].facts, &steps[0].decision, steps[0].at);
        let mut got: Vec<&str> = view.keys().map(String::as_str).collect();
        let mut want = crate::rules::testcase::EXPECT_KEYS.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }
}
