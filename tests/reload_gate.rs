//! The reload gate against a rule set whose own tests take too long: refused
//! once, its work cancelled (no gate thread left running), and not tried
//! again until its content changes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use wfe_engine::reload::{ReloadHandle, ReloadOptions, ReloadStatus, Reloader};
use wfe_engine::rules::load_dir;
use wfe_engine::telemetry::Metrics;

const WAIT: Duration = Duration::from_secs(20);

fn copy_rules_min(to: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules-min");
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        // Its own tests would meet the slow guards too; only ours run.
        if !e.file_name().to_string_lossy().contains(".test.") {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Rule tests that each run up to the decision time budget: 400 cases of a
/// Pending WFE whose start guard calls 2,000 slow functions.
fn plant_slow_tests(dir: &Path) {
    std::fs::write(
        dir.join("lib.rhai"),
        "fn is_supported(engine, engines) { engine == \"\" || engines.contains(engine) }\n\
         fn slow() { let i = 0; while i < 3000 { i += 1; } false }\n",
    )
    .unwrap();
    let lifecycle = std::fs::read_to_string(dir.join("lifecycle.yaml")).unwrap();
    let guards = vec!["*slow"; 2000].join(", ");
    let lifecycle = lifecycle.replace(
        "          - expr: 'is_supported(wfe.engine, env.engines)'",
        &format!(
            "          - expr: 'is_supported(wfe.engine, env.engines)'\n          - any: [&slow {{expr: 'slow()'}}, {guards}]"
        ),
    );
    std::fs::write(dir.join("lifecycle.yaml"), lifecycle).unwrap();
    let cases: String = (0..400)
        .map(|i| format!("    - name: slow {i}\n      expect: {{phase: Pending}}\n"))
        .collect();
    std::fs::write(
        dir.join("slow.test.yaml"),
        format!(
            "apiVersion: rules.wfe.kubernaut.ai/v1alpha1\nkind: RuleTest\nmetadata: {{name: slow}}\nspec:\n  cases:\n{cases}"
        ),
    )
    .unwrap();
}

/// Threads of this process named like the gate's.
fn gate_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "wfe-rules-gate")
        .count()
}

async fn wait_for(handle: &ReloadHandle, what: &str, cond: impl Fn(&ReloadStatus) -> bool) {
    let start = Instant::now();
    loop {
        let s = handle.status();
        if cond(&s) {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "timed out waiting for {what}: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_whose_tests_time_out_is_refused_once_and_its_work_cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_rules_min(dir);
    let rules = Arc::new(ArcSwap::from_pointee(load_dir(dir).unwrap()));
    let options = ReloadOptions {
        debounce: Duration::from_millis(30),
        recheck_interval: Duration::from_millis(100),
        gate_timeout: Duration::from_millis(500),
        ..ReloadOptions::default()
    };
    let metrics = Arc::new(Metrics::new().unwrap());
    let handle = Reloader::spawn(dir, options, rules.clone(), metrics);
    wait_for(&handle, "the watch", |s| s.watching).await;
    let good = rules.load().revision.clone();

    plant_slow_tests(dir);
    wait_for(&handle, "the refusal", |s| s.reloads.failure >= 1).await;
    let s = handle.status();
    let err = s
        .last_error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    assert!(err.contains("did not finish within"), "{err}");
    assert_eq!(
        rules.load().revision,
        good,
        "the last good set stays active"
    );
    // Cancelled, not abandoned: the gate thread was joined before the refusal.
    assert_eq!(gate_threads(), 0, "a gate thread is still running");

    // Ten re-checks later the same content has not been tried again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = handle.status();
    assert_eq!(s.reloads.failure, 1, "retried unchanged content: {s:#?}");
    assert_eq!(gate_threads(), 0);

    // A change is looked at again: without the slow tests the set passes.
    std::fs::remove_file(dir.join("slow.test.yaml")).unwrap();
    wait_for(&handle, "the fixed set", |s| s.reloads.success >= 1).await;
    assert_ne!(rules.load().revision, good);
    handle.shutdown().await;
}
