//! The execution simulator: plays Tekton and the Job controller against the
//! emulator through a kube `Client`. It watches PipelineRuns and Jobs in
//! every namespace and drives each new one through a [`Scenario`] chosen by,
//! in order: a name set with [`Simulator::set_scenario`], the label
//! `sim.kubernaut.ai/scenario`, the PipelineRun param / Job container env
//! `SIM_SCENARIO`, else success.

pub mod job;
pub mod kit;
pub mod policy;
pub mod scenario;
pub mod tekton;
pub mod tekton_child;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde_json::Value;

pub use scenario::{Scenario, SCENARIO_LABEL, SCENARIO_PARAM};

/// Timing and shape knobs.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Pause between two status transitions.
    pub step_delay: Duration,
    /// Pipeline tasks when the PipelineRun has no inline `pipelineSpec`
    /// (bundle/resolver refs); failures hit the last one.
    pub default_tasks: Vec<String>,
    /// The controllers' clock for the durations the objects declare
    /// (`activeDeadlineSeconds`, `timeouts.pipeline`, the Job's pod failure
    /// backoff): a declared duration passes after `duration × time_scale`
    /// of wall-clock time. Scenario delays (`slow:MILLIS`) are not scaled.
    pub time_scale: f64,
}

/// Default [`SimConfig::time_scale`]: Tekton's default hour passes in 7.2 s,
/// a Job's default 30-minute deadline in 3.6 s.
pub const DEFAULT_TIME_SCALE: f64 = 0.002;

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            step_delay: Duration::from_millis(5),
            default_tasks: vec!["workflow".to_string()],
            time_scale: DEFAULT_TIME_SCALE,
        }
    }
}

impl SimConfig {
    /// A declared duration on the simulator's clock.
    pub fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.time_scale.max(0.0))
    }
}

/// A running simulator; dropping it stops every run.
pub struct Simulator {
    scenarios: Arc<Mutex<HashMap<String, Scenario>>>,
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

fn finished_already(kind: &str, obj: &Value) -> bool {
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return true;
    }
    let conds = obj.pointer("/status/conditions").and_then(Value::as_array);
    let done = |c: &Value| match kind {
        "PipelineRun" => {
            c.get("type").and_then(Value::as_str) == Some("Succeeded")
                && c.get("status").and_then(Value::as_str) != Some("Unknown")
        }
        _ => matches!(
            c.get("type").and_then(Value::as_str),
            Some("Complete" | "Failed")
        ),
    };
    conds.into_iter().flatten().any(done)
}

impl Simulator {
    pub fn start(client: Client) -> Self {
        Self::start_with(client, SimConfig::default())
    }

    pub fn start_with(client: Client, cfg: SimConfig) -> Self {
        let scenarios: Arc<Mutex<HashMap<String, Scenario>>> = Arc::default();
        let started = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(main_loop(
            client,
            Arc::new(cfg),
            scenarios.clone(),
            started.clone(),
            finished.clone(),
        ));
        Self {
            scenarios,
            started,
            finished,
            task,
        }
    }

    /// Force the scenario of the PipelineRun or Job with this name.
    pub fn set_scenario(&self, name: &str, s: Scenario) {
        if let Ok(mut m) = self.scenarios.lock() {
            m.insert(name.to_string(), s);
        }
    }

    /// Runs picked up so far.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Runs played to their end (or stopped because the object went away).
    pub fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn main_loop(
    client: Client,
    cfg: Arc<SimConfig>,
    scenarios: Arc<Mutex<HashMap<String, Scenario>>>,
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
) {
    let prs: Api<DynamicObject> = Api::all_with(client.clone(), &kit::pipelineruns());
    let jobs: Api<DynamicObject> = Api::all_with(client.clone(), &kit::jobs());
    let wc = watcher::Config::default();
    let pr_stream = watcher(prs, wc.clone())
        .default_backoff()
        .applied_objects()
        .map(|o| ("PipelineRun", o));
    let job_stream = watcher(jobs, wc)
        .default_backoff()
        .applied_objects()
        .map(|o| ("Job", o));
    // The Job controller also releases the tracking finalizer of pods that
    // are being deleted (their Job went, or the pod was deleted directly).
    let pods: Api<DynamicObject> = Api::all_with(client.clone(), &kit::pods());
    let pod_stream = watcher(pods, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .map(|o| ("Pod", o));
    let mut events = std::pin::pin!(futures::stream::select(
        futures::stream::select(pr_stream, job_stream),
        pod_stream
    ));
    let mut seen: HashSet<String> = HashSet::new();
    // Owned here so that aborting the main task aborts every run.
    let mut runs = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            ev = events.next() => {
                let Some((kind, Ok(obj))) = ev else {
                    if ev.is_none() { return; }
                    continue;
                };
                let Ok(v) = serde_json::to_value(&obj) else { continue };
                if kind == "Pod" {
                    if let Some(release) = job::release_deleted_pod(&client, &cfg, &v) {
                        runs.spawn(release);
                    }
                    continue;
                }
                let uid = kit::str_at(&v, "/metadata/uid").to_string();
                if uid.is_empty() || seen.contains(&uid) || finished_already(kind, &v) {
                    seen.insert(uid);
                    continue;
                }
                seen.insert(uid);
                let name = kit::str_at(&v, "/metadata/name").to_string();
                let chosen = scenarios.lock().ok().and_then(|m| m.get(&name).cloned());
                let sc = chosen.or_else(|| scenario::from_object(&v)).unwrap_or(Scenario::Success);
                started.fetch_add(1, Ordering::SeqCst);
                let (client, cfg, finished) = (client.clone(), cfg.clone(), finished.clone());
                runs.spawn(async move {
                    // A run whose object was deleted just stops; other
                    // errors end the run too (the test sees it stuck).
                    let _ = match kind {
                        "PipelineRun" => tekton::run(client, &cfg, v, sc).await,
                        _ => job::run(client, &cfg, v, sc).await,
                    };
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
            Some(_) = runs.join_next(), if !runs.is_empty() => {}
        }
    }
}
