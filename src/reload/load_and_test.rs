//! Building a candidate set: load and validate the whole set, then run its
//! own rule tests. Runs on a dedicated thread under an overall timeout. A
//! hostile set is already limited by the sandbox (per evaluation and per
//! decision); the timeout bounds the whole. On timeout the work is
//! cancelled, not abandoned: the thread's evaluations stop at their next
//! clock check, no further test case starts, and the thread is joined, so
//! no thread keeps running behind a refused set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::error::ReloadError;
use super::source::Candidate;
use super::status::ErrorLocation;
use crate::engine::rule_tests::{run_cases, TestReport};
use crate::rules::limits::InterruptScope;
use crate::rules::RuleSet;

/// How long a cancelled gate may take to notice (one evaluation's clock
/// check, one decision at most).
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Load `candidate` and (when `run_tests`) gate it on its rule tests.
pub(crate) async fn build_candidate(
    candidate: Candidate,
    run_tests: bool,
    timeout: Duration,
) -> Result<RuleSet, ReloadError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = oneshot::channel();
    let flag = cancel.clone();
    let thread = std::thread::Builder::new()
        .name("wfe-rules-gate".into())
        .spawn(move || {
            let _interruptible = InterruptScope::enter(flag.clone());
            let _ = tx.send(load_and_test(candidate, run_tests, &flag, timeout));
        })
        .map_err(ReloadError::Thread)?;
    let result = match tokio::time::timeout(timeout, &mut rx).await {
        Ok(Ok(result)) => result,
        // The sender was dropped without a result: the thread panicked.
        Ok(Err(_)) => Err(ReloadError::Panicked),
        Err(_) => {
            cancel.store(true, Ordering::Relaxed);
            if tokio::time::timeout(CANCEL_GRACE, rx).await.is_err() {
                // Loading itself is not interruptible (it is bounded by the
                // size limits); say so rather than wait forever.
                tracing::error!(
                    "the rules gate did not stop within {CANCEL_GRACE:?} of being cancelled"
                );
                return Err(ReloadError::Timeout(timeout));
            }
            Err(ReloadError::Timeout(timeout))
        }
    };
    // The thread has sent its result (or panicked): it ends at once.
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    result
}

fn load_and_test(
    candidate: Candidate,
    run_tests: bool,
    cancel: &AtomicBool,
    timeout: Duration,
) -> Result<RuleSet, ReloadError> {
    let set = candidate.load().map_err(ReloadError::Invalid)?;
    if run_tests {
        let cases = set
            .tests
            .iter()
            .flat_map(|t| t.cases.iter().map(move |c| (t, c)))
            .take_while(|_| !cancel.load(Ordering::Relaxed));
        let report = run_cases(&set, cases);
        if cancel.load(Ordering::Relaxed) {
            // The report is partial: what stopped it was the timeout.
            return Err(ReloadError::Timeout(timeout));
        }
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
