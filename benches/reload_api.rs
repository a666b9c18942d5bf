//! Rules from the API: from the server-side apply of an edited rules
//! ConfigMap (the PATCH `kubectl apply --server-side` sends) to the new
//! revision deciding, against the API emulator over real HTTP. Includes the
//! watch event, the 100 ms quiet window, loading, and the set's own rule
//! tests (the gate), as `wfe-engine run --rules-configmap` does. Aim: p99
//! ≤ 1 s with the shipped set.
//!
//! Run: `cargo bench --bench reload_api` (env `WFE_BENCH_RULES=<dir>` picks
//! another set, `WFE_BENCH_EDITS=<n>` the number of edits, default 50).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::atomic_writer;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use atomic_writer::{read_payload, variant, Payload};
use kube::Client;
use support::rules_configmap::apply_configmap;
use support::Emulator;
use wfe_engine::engine::{decide, rule_tests::run_rule_tests};
use wfe_engine::observe::Facts;
use wfe_engine::reload::{load_initial, ConfigMapSource, ReloadOptions, Reloader, RulesSource};
use wfe_engine::telemetry::Metrics;

const NS: &str = "wfe-engine";
const NAME: &str = "wfe-engine-rules";
const AIM: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let source = std::env::var_os("WFE_BENCH_RULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("rules"));
    let edits: usize = std::env::var("WFE_BENCH_EDITS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(run(&source, edits.max(1))));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reload_api bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn apply(client: &Client, payload: &Payload) -> Result<(), String> {
    apply_configmap(client, NS, NAME, payload).await.map(|_| ())
}

async fn run(source: &std::path::Path, edits: usize) -> Result<(), String> {
    let base = read_payload(source).map_err(|e| format!("reading {}: {e}", source.display()))?;
    let emu = Emulator::start().await;
    let client = emu.client();
    apply(&client, &base).await?;
    let rules_source = RulesSource::ConfigMap(ConfigMapSource {
        client: client.clone(),
        target: format!("{NS}/{NAME}")
            .parse()
            .map_err(|e: wfe_engine::reload::ConfigMapRefError| e.to_string())?,
        instance: "bench".into(),
    });
    let initial = load_initial(&rules_source).await.map_err(|e| {
        format!(
            "{} does not load from the ConfigMap:\n{e}",
            source.display()
        )
    })?;
    let report = run_rule_tests(&initial);
    if report.failed > 0 {
        return Err(format!(
            "{} fails its own rule tests ({} failed)",
            source.display(),
            report.failed
        ));
    }
    println!(
        "rules: {} ({} files, {} rule test cases) in ConfigMap {NS}/{NAME}, {edits} edits, debounce {:?}",
        source.display(),
        initial.files.len(),
        report.passed,
        ReloadOptions::default().debounce
    );
    let rules = Arc::new(ArcSwap::from_pointee(initial));
    let metrics = Arc::new(Metrics::new().map_err(|e| e.to_string())?);
    let handle = Reloader::spawn_source(
        rules_source,
        ReloadOptions::default(),
        rules.clone(),
        metrics,
    );
    // Let the first list and the startup check settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut swapped = handle.subscribe();
    swapped.borrow_and_update();
    let mut latencies = Vec::with_capacity(edits);
    for i in 1..=edits {
        let edited = variant(&base, i);
        let written = Instant::now();
        apply(&client, &edited).await?;
        tokio::time::timeout(Duration::from_secs(10), swapped.changed())
            .await
            .map_err(|_| format!("edit {i} did not become active within 10 s"))?
            .map_err(|e| e.to_string())?;
        let decision = decide(
            &Facts::default(),
            &rules.load_full(),
            jiff::Timestamp::now(),
        );
        if decision.revision != *swapped.borrow_and_update() {
            return Err(format!(
                "edit {i}: decision made with {}",
                decision.revision
            ));
        }
        latencies.push(written.elapsed());
    }
    handle.shutdown().await;
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
    let p99 = pct(0.99);
    println!(
        "server-side apply -> new revision deciding: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, mean {:.1} ms (aim p99 <= {} ms: {})",
        ms(pct(0.50)),
        ms(p99),
        ms(latencies[latencies.len() - 1]),
        ms(mean),
        AIM.as_millis(),
        if p99 <= AIM { "met" } else { "MISSED" }
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
