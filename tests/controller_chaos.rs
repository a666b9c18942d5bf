//! Chaos: 500 WorkflowExecutions on 100 targets while the API server fails
//! 5 % of requests, answers 5 % of guarded writes with 409, closes every
//! watch every 2 s, and the controller is killed and restarted three times.
//!
//! The workload is a script per target whose end state the shipped rules
//! determine whatever the timing: each next WFE is created only once the
//! previous step is visible in the API, and every race the chaos can cause
//! (a stale cache, a lost reply, a restart between two writes) must resolve
//! to the same phase. Five scripts, 20 targets each, 5 WFEs per target
//! (two more, the lock-reuse ones, run in their own test):
//!
//! - `dedup-tekton` / `dedup-job`: w0 runs for seconds; w1, w2 are created
//!   while it runs → `Deduplicated`; w3 after w0 completed (cooldown hold,
//!   stale-lock replacement) → Completed; w4 after w3 → Completed.
//! - `block-clear`: w0 fails during execution; w1, w2 → `PreviousExecutionFailed`;
//!   w0 gets `kubernaut.ai/clear-block`; w3, w4 → Completed.
//! - `exhausted`: w0..w2 fail before execution (backoff holds between them);
//!   w3, w4 → `ExhaustedRetries` (limit 3 in these rules).
//! - `delete-unblock`: w0 (Job) fails during execution; w1 →
//!   `PreviousExecutionFailed`; w0 is deleted (finalizer cleanup); w2 →
//!   Completed; w3 has no engine → `ConfigurationError`; w4 → Completed
//!   after a backoff hold.
//! - `reuse-job` / `reuse-tekton`: the lock name is reused while the
//!   previous run's children linger (garbage collection is asynchronous):
//!   w0 fails with exit 4 and is cleared; w1's pod is refused at admission
//!   (no pod of its own: a pre-execution failure that blocks nothing);
//!   w2..w4 complete. A failure read from the previous run's pods or
//!   TaskRuns would give w1 exit 4 and block w2.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::harness;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::*;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};
use support::emulator::selector::{FieldSelector, LabelSelector};
use support::simulator::SimConfig;
use support::{Emulator, Verb};
use tokio::sync::watch;
use wfe_engine::api::WorkflowExecution;

/// Targets per script.
const PER_SCRIPT: usize = 20;
const PER_TARGET: usize = 5;
/// How long the whole workload may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(120);
/// Asynchronous garbage collection: children of a deleted execution object
/// linger this long (and a deleted Job's pods hold their tracking finalizer).
const GC_DELAY: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    DedupTekton,
    DedupJob,
    BlockClear,
    Exhausted,
    DeleteUnblock,
    ReuseJob,
    ReuseTekton,
}

const SCRIPTS: [Script; 5] = [
    Script::DedupTekton,
    Script::DedupJob,
    Script::BlockClear,
    Script::Exhausted,
    Script::DeleteUnblock,
];

/// The lock-reuse scripts, run in `chaos_lock_reuse_while_children_linger`.
const REUSE: [Script; 2] = [Script::ReuseJob, Script::ReuseTekton];

impl Script {
    /// The end state the rules give each WFE of the script: phase and
    /// failure reason; `None` for a WFE the script deletes.
    fn expected(self) -> [Option<(&'static str, &'static str)>; PER_TARGET] {
        const C: Option<(&str, &str)> = Some(("Completed", ""));
        const fn f(reason: &'static str) -> Option<(&'static str, &'static str)> {
            Some(("Failed", reason))
        }
        match self {
            Script::DedupTekton | Script::DedupJob => {
                [C, f("Deduplicated"), f("Deduplicated"), C, C]
            }
            Script::BlockClear => [
                f("TaskFailed"),
                f("PreviousExecutionFailed"),
                f("PreviousExecutionFailed"),
                C,
                C,
            ],
            Script::Exhausted => [
                f("ConfigurationError"),
                f("ConfigurationError"),
                f("ConfigurationError"),
                f("ExhaustedRetries"),
                f("ExhaustedRetries"),
            ],
            Script::DeleteUnblock => [
                None,
                f("PreviousExecutionFailed"),
                C,
                f("ConfigurationError"),
                C,
            ],
            Script::ReuseJob => [f("TaskFailed"), f("DeadlineExceeded"), C, C, C],
            Script::ReuseTekton => [f("TaskFailed"), f("Forbidden"), C, C, C],
        }
    }

    /// The exit code each failed WFE of the script must report (its own
    /// run's, whatever lingers from the previous run on the same lock).
    fn exit_codes(self) -> [Option<i32>; PER_TARGET] {
        match self {
            Script::BlockClear => [Some(2), None, None, None, None],
            Script::DeleteUnblock => [Some(3), None, None, None, None],
            Script::ReuseJob | Script::ReuseTekton => [Some(4), None, None, None, None],
            _ => [None; PER_TARGET],
        }
    }

    /// Which WFEs of the script start an execution.
    fn starts(self) -> [bool; PER_TARGET] {
        match self {
            Script::DedupTekton | Script::DedupJob | Script::BlockClear => {
                [true, false, false, true, true]
            }
            Script::Exhausted => [true, true, true, false, false],
            Script::DeleteUnblock => [true, false, true, false, true],
            Script::ReuseJob | Script::ReuseTekton => [true; PER_TARGET],
        }
    }

    fn engine(self) -> &'static str {
        match self {
            Script::DedupJob | Script::DeleteUnblock | Script::ReuseJob => "job",
            _ => "tekton",
        }
    }
}

fn name(t: usize, j: usize) -> String {
    format!("t{t:03}-w{j}")
}

fn target(t: usize) -> String {
    format!("team-a/Deployment/chaos-{t:03}")
}

type Snapshot = Arc<HashMap<String, WorkflowExecution>>;

/// What a target script needs: a client (through the faults) and the
/// snapshot of every WFE, read from the emulator's store (no faults).
#[derive(Clone)]
struct Driver {
    client: Client,
    snap: watch::Receiver<Snapshot>,
}

fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 429,
        _ => true,
    }
}

impl Driver {
    fn wfes(&self) -> Api<WorkflowExecution> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Retry an API call through injected 5xx (they fail before anything
    /// is applied, so a retry cannot apply a write twice).
    async fn retry<T, F, Fut>(&self, what: &str, mut op: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, kube::Error>>,
    {
        for _ in 0..200 {
            match op().await {
                Ok(v) => return v,
                Err(e) if is_transient(&e) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => panic!("{what}: {e}"),
            }
        }
        panic!("{what}: still failing after 200 tries");
    }

    async fn create(&self, doc: Value) {
        let w: WorkflowExecution = serde_json::from_value(doc).expect("wfe json");
        let api = self.wfes();
        let name = w.metadata.name.clone().unwrap_or_default();
        self.retry(&format!("create {name}"), || async {
            match api.create(&PostParams::default(), &w).await {
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                r => r.map(|_| ()),
            }
        })
        .await;
    }

    async fn clear_block(&self, name: &str) {
        let api = self.wfes();
        let patch = Patch::Merge(json!({"metadata": {"annotations": {
            "kubernaut.ai/clear-block": "fixed by hand"}}}));
        let pp = PatchParams::default();
        self.retry(&format!("annotate {name}"), || api.patch(name, &pp, &patch))
            .await;
    }

    async fn delete(&self, name: &str) {
        let api = self.wfes();
        self.retry(&format!("delete {name}"), || async {
            match api.delete(name, &DeleteParams::default()).await {
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                r => r.map(|_| ()),
            }
        })
        .await;
        self.until(&format!("{name} gone"), |s| !s.contains_key(name))
            .await;
    }

    async fn until(&self, what: &str, f: impl Fn(&HashMap<String, WorkflowExecution>) -> bool) {
        let mut rx = self.snap.clone();
        let res = tokio::time::timeout(DEADLINE, rx.wait_for(|s| f(s))).await;
        match res {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => panic!("snapshot task ended while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }

    async fn phase(&self, name: &str, phases: &[&str]) {
        self.until(&format!("{name} in {phases:?}"), |s| {
            s.get(name)
                .is_some_and(|w| phases.contains(&phase_of(w).as_str()))
        })
        .await;
    }

    async fn terminal(&self, name: &str) {
        self.phase(name, &["Completed", "Failed"]).await;
    }
}

fn doc(t: usize, j: usize, script: Script, scenario: Option<&str>) -> Value {
    wfe(&name(t, j), &target(t), script.engine(), scenario)
}

async fn run_script(d: Driver, t: usize, script: Script) {
    let n = |j| name(t, j);
    match script {
        Script::DedupTekton | Script::DedupJob => {
            d.create(doc(t, 0, script, Some("slow:6000"))).await;
            d.phase(&n(0), &["Running"]).await;
            d.create(doc(t, 1, script, None)).await;
            d.create(doc(t, 2, script, None)).await;
            d.terminal(&n(1)).await;
            d.terminal(&n(2)).await;
            d.terminal(&n(0)).await;
            d.create(doc(t, 3, script, None)).await;
            d.terminal(&n(3)).await;
            d.create(doc(t, 4, script, None)).await;
            d.terminal(&n(4)).await;
        }
        Script::BlockClear => {
            d.create(doc(t, 0, script, Some("failed:2"))).await;
            d.terminal(&n(0)).await;
            d.create(doc(t, 1, script, None)).await;
            d.terminal(&n(1)).await;
            d.create(doc(t, 2, script, None)).await;
            d.terminal(&n(2)).await;
            d.clear_block(&n(0)).await;
            d.create(doc(t, 3, script, None)).await;
            d.terminal(&n(3)).await;
            d.create(doc(t, 4, script, None)).await;
            d.terminal(&n(4)).await;
        }
        Script::Exhausted => {
            for j in 0..PER_TARGET {
                d.create(doc(t, j, script, Some("validation"))).await;
                d.terminal(&n(j)).await;
            }
        }
        Script::ReuseJob | Script::ReuseTekton => {
            d.create(doc(t, 0, script, Some("failed:4"))).await;
            d.terminal(&n(0)).await;
            d.clear_block(&n(0)).await;
            d.create(doc(t, 1, script, Some("forbidden"))).await;
            d.terminal(&n(1)).await;
            for j in 2..PER_TARGET {
                d.create(doc(t, j, script, None)).await;
                d.terminal(&n(j)).await;
            }
        }
        Script::DeleteUnblock => {
            d.create(doc(t, 0, script, Some("failed:3"))).await;
            d.terminal(&n(0)).await;
            d.create(doc(t, 1, script, None)).await;
            d.terminal(&n(1)).await;
            d.delete(&n(0)).await;
            d.create(doc(t, 2, script, None)).await;
            d.terminal(&n(2)).await;
            let mut invalid = doc(t, 3, script, None);
            invalid["spec"]["workflowRef"]
                .as_object_mut()
                .expect("workflowRef")
                .remove("executionEngine");
            d.create(invalid).await;
            d.terminal(&n(3)).await;
            d.create(doc(t, 4, script, None)).await;
            d.terminal(&n(4)).await;
        }
    }
}

/// Every WFE in the store, refreshed every 100 ms.
fn spawn_snapshots(emu: &Emulator) -> (watch::Receiver<Snapshot>, tokio::task::JoinHandle<()>) {
    let store = emu.store().clone();
    let ty = store
        .registry
        .kinds
        .iter()
        .position(|k| k.kind == "WorkflowExecution")
        .expect("WFE kind");
    let (tx, rx) = watch::channel(Snapshot::default());
    let task = tokio::spawn(async move {
        let labels = LabelSelector::parse("").expect("empty selector");
        let fields = FieldSelector::parse("", &[]).expect("empty selector");
        loop {
            if let Ok(page) = store.list(ty, Some(NS), &labels, &fields, None, None) {
                let map: HashMap<String, WorkflowExecution> = page
                    .items
                    .iter()
                    .filter_map(|v| serde_json::from_value::<WorkflowExecution>((**v).clone()).ok())
                    .map(|w| (w.metadata.name.clone().unwrap_or_default(), w))
                    .collect();
                tx.send_replace(Arc::new(map));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (rx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_500_wfes_100_targets_faults_and_restarts() {
    chaos(&SCRIPTS).await;
}

/// A lock name reused while the previous run's pods and TaskRuns linger:
/// a failure must never be read from them (children attach to their run by
/// owner uid in the controller's stores and fresh reads, issue 9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_lock_reuse_while_children_linger() {
    chaos(&REUSE).await;
}

/// Every script of `scripts` on `PER_SCRIPT` targets each, under faults,
/// closed watches, asynchronous GC and three controller kills.
async fn chaos(plan: &[Script]) {
    let targets = plan.len() * PER_SCRIPT;
    let started = Instant::now();
    let mut h = Harness::start_with(Options {
        times: RuleTimes {
            cooldown: "1s",
            backoff_base: "300ms",
            backoff_max: "1s",
            history_edits: vec![("maxConsecutiveFailures: 5", "maxConsecutiveFailures: 3")],
        },
        sim: SimConfig {
            step_delay: Duration::from_millis(20),
            // Tekton's default hour passes in 36 s: longer than any run here.
            time_scale: 0.01,
            ..Default::default()
        },
        emulator: Emulator::builder().realistic().gc_delay(Some(GC_DELAY)),
        ..Default::default()
    })
    .await;
    let faults = h.emu.faults().clone();
    faults.fail(None, None, 0.05, 500);
    faults.set_conflict_rate(0.05);
    faults.close_watches_every(Duration::from_secs(2));

    let (snap, snap_task) = spawn_snapshots(&h.emu);
    let driver = Driver {
        client: h.client(),
        snap,
    };
    let mut scripts = tokio::task::JoinSet::new();
    for t in 0..targets {
        let script = plan[t % plan.len()];
        scripts.spawn(run_script(driver.clone(), t, script));
    }

    // Three crashes mid-run, each followed by a restart.
    for at in [2500u64, 5000, 7500] {
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            started + Duration::from_millis(at),
        ))
        .await;
        println!("{:?}: killing the controller", started.elapsed());
        h.kill_controller();
        tokio::time::sleep(Duration::from_millis(200)).await;
        h.start_controller_retrying(Duration::from_secs(30)).await;
    }

    let finished = tokio::time::timeout(DEADLINE, async {
        while let Some(r) = scripts.join_next().await {
            if let Err(e) = r {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    })
    .await;
    if finished.is_err() {
        dump_unfinished(&driver);
        panic!("scripts did not finish in {DEADLINE:?}");
    }
    println!("{:?}: every script done", started.elapsed());

    // Every lock is released after the last cooldown (nothing stuck).
    faults.clear();
    let exec = |kind: &str| {
        let ar = match kind {
            "PipelineRun" => wfe_engine::execute::pipeline_run_resource(),
            _ => wfe_engine::execute::ExecutionEngine::Job.api_resource(),
        };
        Api::<kube::api::DynamicObject>::namespaced_with(h.client(), EXEC_NS, &ar)
    };
    let (prs, jobs) = (exec("PipelineRun"), exec("Job"));
    eventually(
        "every execution object released",
        Duration::from_secs(30),
        || async {
            let p = prs
                .list(&ListParams::default())
                .await
                .map(|l| l.items.len());
            let j = jobs
                .list(&ListParams::default())
                .await
                .map(|l| l.items.len());
            matches!((p, j), (Ok(0), Ok(0)))
        },
    )
    .await;
    println!("{:?}: every lock released", started.elapsed());

    // End states as the rules say.
    let all: BTreeMap<String, WorkflowExecution> = h
        .wfes(NS)
        .list(&ListParams::default())
        .await
        .expect("list wfes")
        .items
        .into_iter()
        .map(|w| (w.metadata.name.clone().unwrap_or_default(), w))
        .collect();
    let mut wrong = Vec::new();
    // Failures classified from another run's children (the lock name is
    // reused while the previous run's pods and TaskRuns linger).
    let mut foreign = Vec::new();
    let (mut tekton_starts, mut job_starts) = (0, 0);
    for t in 0..targets {
        let script = plan[t % plan.len()];
        for (j, (expect, starts)) in script.expected().iter().zip(script.starts()).enumerate() {
            let n = name(t, j);
            if starts {
                match script.engine() {
                    "job" => job_starts += 1,
                    _ => tekton_starts += 1,
                }
            }
            let Some((phase, reason)) = expect else {
                if all.contains_key(&n) {
                    wrong.push(format!("{n}: should be deleted"));
                }
                continue;
            };
            let Some(w) = all.get(&n) else {
                wrong.push(format!("{n}: missing"));
                continue;
            };
            let got = (phase_of(w), reason_of(w));
            if (got.0.as_str(), got.1.as_str()) != (*phase, *reason) {
                wrong.push(format!(
                    "{n} ({script:?}): {got:?}, expected ({phase}, {reason})"
                ));
            }
            let st = w.status.clone().unwrap_or_default();
            let code = st.failure_details.as_ref().and_then(|d| d.exit_code);
            let was = st.failure_details.as_ref().map(|d| d.was_execution_failure);
            let reused_refusal = matches!(script, Script::ReuseJob | Script::ReuseTekton) && j == 1;
            if reused_refusal && was != Some(false) {
                foreign.push(format!(
                    "{n} ({script:?}): wasExecutionFailure {was:?}, but its own run never started"
                ));
            }
            if code != script.exit_codes()[j] {
                foreign.push(format!(
                    "{n} ({script:?}): exit code {code:?}, its own run: {:?}",
                    script.exit_codes()[j]
                ));
            }
            if st.start_time.is_some() != starts {
                wrong.push(format!("{n} ({script:?}): startTime {:?}", st.start_time));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong end states:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        foreign.is_empty(),
        "{} WFEs classified from another run's children:\n{}",
        foreign.len(),
        foreign.join("\n")
    );
    let deleted = plan.iter().filter(|s| s.expected()[0].is_none()).count() * PER_SCRIPT;
    assert_eq!(all.len(), targets * PER_TARGET - deleted);

    // Exactly one execution object per started WFE: every started WFE has
    // one (it started), and the successful creates add up to no more.
    let log = h.emu.log();
    let creates =
        |kind: &str| log.count(|e| e.verb == Verb::Create && e.kind == kind && e.status == 201);
    assert_eq!(creates("PipelineRun"), tekton_starts, "PipelineRun creates");
    assert_eq!(creates("Job"), job_starts, "Job creates");
    assert_eq!(h.sim.started(), tekton_starts + job_starts, "runs played");

    // No audit record twice (by idempotency key), none for a transition
    // that never happened.
    assert_eq!(h.audit.duplicates(), 0, "duplicate audit records");
    let records = h.audit.records();
    let completed = records
        .iter()
        .filter(|r| r.event_type.ends_with("workflow.completed"))
        .count();
    let expected_completed = plan
        .iter()
        .map(|s| {
            s.expected()
                .iter()
                .filter(|e| matches!(e, Some(("Completed", _))))
                .count()
        })
        .sum::<usize>()
        * PER_SCRIPT;
    assert!(
        completed <= expected_completed,
        "{completed} completion records"
    );
    println!(
        "audit: {} records, {completed}/{expected_completed} completion records \
         (a crash between a status write and the enqueue loses one)",
        records.len()
    );

    // No event twice: per object and reason, one per written
    // resourceVersion, and never the same message twice.
    let events: Vec<Event> = Api::<Event>::namespaced(h.client(), NS)
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items;
    let mut by_version: HashMap<(String, String, String), usize> = HashMap::new();
    let mut by_note: HashMap<(String, String, String), usize> = HashMap::new();
    for e in &events {
        let r = e.regarding.clone().unwrap_or_default();
        let uid = r.uid.unwrap_or_default();
        let reason = e.reason.clone().unwrap_or_default();
        *by_version
            .entry((
                uid.clone(),
                reason.clone(),
                r.resource_version.unwrap_or_default(),
            ))
            .or_default() += 1;
        *by_note
            .entry((uid, reason, e.note.clone().unwrap_or_default()))
            .or_default() += 1;
    }
    let dups: Vec<_> = by_version
        .iter()
        .filter(|(_, n)| **n > 1)
        .chain(by_note.iter().filter(|(_, n)| **n > 1))
        .collect();
    assert!(dups.is_empty(), "duplicated events: {dups:?}");
    println!("events: {}", events.len());

    snap_task.abort();
    let elapsed = started.elapsed();
    println!(
        "chaos run: {elapsed:?}, {} requests, {} injected failures",
        log.entries().len(),
        log.count(|e| e.status == 500)
    );
    h.stop().await;
}

fn dump_unfinished(d: &Driver) {
    let snap = d.snap.borrow().clone();
    let mut names: Vec<_> = snap.keys().cloned().collect();
    names.sort();
    for n in names {
        let w = &snap[&n];
        if !matches!(phase_of(w).as_str(), "Completed" | "Failed") {
            println!("{n}: {:?}", w.status);
        }
    }
}
