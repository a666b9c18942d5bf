//! The cost of shadow evaluation (issue 12, item 2), in one run so the
//! ratios are comparable (`cargo bench --bench shadow`):
//!
//! 1. Per decision: observe + decide of a failed three-task PipelineRun
//!    with no shadow, and with a candidate in shadow (the extra decide and
//!    the field comparison) that agrees, and one that disagrees (its
//!    summary differs, so the record is kept and the line logged).
//! 2. Per reconcile, the real controller against the API emulator: a
//!    controller start reconciles 2,000 WFEs (1,000 finished, 1,000 held by
//!    the cooldown; no write is due), without a shadow and with a candidate
//!    whose shorter cooldown disagrees on every held WFE. Reconcile time
//!    (p50, p99, mean) from the controller's hooks, wall time of the
//!    resync, writes, and the number of extra decisions.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures::stream::{self, StreamExt};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::bench_stats::{measure, percentile};
use support::{harness, Emulator, Verb};
use wfe_engine::api::WorkflowExecution;
use wfe_engine::controller::{
    spawn_controller, ControllerConfig, ControllerOptions, NoopHooks, ReconcileHooks,
    ReconcileOutcome, Shadow,
};
use wfe_engine::engine::record::primary_name;
use wfe_engine::engine::{decide, scenario, Decision, DecisionDiff};
use wfe_engine::observe::{self, EnvFacts};
use wfe_engine::rules::{self, RuleSet, SourceFile};

const CAPTURE: &str = include_str!("../tests/fixtures/captures/tekton-v1-oom-stepoom-v1.12.yaml");
const EXEC_NS: &str = "kubernaut-workflows";
const NS: &str = "bench";
const TARGETS: usize = 1_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The shipped rules with one text replaced in `file`.
fn shipped_with(file: &str, from: &str, to: &str) -> Result<RuleSet, BoxError> {
    let mut files: Vec<SourceFile> = rules::embedded::sources();
    let f = files
        .iter_mut()
        .find(|f| f.name == file)
        .ok_or("no such file")?;
    let text = String::from_utf8(f.content.clone())?;
    if !text.contains(from) {
        return Err(format!("{file} has no {from:?}").into());
    }
    f.content = text.replace(from, to).into_bytes();
    Ok(rules::load_sources(files)?)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE)
}

fn per_decision() -> Result<(), BoxError> {
    let set = rules::load_sources(rules::embedded::sources())?;
    let agreeing = shipped_with("history.yaml", "base: 1m", "base: 2m")?;
    let differing = shipped_with(
        "summary.yaml",
        "Consider increasing task resource limits.",
        "Raise the memory limit of the failed task.",
    )?;
    let cap = observe::parse_captures("bench.yaml", CAPTURE)?.remove(0);
    let primary = scenario::adopt_capture(&cap.primary);
    let wfe = observe::wfe_from_value(&scenario::wfe_for_capture(&primary, &set.lifecycle))?;
    let now = scenario::newest_timestamp([&primary]).unwrap_or_else(scenario::fallback_now);
    let env = EnvFacts::default();
    let facts = || scenario::facts_for(&wfe, Some(&primary), &cap.children, &[], env.clone(), &set);

    let shadow_of = |set: &RuleSet| {
        let s = Shadow::with_capacity(100);
        s.candidate_slot().store(Some(Arc::new(set.clone())));
        s
    };
    let agree = shadow_of(&agreeing);
    let differ = shadow_of(&differing);
    // The candidates do what their names say.
    let check = |s: &Shadow, want: bool| {
        let f = facts();
        let d = decide(&f, &set, now);
        s.evaluate(&NoopHooks, primary_name(&primary), &f, now, &d);
        s.recent().is_empty() != want
    };
    if !check(&agree, false) || !check(&differ, true) {
        return Err("a candidate does not (dis)agree as the bench assumes".into());
    }

    let n = 100_000;
    let active = |shadow: Option<&Shadow>| {
        let f = facts();
        let d: Decision = decide(black_box(&f), &set, now);
        if let Some(s) = shadow {
            s.evaluate(&NoopHooks, primary_name(&primary), &f, now, &d);
        }
        black_box(d);
    };
    let (none_p50, none_p99) = measure(n, || active(None));
    let (agree_p50, agree_p99) = measure(n, || active(Some(&agree)));
    let (differ_p50, differ_p99) = measure(n, || active(Some(&differ)));
    println!("per decision (observe + decide of a failed 3-task PipelineRun, {n} runs each):");
    println!("  no shadow:                    median {none_p50:?}, p99 {none_p99:?}");
    println!(
        "  candidate agrees:             median {agree_p50:?}, p99 {agree_p99:?}  (×{:.2} median)",
        ratio(agree_p50, none_p50)
    );
    println!(
        "  candidate disagrees (kept):   median {differ_p50:?}, p99 {differ_p99:?}  (×{:.2} median)",
        ratio(differ_p50, none_p50)
    );
    Ok(())
}

/// Reconcile durations (and when each ended), decisions and shadow
/// decisions of one controller.
#[derive(Default)]
struct Recorder {
    reconciles: Mutex<Vec<(Duration, Instant)>>,
    decided: AtomicUsize,
    shadowed: AtomicUsize,
    differ: AtomicUsize,
    /// Time in the active decisions and in the shadow ones (decide +
    /// compare), in nanoseconds, as the controller reports them.
    decide_nanos: AtomicU64,
    shadow_nanos: AtomicU64,
}

impl ReconcileHooks for Recorder {
    fn decided(&self, _d: &Decision, t: Duration) {
        self.decided.fetch_add(1, Ordering::Relaxed);
        self.decide_nanos
            .fetch_add(t.as_nanos() as u64, Ordering::Relaxed);
    }
    fn shadow_evaluated(&self, d: Option<&DecisionDiff>, t: Duration) {
        self.shadowed.fetch_add(1, Ordering::Relaxed);
        self.shadow_nanos
            .fetch_add(t.as_nanos() as u64, Ordering::Relaxed);
        if d.is_some() {
            self.differ.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn reconciled(&self, _o: ReconcileOutcome, elapsed: Duration) {
        if let Ok(mut v) = self.reconciles.lock() {
            v.push((elapsed, Instant::now()));
        }
    }
}

fn wfe(name: &str, target: &str) -> Result<WorkflowExecution, BoxError> {
    Ok(serde_json::from_value(harness::wfe_in(
        NS, name, target, "job", None,
    ))?)
}

/// 1,000 targets, each with a WFE that completed just now and a new one.
async fn populate(api: &Api<WorkflowExecution>) -> Result<(), BoxError> {
    let stamp = support::simulator::kit::now();
    let errors = stream::iter(0..TARGETS)
        .map(|i| {
            let (api, stamp) = (api.clone(), stamp.clone());
            async move {
                let target = format!("{NS}/Deployment/t-{i}");
                let done = wfe(&format!("done-{i}"), &target).map_err(|e| e.to_string())?;
                api.create(&PostParams::default(), &done)
                    .await
                    .map_err(|e| e.to_string())?;
                let status = json!({"status": {"phase": "Completed", "startTime": stamp, "completionTime": stamp}});
                api.patch_status(&format!("done-{i}"), &PatchParams::default(), &Patch::Merge(&status))
                    .await
                    .map_err(|e| e.to_string())?;
                let held = wfe(&format!("held-{i}"), &target).map_err(|e| e.to_string())?;
                api.create(&PostParams::default(), &held)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            }
        })
        .buffer_unordered(32)
        .filter_map(|r| futures::future::ready(r.err()))
        .collect::<Vec<_>>()
        .await;
    match errors.first() {
        Some(e) => Err(format!("populating: {} errors, first: {e}", errors.len()).into()),
        None => Ok(()),
    }
}

struct Round {
    p50: Duration,
    p99: Duration,
    mean: Duration,
    wall: Duration,
    decided: usize,
    shadowed: usize,
    differ: usize,
    writes: usize,
    /// Mean time of one active decision, and of one shadow evaluation.
    decide: Duration,
    shadow: Duration,
}

/// Start a controller (with `shadow` or not), wait until it has reconciled
/// every WFE and then nothing for a while, and stop it.
async fn round(
    emu: &Emulator,
    active: &Arc<ArcSwap<RuleSet>>,
    shadow: Option<&RuleSet>,
) -> Result<Round, BoxError> {
    let recorder = Arc::new(Recorder::default());
    let shadow = shadow.map(|c| {
        let s = Shadow::default();
        s.candidate_slot().store(Some(Arc::new(c.clone())));
        Arc::new(s)
    });
    let options = ControllerOptions {
        hooks: recorder.clone(),
        shadow,
        ..Default::default()
    };
    let config = ControllerConfig {
        execution_namespace: EXEC_NS.into(),
        ..Default::default()
    };
    emu.log().clear();
    let t0 = Instant::now();
    let handle = spawn_controller(emu.client(), config, active.clone(), options).await?;
    let end = Instant::now() + Duration::from_secs(300);
    let total = 2 * TARGETS;
    let quiet = Duration::from_millis(500);
    loop {
        let (n, last) = recorder
            .reconciles
            .lock()
            .map(|v| (v.len(), v.iter().map(|r| r.1).max()))
            .unwrap_or((0, None));
        if n >= total && last.is_some_and(|l| l.elapsed() > quiet) {
            break;
        }
        if Instant::now() > end {
            return Err("the resync did not finish".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    handle.shutdown().await?;
    let writes = emu
        .log()
        .count(|e| e.verb.is_write() && e.kind == "WorkflowExecution" && e.verb != Verb::Create);
    let done = recorder
        .reconciles
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    let wall = done
        .iter()
        .map(|r| r.1)
        .max()
        .map_or(Duration::ZERO, |l| l.duration_since(t0));
    let mut v: Vec<Duration> = done.iter().map(|r| r.0).collect();
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len().max(1) as u32;
    Ok(Round {
        p50: percentile(&v, 0.5).unwrap_or_default(),
        p99: percentile(&v, 0.99).unwrap_or_default(),
        mean,
        wall,
        decided: recorder.decided.load(Ordering::Relaxed),
        shadowed: recorder.shadowed.load(Ordering::Relaxed),
        differ: recorder.differ.load(Ordering::Relaxed),
        writes,
        decide: per(&recorder.decide_nanos, &recorder.decided),
        shadow: per(&recorder.shadow_nanos, &recorder.shadowed),
    })
}

fn per(nanos: &AtomicU64, count: &AtomicUsize) -> Duration {
    let n = count.load(Ordering::Relaxed).max(1) as u64;
    Duration::from_nanos(nanos.load(Ordering::Relaxed) / n)
}

fn print(label: &str, r: &Round) {
    println!(
        "  {label:<28} reconcile p50 {:?}, p99 {:?}, mean {:?}; resync {:.2}s; {} decisions ({:?} each) + {} in shadow ({:?} each, {} differ); {} WFE writes",
        r.p50, r.p99, r.mean, r.wall.as_secs_f64(), r.decided, r.decide, r.shadowed, r.shadow, r.differ, r.writes
    );
}

async fn per_reconcile() -> Result<(), BoxError> {
    let emu = Emulator::builder()
        .namespace(EXEC_NS)
        .namespace(NS)
        .start()
        .await;
    let api: Api<WorkflowExecution> = Api::namespaced(emu.client(), NS);
    populate(&api).await?;
    let active = Arc::new(ArcSwap::from_pointee(rules::load_sources(
        rules::embedded::sources(),
    )?));
    let candidate = shipped_with("history.yaml", "period: 5m", "period: 2m")?;
    // The first start puts the new WFEs on hold (one status write each,
    // and a reconcile more); the measured starts find nothing to write.
    let warm = round(&emu, &active, None).await?;
    if warm.writes < TARGETS {
        return Err(format!("the first start wrote {} holds", warm.writes).into());
    }
    println!(
        "per reconcile ({} WFEs: {TARGETS} finished, {TARGETS} held by the cooldown; a controller start reconciles each once):",
        2 * TARGETS
    );
    print("first start (holds written)", &warm);
    let mut none = Vec::new();
    let mut with = Vec::new();
    for _ in 0..3 {
        none.push(round(&emu, &active, None).await?);
        with.push(round(&emu, &active, Some(&candidate)).await?);
    }
    for (i, (n, w)) in none.iter().zip(&with).enumerate() {
        print(&format!("no shadow (round {})", i + 1), n);
        print(&format!("with shadow (round {})", i + 1), w);
    }
    let mean = |rs: &[Round], f: fn(&Round) -> Duration| {
        rs.iter().map(f).sum::<Duration>() / rs.len().max(1) as u32
    };
    println!(
        "  with / without shadow (means of the rounds): reconcile p50 ×{:.2}, p99 ×{:.2}, mean ×{:.2}, resync wall ×{:.2}",
        ratio(mean(&with, |r| r.p50), mean(&none, |r| r.p50)),
        ratio(mean(&with, |r| r.p99), mean(&none, |r| r.p99)),
        ratio(mean(&with, |r| r.mean), mean(&none, |r| r.mean)),
        ratio(mean(&with, |r| r.wall), mean(&none, |r| r.wall)),
    );
    println!(
        "  in the controller with shadow: {:?} per active decision, {:?} per shadow evaluation (×{:.2} the decision time)",
        mean(&with, |r| r.decide),
        mean(&with, |r| r.shadow),
        1.0 + ratio(mean(&with, |r| r.shadow), mean(&with, |r| r.decide)),
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    per_decision()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(per_reconcile())?;
    Ok(())
}
