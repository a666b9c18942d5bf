//! Building a candidate set: load and validate the whole set, then run
//! its own rule tests. Runs on a dedicated thread under an overall timeout:
//! a hostile set is already operation-limited by the sandbox, and the timeout
//! bounds whatever the sandbox does not (a thread that overruns is abandoned,
//! never joined, so it cannot stall the reloader or the runtime's shutdown).

use std::time::Duration;

use tokio::sync::oneshot;

use super::source::Candidate;
use super::status::ErrorLocation;
use super::ReloadError;
use crate::engine::testing::{run_rule_tests, TestReport};
use crate::rules::RuleSet;

/// Load `candidate` and (when `run_tests`) gate it on its rule tests.
pub(crate) async fn build_candidate(
    candidate: Candidate,
    run_tests: bool,
    timeout: Duration,
) -> Result<RuleSet, ReloadError> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("wfe-rules-gate".into())
        .spawn(move || {
            // The receiver is gone only after a timeout; the result is moot then.
            let _ = tx.send(load_and_test(candidate, run_tests));
        })
        .map_err(ReloadError::Thread)?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => result,
        // The sender was dropped without a result: the thread panicked.
        Ok(Err(_)) => Err(ReloadError::Panicked),
        Err(_) => Err(ReloadError::Timeout(timeout)),
    }
}

fn load_and_test(candidate: Candidate, run_tests: bool) -> Result<RuleSet, ReloadError> {
    let set = candidate.load().map_err(ReloadError::Invalid)?;
    if run_tests {
        let report = run_rule_tests(&set);
        if report.failed > 0 || !report.failures.is_empty() {
            return Err(tests_failed(&report));
        }
    }
    Ok(set)
}

fn tests_failed(report: &TestReport) -> ReloadError {
    let mut details = Vec::new();
    let mut locations = Vec::new();
    for f in &report.failures {
        let first = f.diff.lines().next().unwrap_or("");
        details.push(format!(
            "{}:{}: {} / {}: {}",
            f.file, f.line, f.test, f.case, first
        ));
        locations.push(ErrorLocation {
            file: f.file.clone(),
            line: f.line,
            column: 0,
            message: format!("rule test {} / {} failed:\n{}", f.test, f.case, f.diff),
        });
    }
    ReloadError::TestsFailed {
        failed: report.failed.max(report.failures.len()),
        details: details.join("\n"),
        locations,
    }
}
