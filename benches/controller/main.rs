//! Controller figures, measured from the API emulator's request log in one
//! run (`cargo bench --bench controller`), printed as plain text:
//!
//! 1. API writes per successful Tekton lifecycle, creation to lock release.
//! 2. Execution finished → WFE status terminal latency (p50/p99) with 1,000
//!    WFEs in flight, and creation → Running throughput.
//! 3. Writes when resyncing 1,000 finished WFEs (`reconcile_all`, and a
//!    controller restart, which re-lists and reconciles every WFE).
//!
//! Figures 1–3 are measured twice in one run, on the realistic emulator
//! (namespaces, validation, admission) with garbage collection inside the
//! DELETE call (GC delay 0) and asynchronous after 1 s, as in a cluster.
//!
//! 4. The scale sweep (controller/sweep.rs): for each scale of
//!    `WFE_BENCH_SCALES` (default 10000), the controller binary's RSS with
//!    that many WFEs and PipelineRuns cached, the restart time, and 1,000
//!    WFEs in flight on top. The emulator runs in a child process (this
//!    binary re-executed) and the controller is the real binary, so its RSS
//!    is its own.
//!
//! `WFE_BENCH_SCALES=1000,10000,100000 cargo bench --bench controller`
//!
//! The emulator keeps server-side-apply field ownership (`managedFields` on
//! every object, as a real API server does); `WFE_BENCH_FIELD_MANAGEMENT=off`
//! turns it off to tell its cost from the controller's.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

mod sweep;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures::stream::{self, StreamExt};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use support::bench_stats::percentile;
use support::simulator::Simulator;
use support::{harness, Emulator, Verb};
use wfe_engine::api::WorkflowExecution;
use wfe_engine::controller::{
    spawn_controller, ControllerConfig, ControllerHandle, ControllerOptions, InMemoryAuditSink,
    ReconcileHooks, ReconcileOutcome,
};
use wfe_engine::execute::{lock_name, pipeline_run_resource};
use wfe_engine::rules::RuleSet;

const EXEC_NS: &str = "kubernaut-workflows";
const NS: &str = "bench";
const CHILD_ENV: &str = "WFE_BENCH_EMULATOR_CHILD";

const LIFECYCLES: usize = 50;
const IN_FLIGHT: usize = 1_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if std::env::var_os(CHILD_ENV).is_some() {
        return rt.block_on(emulator_child());
    }
    rt.block_on(run())
}

/// Counts finished reconciles (to know when a resync is over).
#[derive(Default)]
struct Counter(AtomicUsize);

impl ReconcileHooks for Counter {
    fn reconciled(&self, _outcome: ReconcileOutcome, _elapsed: Duration) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn rules(cooldown: &str) -> Result<Arc<ArcSwap<RuleSet>>, BoxError> {
    let dir = tempfile::tempdir()?;
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    for entry in std::fs::read_dir(&src)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if name.ends_with(".test.yaml") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path)?.replace("period: 5m", &format!("period: {cooldown}"));
        std::fs::write(dir.path().join(&name), text)?;
    }
    let set = wfe_engine::rules::load_dir(dir.path())?;
    Ok(Arc::new(ArcSwap::from_pointee(set)))
}

async fn controller(
    client: Client,
    rules: Arc<ArcSwap<RuleSet>>,
    hooks: Arc<Counter>,
) -> Result<ControllerHandle, BoxError> {
    let config = ControllerConfig {
        execution_namespace: EXEC_NS.into(),
        ..Default::default()
    };
    let options = ControllerOptions {
        audit: Arc::new(InMemoryAuditSink::default()),
        hooks,
        ..Default::default()
    };
    Ok(spawn_controller(client, config, rules, options).await?)
}

fn wfe(name: &str, target: &str, scenario: Option<&str>) -> Result<WorkflowExecution, BoxError> {
    Ok(serde_json::from_value(harness::wfe_in(
        NS, name, target, "tekton", scenario,
    ))?)
}

/// Create many objects with a few concurrent requests.
async fn create_all(api: &Api<WorkflowExecution>, items: Vec<WorkflowExecution>) -> usize {
    stream::iter(items)
        .map(|w| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &w).await.is_ok() }
        })
        .buffer_unordered(16)
        .filter(|ok| futures::future::ready(!*ok))
        .count()
        .await
}

/// The status Tekton writes when a one-task PipelineRun succeeded at `stamp`.
fn succeeded_status(stamp: &str) -> serde_json::Value {
    json!({"status": {
        "startTime": stamp, "completionTime": stamp,
        "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded",
            "message": "Tasks Completed: 1 (Failed: 0, Cancelled 0), Skipped: 0",
            "lastTransitionTime": stamp}]}})
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<(), BoxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("timed out waiting for {what}").into())
}

async fn count_phase(api: &Api<WorkflowExecution>, prefix: &str, phase: &str) -> usize {
    match api.list(&ListParams::default()).await {
        Ok(l) => l
            .items
            .iter()
            .filter(|w| w.metadata.name.as_deref().unwrap_or("").starts_with(prefix))
            .filter(|w| w.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase))
            .count(),
        Err(_) => 0,
    }
}

async fn count_prs(prs: &Api<DynamicObject>) -> usize {
    prs.list(&ListParams::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(usize::MAX)
}

/// Controller writes: WFE writes other than creates, execution creates and
/// deletes (the simulator or the bench write execution status).
fn controller_writes(e: &support::emulator::LogEntry) -> bool {
    e.verb.is_write()
        && (200..300).contains(&e.status)
        && ((e.kind == "WorkflowExecution" && e.verb != Verb::Create)
            || (e.kind == "PipelineRun" && matches!(e.verb, Verb::Create | Verb::Delete)))
}

async fn run() -> Result<(), BoxError> {
    for gc in [None, Some(Duration::from_secs(1))] {
        let label = gc.map_or("0 (inside the DELETE call)".to_string(), |d| {
            format!("{d:?}")
        });
        println!("--- garbage collection delay {label} ---");
        figures(gc).await?;
    }
    // 4. Memory, restart and in-flight figures at scale (WFE_BENCH_SCALES),
    //    against an emulator in a child process (no deletions happen there:
    //    the GC delay does not apply).
    sweep::sweep(&sweep::scales()).await
}

/// Figures 1–3 with the emulator's garbage collection delayed by `gc`.
async fn figures(gc: Option<Duration>) -> Result<(), BoxError> {
    let emu = Emulator::builder()
        .realistic()
        .field_management(field_management())
        .gc_delay(gc)
        .namespace(EXEC_NS)
        .namespace(NS)
        .start()
        .await;
    let client = emu.client();
    let wfes: Api<WorkflowExecution> = Api::namespaced(client.clone(), NS);
    let prs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), EXEC_NS, &pipeline_run_resource());
    let rules = rules("1s")?;
    let counter = Arc::new(Counter::default());
    let handle = controller(emu.client(), rules.clone(), counter.clone()).await?;

    // 1. Writes per Tekton lifecycle (the simulator plays Tekton).
    let sim = Simulator::start(emu.client());
    let items = (0..LIFECYCLES)
        .map(|i| {
            wfe(
                &format!("life-{i}"),
                &format!("bench/Deployment/life-{i}"),
                None,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    create_all(&wfes, items).await;
    wait_until("lifecycles complete", Duration::from_secs(60), || async {
        count_phase(&wfes, "life-", "Completed").await == LIFECYCLES
    })
    .await?;
    wait_until("locks released", Duration::from_secs(60), || async {
        count_prs(&prs).await == 0
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = emu.log().count(controller_writes);
    println!(
        "writes per Tekton lifecycle (creation → lock release): {:.2} ({writes} writes / {LIFECYCLES} WFEs)",
        writes as f64 / LIFECYCLES as f64
    );
    writes_distribution(&emu.log().entries());
    drop(sim);

    // 2. 1,000 in flight: the bench plays Tekton so that nothing polls.
    emu.log().clear();
    let items = (0..IN_FLIGHT)
        .map(|i| {
            wfe(
                &format!("fly-{i}"),
                &format!("bench/Deployment/fly-{i}"),
                None,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let t0 = Instant::now();
    let failed = create_all(&wfes, items).await;
    let created_in = t0.elapsed();
    wait_until("all Running", Duration::from_secs(120), || async {
        count_phase(&wfes, "fly-", "Running").await == IN_FLIGHT
    })
    .await?;
    let log = emu.log().entries();
    let first_create = log
        .iter()
        .filter(|e| e.kind == "WorkflowExecution" && e.verb == Verb::Create)
        .map(|e| e.at)
        .min()
        .ok_or("no creates")?;
    let last_running = log
        .iter()
        .filter(|e| {
            e.kind == "WorkflowExecution"
                && e.subresource.as_deref() == Some("status")
                && e.status < 300
        })
        .map(|e| e.at + e.duration)
        .max()
        .ok_or("no status writes")?;
    let span = last_running.duration_since(first_create).as_secs_f64();
    println!(
        "throughput creation → Running: {:.0} WFEs/s ({IN_FLIGHT} in {span:.2}s; creating them took {:.2}s, {failed} create errors)",
        IN_FLIGHT as f64 / span,
        created_in.as_secs_f64()
    );

    // Finish the executions at ~500/s, as Tekton would.
    emu.log().clear();
    let stamp = support::simulator::kit::now();
    let ticker = Arc::new(tokio::sync::Semaphore::new(0));
    let feeder = {
        let ticker = ticker.clone();
        tokio::spawn(async move {
            for _ in 0..IN_FLIGHT {
                ticker.add_permits(1);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    stream::iter(0..IN_FLIGHT)
        .map(|i| {
            let (prs, ticker, stamp) = (prs.clone(), ticker.clone(), stamp.clone());
            async move {
                if let Ok(p) = ticker.acquire().await {
                    p.forget();
                }
                let name = lock_name(&format!("bench/Deployment/fly-{i}"));
                let _ = prs
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(&succeeded_status(&stamp)),
                    )
                    .await;
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let _ = feeder.await;
    wait_until("all Completed", Duration::from_secs(120), || async {
        count_phase(&wfes, "fly-", "Completed").await == IN_FLIGHT
    })
    .await?;
    let log = emu.log().entries();
    let mut done_at = std::collections::HashMap::new();
    for e in &log {
        if e.kind == "PipelineRun" && e.subresource.as_deref() == Some("status") && e.status < 300 {
            if let Some(n) = &e.name {
                done_at.insert(n.clone(), e.at + e.duration);
            }
        }
    }
    let mut terminal_at = std::collections::HashMap::new();
    for e in &log {
        if e.kind == "WorkflowExecution"
            && e.subresource.as_deref() == Some("status")
            && e.status < 300
        {
            if let Some(n) = &e.name {
                terminal_at.insert(n.clone(), e.at + e.duration);
            }
        }
    }
    let mut lat: Vec<f64> = (0..IN_FLIGHT)
        .filter_map(|i| {
            let pr = done_at.get(&lock_name(&format!("bench/Deployment/fly-{i}")))?;
            let w = terminal_at.get(&format!("fly-{i}"))?;
            Some(w.saturating_duration_since(*pr).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "execution finished → WFE terminal ({} of {IN_FLIGHT} measured, finishing at ~500/s): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        percentile(&lat, 0.5).unwrap_or(f64::NAN),
        percentile(&lat, 0.99).unwrap_or(f64::NAN),
        lat.last().copied().unwrap_or(f64::NAN)
    );

    // 3. Resync of the finished WFEs, once their locks are released.
    wait_until("locks released", Duration::from_secs(60), || async {
        count_prs(&prs).await == 0
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let finished = count_phase(&wfes, "", "Completed").await;
    emu.log().clear();
    handle.reconcile_all();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_trigger = emu.log().count(controller_writes);
    handle.shutdown().await?;
    let restarted = Arc::new(Counter::default());
    let handle = controller(emu.client(), rules.clone(), restarted.clone()).await?;
    let t0 = Instant::now();
    wait_until("resync reconciles", Duration::from_secs(120), || async {
        restarted.0.load(Ordering::Relaxed) >= finished
    })
    .await?;
    let resync_time = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_restart = emu.log().count(controller_writes) - after_trigger;
    println!(
        "writes resyncing {finished} finished WFEs: {after_trigger} (reconcile_all), {after_restart} (controller restart: re-list and reconcile all, {:.2}s)",
        resync_time.as_secs_f64()
    );
    handle.shutdown().await?;
    drop(emu);
    Ok(())
}

/// How the lifecycle writes spread over the WFEs, and what the WFEs with
/// more than the usual count wrote (issue 13: 5.40 on a slower machine).
fn writes_distribution(log: &[support::emulator::LogEntry]) {
    use std::collections::BTreeMap;
    let owner: std::collections::HashMap<String, String> = (0..LIFECYCLES)
        .map(|i| {
            (
                lock_name(&format!("bench/Deployment/life-{i}")),
                format!("life-{i}"),
            )
        })
        .collect();
    let mut per_wfe: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut creates = 0;
    for e in log.iter().filter(|e| controller_writes(e)) {
        let what = format!(
            "{:?} {}{}",
            e.verb,
            e.kind,
            e.subresource
                .as_deref()
                .map(|s| format!("/{s}"))
                .unwrap_or_default()
        );
        let wfe = match (e.kind.as_str(), &e.name) {
            ("WorkflowExecution", Some(n)) => Some(n.clone()),
            (_, Some(n)) => owner.get(n).cloned(),
            _ => None,
        };
        match wfe {
            Some(w) => per_wfe.entry(w).or_default().push(what),
            None => creates += 1,
        }
    }
    let mut histogram: BTreeMap<usize, usize> = BTreeMap::new();
    for writes in per_wfe.values() {
        *histogram.entry(writes.len() + 1).or_default() += 1;
    }
    let shown: Vec<String> = histogram
        .iter()
        .map(|(w, n)| format!("{n} WFEs with {w}"))
        .collect();
    println!(
        "  distribution (PipelineRun creates, {creates}, counted one per WFE): {}",
        shown.join(", ")
    );
    let usual = histogram
        .iter()
        .max_by_key(|(_, n)| **n)
        .map_or(0, |(w, _)| *w);
    for (wfe, writes) in per_wfe.iter().filter(|(_, w)| w.len() + 1 > usual) {
        println!("  {wfe}: create PipelineRun, {}", writes.join(", "));
    }
}

fn rss_kib_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn client_for(url: &str) -> Result<Client, BoxError> {
    use kube::client::ConfigExt;
    let config = kube::Config::new(url.parse()?);
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .service(http);
    Ok(Client::new(service, config.default_namespace))
}

/// Whether the emulator keeps field ownership (`WFE_BENCH_FIELD_MANAGEMENT`).
fn field_management() -> bool {
    std::env::var("WFE_BENCH_FIELD_MANAGEMENT").map_or(true, |v| v != "off")
}

async fn emulator_child() -> Result<(), BoxError> {
    let emu = Emulator::builder()
        .field_management(field_management())
        .namespace(EXEC_NS)
        .namespace(NS)
        .start()
        .await;
    println!("{}", emu.url());
    std::io::stdout().flush()?;
    // Serve until the parent closes our stdin.
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin()
            .read_line(&mut line)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            line.clear();
        }
    })
    .await?;
    drop(emu);
    Ok(())
}

/// A plain HTTP/1.0 GET on loopback (no client dependency for one scrape).
fn http_get(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/')?;
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut body = String::new();
    std::io::Read::read_to_string(&mut stream, &mut body).ok()?;
    body.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}
