//! Shared setup of the controller integration tests: the API emulator, the
//! execution simulator, the shipped rules with shortened durations, and the
//! controller itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{json, Value};
use wfe_engine::api::WorkflowExecution;
use wfe_engine::controller::{
    spawn_controller, AuditSink, ControllerConfig, ControllerHandle, ControllerOptions,
    InMemoryAuditSink, Readiness,
};
use wfe_engine::execute::{lock_name, pipeline_run_resource, ExecutionEngine};

use crate::simulator::{SimConfig, Simulator};
use crate::{Emulator, EmulatorBuilder, Verb};

pub const EXEC_NS: &str = "kubernaut-workflows";
pub const NS: &str = "team-a";

/// Durations of the test rules (the shipped ones are minutes).
#[derive(Clone, Debug)]
pub struct RuleTimes {
    pub cooldown: &'static str,
    pub backoff_base: &'static str,
    pub backoff_max: &'static str,
    /// Further `(from, to)` text replacements in `history.yaml`.
    pub history_edits: Vec<(&'static str, &'static str)>,
}

impl Default for RuleTimes {
    fn default() -> Self {
        RuleTimes {
            cooldown: "2s",
            backoff_base: "1s",
            backoff_max: "4s",
            history_edits: Vec::new(),
        }
    }
}

/// Copy `rules/` (without its rule tests) into `dir` with shorter durations.
pub fn test_rules(dir: &Path, times: &RuleTimes) -> PathBuf {
    let src = crate::repo_root().join("rules");
    for entry in std::fs::read_dir(&src).expect("rules dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".test.yaml") {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).expect("read rule file");
        if name == "history.yaml" {
            text = text
                .replace("period: 5m", &format!("period: {}", times.cooldown))
                .replace("base: 1m", &format!("base: {}", times.backoff_base))
                .replace("max: 10m", &format!("max: {}", times.backoff_max));
            for (from, to) in &times.history_edits {
                assert!(text.contains(from), "history.yaml has no {from:?}");
                text = text.replace(from, to);
            }
        }
        std::fs::write(dir.join(&name), text).expect("write rule file");
    }
    dir.to_path_buf()
}

pub struct Options {
    pub times: RuleTimes,
    pub config: ControllerConfig,
    pub sim: SimConfig,
    /// Replaces the harness's `InMemoryAuditSink` as the controller's sink.
    pub audit: Option<Arc<dyn AuditSink>>,
    /// The emulator: `realistic()` (asynchronous GC, namespaces that must
    /// exist, validation and admission) unless a test says otherwise.
    pub emulator: EmulatorBuilder,
    /// Create the execution namespace at the start (default true).
    pub execution_namespace: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            times: RuleTimes::default(),
            config: ControllerConfig {
                execution_namespace: EXEC_NS.into(),
                ..Default::default()
            },
            sim: SimConfig::default(),
            audit: None,
            emulator: Emulator::builder().realistic(),
            execution_namespace: true,
        }
    }
}

pub struct Harness {
    pub emu: Emulator,
    pub sim: Simulator,
    pub controller: Option<ControllerHandle>,
    pub audit: Arc<InMemoryAuditSink>,
    pub rules: Arc<ArcSwap<wfe_engine::rules::RuleSet>>,
    pub config: ControllerConfig,
    pub audit_override: Option<Arc<dyn AuditSink>>,
    /// What the controller reports to `/readyz`.
    pub readiness: Arc<Readiness>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Harness {
        init_tracing();
        let mut builder = opts.emulator.namespace(NS).namespace("team-b");
        if opts.execution_namespace {
            builder = builder.namespace(EXEC_NS);
        }
        let emu = builder.start().await;
        let sim = Simulator::start_with(emu.client(), opts.sim);
        let dir = tempfile::tempdir().expect("tempdir");
        test_rules(dir.path(), &opts.times);
        let set = wfe_engine::rules::load_dir(dir.path()).expect("test rules load");
        let rules = Arc::new(ArcSwap::from_pointee(set));
        let audit = Arc::new(InMemoryAuditSink::default());
        let mut h = Harness {
            emu,
            sim,
            controller: None,
            audit,
            rules,
            config: opts.config,
            audit_override: opts.audit,
            readiness: Arc::default(),
            _dir: dir,
        };
        h.start_controller().await;
        h
    }

    pub async fn start_controller(&mut self) {
        let handle = self
            .try_start_controller()
            .await
            .expect("controller starts");
        self.controller = Some(handle);
    }

    /// Start the controller, retrying while the API fails (injected faults
    /// can hit the discovery requests of the start).
    pub async fn start_controller_retrying(&mut self, timeout: Duration) {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            match self.try_start_controller().await {
                Ok(handle) => {
                    self.controller = Some(handle);
                    return;
                }
                Err(e) if tokio::time::Instant::now() < end => {
                    println!("controller start failed, retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("controller did not start in {timeout:?}: {e}"),
            }
        }
    }

    async fn try_start_controller(
        &self,
    ) -> Result<ControllerHandle, wfe_engine::controller::ControllerError> {
        let audit: Arc<dyn AuditSink> = match &self.audit_override {
            Some(a) => a.clone(),
            None => self.audit.clone(),
        };
        let options = ControllerOptions {
            audit,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            readiness: self.readiness.clone(),
            ..Default::default()
        };
        spawn_controller(
            self.emu.client(),
            self.config.clone(),
            self.rules.clone(),
            options,
        )
        .await
    }

    /// Kill the controller task at once, as a crash would.
    pub fn kill_controller(&mut self) {
        if let Some(c) = self.controller.take() {
            c.abort();
        }
    }

    pub fn client(&self) -> Client {
        self.emu.client()
    }

    pub fn wfes(&self, ns: &str) -> Api<WorkflowExecution> {
        Api::namespaced(self.client(), ns)
    }

    pub fn executions(&self, engine: ExecutionEngine) -> Api<DynamicObject> {
        Api::namespaced_with(self.client(), EXEC_NS, &engine.api_resource())
    }

    pub fn pipeline_runs(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client(), EXEC_NS, &pipeline_run_resource())
    }

    pub async fn create(&self, ns: &str, w: Value) -> WorkflowExecution {
        let w: WorkflowExecution = serde_json::from_value(w).expect("wfe json");
        self.wfes(ns)
            .create(&PostParams::default(), &w)
            .await
            .expect("create wfe")
    }

    pub async fn get(&self, ns: &str, name: &str) -> WorkflowExecution {
        self.wfes(ns).get(name).await.expect("get wfe")
    }

    /// Wait until the WFE reaches `phase` (and return it).
    pub async fn wait_phase(
        &self,
        ns: &str,
        name: &str,
        phase: &str,
        timeout: Duration,
    ) -> WorkflowExecution {
        let api = self.wfes(ns);
        let end = tokio::time::Instant::now() + timeout;
        let mut last = None;
        while tokio::time::Instant::now() < end {
            if let Ok(w) = api.get(name).await {
                if phase_of(&w) == phase {
                    return w;
                }
                last = Some(w);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "{ns}/{name} did not reach {phase} in {timeout:?}; last: {}",
            serde_json::to_string_pretty(&last.map(|w| w.status)).unwrap_or_default()
        );
    }

    /// Events (events.k8s.io) about one WFE, as (reason, note), oldest first.
    pub async fn events(&self, ns: &str, name: &str) -> Vec<(String, String)> {
        let api: Api<Event> = Api::namespaced(self.client(), ns);
        let mut list: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect();
        list.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
        list.into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect()
    }

    pub async fn event_reasons(&self, ns: &str, name: &str) -> Vec<String> {
        self.events(ns, name)
            .await
            .into_iter()
            .map(|(r, _)| r)
            .collect()
    }

    /// Successful controller writes on WFEs and execution objects (creates
    /// and deletes only: the simulator patches execution status itself).
    pub fn controller_writes(&self) -> usize {
        self.emu.log().count(|e| {
            e.verb.is_write()
                && (200..300).contains(&e.status)
                && ((e.kind == "WorkflowExecution" && e.verb != Verb::Create)
                    || ((e.kind == "PipelineRun" || e.kind == "Job")
                        && matches!(e.verb, Verb::Create | Verb::Delete)))
        })
    }

    /// The controller writes, for diagnostics.
    pub fn dump_writes(&self) {
        for e in self.emu.log().entries() {
            if e.verb.is_write()
                && (e.kind == "WorkflowExecution" || e.kind == "PipelineRun" || e.kind == "Job")
            {
                println!(
                    "{:?} {} {:?} {:?} -> {}",
                    e.verb, e.kind, e.name, e.subresource, e.status
                );
            }
        }
    }

    pub fn creates_of(&self, kind: &str) -> usize {
        self.emu
            .log()
            .count(|e| e.verb == Verb::Create && e.kind == kind && (200..300).contains(&e.status))
    }

    pub async fn stop(mut self) {
        if let Some(c) = self.controller.take() {
            c.shutdown().await.expect("controller stops");
        }
    }
}

/// Test logs through the test writer, filtered by `RUST_LOG` (once per binary).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// An emulator serving the execution namespace and `NS`, with the execution
/// simulator playing Tekton and the Job controller against it.
pub async fn emulator_with_simulator() -> (Emulator, Simulator) {
    init_tracing();
    let emu = Emulator::builder()
        .realistic()
        .namespace(EXEC_NS)
        .namespace(NS)
        .start()
        .await;
    let sim = Simulator::start(emu.client());
    (emu, sim)
}

pub fn phase_of(w: &WorkflowExecution) -> String {
    w.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

pub fn reason_of(w: &WorkflowExecution) -> String {
    w.status
        .as_ref()
        .and_then(|s| s.failure_details.as_ref())
        .map(|d| d.reason.clone())
        .unwrap_or_default()
}

/// A WFE document; `scenario` selects the simulator's outcome.
pub fn wfe(name: &str, target: &str, engine: &str, scenario: Option<&str>) -> Value {
    wfe_of(NS, name, target, engine, scenario)
}

/// The same WFE with `metadata.namespace` set to `namespace` (and its
/// RemediationRequest there too), for clients that create it as it is.
pub fn wfe_in(
    namespace: &str,
    name: &str,
    target: &str,
    engine: &str,
    scenario: Option<&str>,
) -> Value {
    let mut w = wfe_of(namespace, name, target, engine, scenario);
    w["metadata"]["namespace"] = json!(namespace);
    w
}

fn wfe_of(
    rr_namespace: &str,
    name: &str,
    target: &str,
    engine: &str,
    scenario: Option<&str>,
) -> Value {
    let mut params = serde_json::Map::new();
    params.insert("REPLICAS".into(), json!("3"));
    if let Some(s) = scenario {
        params.insert("SIM_SCENARIO".into(), json!(s));
    }
    json!({
        "apiVersion": "kubernaut.ai/v1alpha1",
        "kind": "WorkflowExecution",
        "metadata": {"name": name},
        "spec": {
            "remediationRequestRef": {"name": format!("rr-{name}"), "kind": "RemediationRequest", "namespace": rr_namespace},
            "workflowRef": {
                "workflowId": "wf-restart", "workflowName": "restart", "actionType": "RestartDeployment",
                "version": "1.0.0", "executionBundle": "quay.io/kubernaut/restart@sha256:abc",
                "executionEngine": engine
            },
            "targetResource": target,
            "parameters": Value::Object(params),
        }
    })
}

pub fn lock(target: &str) -> String {
    lock_name(target)
}

pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < end {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

pub fn name_of(o: &DynamicObject) -> String {
    o.name_any()
}
