//! Hot-reload latency: from the kubelet's rename of `..data` to the new
//! revision deciding, over kubelet-style swaps of the shipped `rules/` set.
//! Includes the 100 ms quiet window, loading, and the set's own rule tests.
//!
//! Run: `cargo bench --bench reload` (env `WFE_BENCH_RULES=<dir>` picks another
//! set, `WFE_BENCH_SWAPS=<n>` the number of swaps, default 50).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::atomic_writer;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use atomic_writer::{read_payload, variant, ConfigMapVolume};
use wfe_engine::engine::{decide, rule_tests::run_rule_tests};
use wfe_engine::observe::Facts;
use wfe_engine::reload::{ReloadOptions, Reloader};
use wfe_engine::rules::load_dir;
use wfe_engine::telemetry::Metrics;

fn main() -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let source = std::env::var_os("WFE_BENCH_RULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("rules"));
    let swaps: usize = std::env::var("WFE_BENCH_SWAPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    match run(&source, swaps) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reload bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(source: &std::path::Path, swaps: usize) -> Result<(), String> {
    let base = read_payload(source).map_err(|e| format!("reading {}: {e}", source.display()))?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = tmp.path().join("rules");
    let mut volume = ConfigMapVolume::create(&dir, &base).map_err(|e| e.to_string())?;
    let initial =
        load_dir(&dir).map_err(|e| format!("{} does not load:\n{e}", source.display()))?;
    let report = run_rule_tests(&initial);
    if report.failed > 0 {
        return Err(format!(
            "{} fails its own rule tests ({} failed)",
            source.display(),
            report.failed
        ));
    }
    println!(
        "rules: {} ({} files, {} rule test cases), {swaps} swaps, debounce {:?}",
        source.display(),
        initial.files.len(),
        report.passed,
        ReloadOptions::default().debounce
    );
    let rules = Arc::new(ArcSwap::from_pointee(initial));
    let metrics = Arc::new(Metrics::new().map_err(|e| e.to_string())?);
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let mut latencies = rt.block_on(async {
        let handle = Reloader::spawn(&dir, ReloadOptions::default(), rules.clone(), metrics);
        // Let the startup check settle so it does not overlap the first swap.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut swapped = handle.subscribe();
        let mut latencies = Vec::with_capacity(swaps);
        for i in 1..=swaps {
            let renamed = volume
                .write(&variant(&base, i))
                .map_err(|e| e.to_string())?;
            tokio::time::timeout(Duration::from_secs(10), swapped.changed())
                .await
                .map_err(|_| format!("swap {i} did not become active within 10 s"))?
                .map_err(|e| e.to_string())?;
            let active = rules.load_full();
            let decision = decide(&Facts::default(), &active, jiff::Timestamp::now());
            if decision.revision != *swapped.borrow_and_update() {
                return Err(format!(
                    "swap {i}: decision made with {}",
                    decision.revision
                ));
            }
            latencies.push(renamed.elapsed());
        }
        handle.shutdown().await;
        Ok::<_, String>(latencies)
    })?;
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
    println!(
        "rename of ..data -> new revision deciding: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, mean {:.1} ms",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(latencies[latencies.len() - 1]),
        ms(mean)
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
