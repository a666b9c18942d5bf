//! Shadow evaluation of a candidate rule set (issue 12, item 2), against the
//! API emulator with the execution simulator: a candidate that classifies a
//! failure differently is counted, listed and logged, while the WFE status
//! is the active set's and the controller writes exactly what it writes
//! without a shadow; a refused candidate is reported on its ConfigMap and
//! never evaluated, and the last good one stays; without a shadow there is
//! no extra decision; and `wfe-engine run --shadow-rules-configmap` serves
//! it all at `/rules/shadow`, `/metrics` and `/rules`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::atomic_writer;
use support::bin;
use support::harness;
use support::rules_configmap::{
    self, apply_configmap, events_about, note, reason, revision_of, shipped,
};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use atomic_writer::Payload;
use harness::{eventually, phase_of, reason_of, wfe, EXEC_NS, NS};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::{json, Value};
use support::simulator::Simulator;
use support::{Emulator, Verb};
use wfe_engine::api::WorkflowExecution;
use wfe_engine::controller::{
    spawn_controller, ControllerConfig, ControllerHandle, ControllerOptions, Shadow,
};
use wfe_engine::engine::DecisionDiff;
use wfe_engine::reload::{ConfigMapSource, ReloadOptions, Reloader, RulesSource, ShadowHandle};
use wfe_engine::rules::load_dir;
use wfe_engine::telemetry::Metrics;

const T: Duration = Duration::from_secs(15);
/// Where the candidate ConfigMap lives (the engine's namespace).
const RULES_NS: &str = "wfe-engine";
const CANDIDATE: &str = "wfe-engine-rules-candidate";

fn edit(payload: &Payload, file: &str, f: impl FnOnce(String) -> String) -> Payload {
    let mut p = payload.clone();
    let text = String::from_utf8(p[file].clone()).unwrap();
    let edited = f(text.clone());
    assert_ne!(edited, text, "the edit of {file} changed nothing");
    p.insert(file.into(), edited.into_bytes());
    p
}

/// The shipped rules with the classification of `docs/change-a-rule.md`:
/// exit code 42 is a `ConfigurationError`. Its own rule tests still pass.
fn exit_42_is_configuration_error() -> Payload {
    let anchor = "    # 8. A task or container ran and failed.\n";
    edit(&shipped(), "failures.yaml", |t| {
        t.replace(
            anchor,
            &format!(
                "    - name: exit-42-bad-input\n      reason: ConfigurationError\n      exitCode: true\n      when:\n        execution.exitCode: 42\n\n{anchor}"
            ),
        )
    })
}

/// A set that does not load (a YAML syntax error). An existing key is
/// edited: the emulator's server-side apply keeps keys missing from a later
/// apply (tests/support/README.md), so an added one could not be taken back.
fn broken(base: &Payload) -> Payload {
    edit(base, "history.yaml", |t| {
        t.replacen("period: 5m", "period: [5m", 1)
    })
}

/// Valid rules whose own rule tests fail (a renamed reason).
fn breaking_its_tests(base: &Payload) -> Payload {
    edit(base, "failures.yaml", |t| {
        t.replace("reason: TaskFailed", "reason: TaskFault")
    })
}

/// `kubectl apply --server-side` of the candidate ConfigMap.
async fn apply_candidate(client: &Client, payload: &Payload) {
    apply_configmap(client, RULES_NS, CANDIDATE, payload)
        .await
        .expect("server-side apply");
}

async fn candidate_events(client: &Client) -> Vec<Event> {
    events_about(client, RULES_NS, CANDIDATE).await
}

async fn wait_event(client: &Client, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    rules_configmap::wait_for_event(client, (RULES_NS, CANDIDATE), what, T, pred).await
}

/// The sum of every series of `name` in a Prometheus text page.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

/// The controller as `run` wires it, with the shipped rules active and,
/// when `shadow`, the candidate ConfigMap kept by a shadow reloader.
struct Engine {
    emu: Emulator,
    _sim: Simulator,
    metrics: Arc<Metrics>,
    controller: ControllerHandle,
    shadow: Option<(Arc<Shadow>, ShadowHandle)>,
    active_revision: String,
}

impl Engine {
    async fn start(candidate: Option<&Payload>) -> Engine {
        harness::init_tracing();
        let emu = Emulator::builder()
            .namespace(EXEC_NS)
            .namespace(NS)
            .namespace(RULES_NS)
            .start()
            .await;
        let sim = Simulator::start(emu.client());
        let client = emu.client();
        let set = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap();
        let active_revision = set.revision.clone();
        let metrics = Arc::new(Metrics::new().unwrap());
        let mut shadow = None;
        if let Some(payload) = candidate {
            apply_candidate(&client, payload).await;
            let s = Arc::new(Shadow::default());
            let source = RulesSource::ConfigMap(ConfigMapSource {
                client: client.clone(),
                target: format!("{RULES_NS}/{CANDIDATE}").parse().unwrap(),
                instance: "replica-a".into(),
            });
            let handle =
                Reloader::spawn_shadow(source, ReloadOptions::default(), s.candidate_slot());
            assert!(handle.settled(T).await, "the candidate was never looked at");
            shadow = Some((s, handle));
            // What the test wrote itself is not the engine's.
            emu.log().clear();
        }
        let options = ControllerOptions {
            hooks: metrics.hooks(),
            shadow: shadow.as_ref().map(|(s, _)| s.clone()),
            ..Default::default()
        };
        let config = ControllerConfig {
            execution_namespace: EXEC_NS.into(),
            ..Default::default()
        };
        let controller = spawn_controller(
            client,
            config,
            Arc::new(ArcSwap::from_pointee(set)),
            options,
        )
        .await
        .expect("controller starts");
        Engine {
            emu,
            _sim: sim,
            metrics,
            controller,
            shadow,
            active_revision,
        }
    }

    fn client(&self) -> Client {
        self.emu.client()
    }

    async fn create(&self, name: &str, scenario: &str) {
        let w: WorkflowExecution = serde_json::from_value(wfe(
            name,
            &format!("{NS}/Deployment/{name}"),
            "tekton",
            Some(scenario),
        ))
        .unwrap();
        Api::<WorkflowExecution>::namespaced(self.client(), NS)
            .create(&PostParams::default(), &w)
            .await
            .expect("create wfe");
    }

    async fn wait_failed(&self, name: &str) -> WorkflowExecution {
        let api = Api::<WorkflowExecution>::namespaced(self.client(), NS);
        let end = tokio::time::Instant::now() + T;
        loop {
            let w = api.get(name).await.expect("get wfe");
            if phase_of(&w) == "Failed" {
                return w;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "{name} not Failed: {:?}",
                w.status
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn recent(&self) -> Vec<DecisionDiff> {
        self.shadow
            .as_ref()
            .map(|(s, _)| s.recent())
            .unwrap_or_default()
    }

    /// Every successful write the controller made about WFEs: WFE patches
    /// and status writes, execution creates and deletes, Events in the WFE
    /// namespace. A name is kept only where it does not depend on timing.
    fn wfe_writes(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for e in self.emu.log().entries() {
            let ok = e.verb.is_write() && (200..300).contains(&e.status);
            let ours = (e.kind == "WorkflowExecution" && e.verb != Verb::Create)
                || (e.kind == "PipelineRun" && matches!(e.verb, Verb::Create | Verb::Delete))
                || (e.kind == "Event" && e.namespace.as_deref() == Some(NS));
            if ok && ours {
                let name = if e.kind == "Event" { None } else { e.name };
                let key = format!("{:?} {} {:?} {:?}", e.verb, e.kind, name, e.subresource);
                *out.entry(key).or_default() += 1;
            }
        }
        out
    }

    /// Writes in the rules namespace, as `verb kind/group`.
    fn rules_namespace_writes(&self) -> Vec<String> {
        self.emu
            .log()
            .entries()
            .into_iter()
            .filter(|e| e.verb.is_write() && e.namespace.as_deref() == Some(RULES_NS))
            .map(|e| format!("{:?} {}/{} {:?}", e.verb, e.kind, e.group, e.name))
            .collect()
    }

    async fn stop(self) {
        self.controller.shutdown().await.expect("controller stops");
        if let Some((_, h)) = &self.shadow {
            h.shutdown().await;
        }
    }
}

/// A WFE whose workflow exits 42 runs to `Failed` under `engine`; returns
/// it once the controller has settled.
async fn run_exit_42(engine: &Engine, name: &str) -> WorkflowExecution {
    engine.create(name, "failed:42").await;
    let w = engine.wait_failed(name).await;
    // The Events of the last transition go out after the status write.
    tokio::time::sleep(Duration::from_millis(500)).await;
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_that_classifies_differently_is_counted_listed_and_never_applied() {
    let candidate = exit_42_is_configuration_error();
    let candidate_revision = revision_of(&candidate);

    let engine = Engine::start(Some(&candidate)).await;
    let (_, handle) = engine.shadow.as_ref().unwrap();
    assert_eq!(
        handle.candidate().map(|c| c.revision.clone()),
        Some(candidate_revision.clone())
    );
    let applied = wait_event(&engine.client(), "ShadowRulesApplied", |e| {
        reason(e) == "ShadowRulesApplied"
    })
    .await;
    assert_eq!(
        note(&applied),
        format!(
            "candidate rules revision {candidate_revision} is evaluated in shadow, never applied ({} files)",
            candidate.len()
        )
    );
    let w = run_exit_42(&engine, "exit-42").await;

    // The status is the active set's.
    assert_eq!(reason_of(&w), "TaskFailed");
    let status = w.status.as_ref().unwrap();
    let rules = serde_json::to_value(status).unwrap();
    assert_eq!(
        rules.pointer("/rules/revision").and_then(Value::as_str),
        Some(engine.active_revision.as_str()),
        "{rules}"
    );

    // The disagreement, as `diff -o json` prints it.
    let recent = engine.recent();
    let d = recent
        .iter()
        .find(|d| d.changes.iter().any(|c| c.field.name() == "reason"))
        .unwrap_or_else(|| panic!("no reason disagreement in {recent:#?}"));
    assert_eq!(d.wfe, format!("{NS}/exit-42"));
    assert_eq!(d.source, format!("WorkflowExecution/{NS}/exit-42"));
    assert_eq!(d.base_revision, engine.active_revision);
    assert_eq!(d.candidate_revision, candidate_revision);
    let primary = d.primary.as_deref().unwrap_or("");
    assert!(
        primary.starts_with(&format!("PipelineRun/{EXEC_NS}/")),
        "{primary}"
    );
    let change = |field: &str| d.changes.iter().find(|c| c.field.name() == field);
    let r = change("reason").unwrap();
    assert_eq!(
        (r.base.as_str(), r.candidate.as_str()),
        (Some("TaskFailed"), Some("ConfigurationError"))
    );
    assert_eq!(
        change("classificationRule").map(|c| c.candidate.clone()),
        Some(json!("failures.yaml#exit-42-bad-input"))
    );
    let line = serde_json::to_value(d).unwrap();
    let mut keys: Vec<&String> = line.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "baseRevision",
            "candidateRevision",
            "changes",
            "now",
            "primary",
            "source",
            "wfe"
        ]
    );

    // One increment per differing field; one extra decision per decision.
    let text = engine.metrics.render();
    assert!(
        metric(
            &text,
            r#"wfe_rules_shadow_disagreements_total{field="reason"}"#
        ) >= 1.0,
        "{text}"
    );
    let differing = metric(
        &text,
        r#"wfe_rules_shadow_decisions_total{result="differ"}"#,
    );
    assert!(differing >= 1.0, "{text}");
    assert_eq!(
        metric_sum(&text, "wfe_rules_shadow_decisions_total"),
        metric_sum(&text, "wfe_decisions_total"),
        "every decision, and only those, is made again in shadow:\n{text}"
    );
    assert!(metric_sum(&text, "wfe_rules_shadow_disagreements_total") >= differing);

    // Nothing was written for the candidate but its own Events.
    for write in engine.rules_namespace_writes() {
        assert!(
            write.starts_with("Create Event/events.k8s.io"),
            "shadow wrote {write}"
        );
    }
    let with_shadow = engine.wfe_writes();
    engine.stop().await;

    // The same run without a shadow: the same writes, and no extra decision.
    let engine = Engine::start(None).await;
    let w = run_exit_42(&engine, "exit-42").await;
    assert_eq!(reason_of(&w), "TaskFailed");
    let text = engine.metrics.render();
    assert!(metric_sum(&text, "wfe_decisions_total") >= 2.0, "{text}");
    assert_eq!(
        metric_sum(&text, "wfe_rules_shadow_decisions_total"),
        0.0,
        "no shadow configured: no extra decision\n{text}"
    );
    assert!(engine.rules_namespace_writes().is_empty());
    let without_shadow = engine.wfe_writes();
    engine.stop().await;
    // The run did write (status twice, the PipelineRun, Events), so the
    // comparison means something.
    assert!(
        with_shadow.keys().any(|k| k.contains("Some(\"status\")"))
            && with_shadow
                .keys()
                .any(|k| k.starts_with("Create PipelineRun")),
        "{with_shadow:#?}"
    );
    assert_eq!(
        with_shadow, without_shadow,
        "the shadow changed what was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_candidate_is_reported_never_evaluated_and_the_last_good_one_stays() {
    let good = exit_42_is_configuration_error();
    let good_revision = revision_of(&good);

    // Refused from the start: reported on the ConfigMap and in /rules, and
    // no decision is made in shadow.
    let engine = Engine::start(Some(&broken(&good))).await;
    let client = engine.client();
    let (_, handle) = engine.shadow.as_ref().unwrap();
    assert!(handle.candidate().is_none());
    let status = handle.status();
    let error = status.source.last_error.expect("lastError");
    assert!(
        error.locations.iter().any(|l| l.file == "history.yaml"),
        "{error:?}"
    );
    assert!(status.candidate.is_none());
    assert_eq!(status.source.reloads.failure, 1);
    let rejected = wait_event(&client, "ShadowRulesRejected", |e| {
        reason(e) == "ShadowRulesRejected"
    })
    .await;
    assert_eq!(rejected.type_.as_deref(), Some("Warning"));
    let text = note(&rejected);
    assert!(
        text.starts_with("candidate rules refused; no candidate is evaluated in shadow:"),
        "{text}"
    );
    for l in error.locations.iter().filter(|l| l.column > 0) {
        let at = format!("\n{}:{}:{}", l.file, l.line, l.column);
        assert!(text.contains(&at), "{at} missing from {text}");
    }
    let w = run_exit_42(&engine, "while-refused").await;
    assert_eq!(reason_of(&w), "TaskFailed");
    let text = engine.metrics.render();
    assert!(metric_sum(&text, "wfe_decisions_total") >= 2.0);
    assert_eq!(
        metric_sum(&text, "wfe_rules_shadow_decisions_total"),
        0.0,
        "{text}"
    );
    assert!(engine.recent().is_empty());

    // A good candidate is taken...
    apply_candidate(&client, &good).await;
    eventually("the good candidate", T, || async {
        handle.candidate().map(|c| c.revision.clone()) == Some(good_revision.clone())
    })
    .await;
    assert!(handle.status().last_error.is_none());

    // ...and a later one that fails its own rule tests is refused, keeping it.
    apply_candidate(&client, &breaking_its_tests(&good)).await;
    eventually("the second refusal", T, || async {
        handle.status().reloads.failure == 2
    })
    .await;
    let kept = wait_event(&client, "ShadowRulesRejected (rule tests)", |e| {
        note(e).contains(&format!(
            "candidate revision {good_revision} stays in shadow"
        ))
    })
    .await;
    assert!(note(&kept).contains(".test.yaml:"), "{}", note(&kept));
    let status = handle.status();
    assert_eq!(
        status.candidate.map(|c| c.revision),
        Some(good_revision.clone())
    );
    assert!(!status
        .source
        .last_error
        .expect("lastError")
        .locations
        .is_empty());

    // The last good candidate is the one evaluated.
    let w = run_exit_42(&engine, "after-refusal").await;
    assert_eq!(reason_of(&w), "TaskFailed");
    let recent = engine.recent();
    let d = recent
        .iter()
        .find(|d| d.wfe == format!("{NS}/after-refusal"))
        .unwrap_or_else(|| panic!("{recent:#?}"));
    assert_eq!(d.candidate_revision, good_revision);
    assert!(recent
        .iter()
        .all(|d| d.wfe != format!("{NS}/while-refused")));
    // Not one Event reason of the active set's for the candidate.
    for e in candidate_events(&client).await {
        assert!(reason(&e).starts_with("ShadowRules"), "{e:?}");
    }
    engine.stop().await;
}

async fn get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    bin::http_get_async(addr, path).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_the_disagreements_at_rules_shadow_and_in_the_metrics() {
    let emu = Emulator::builder()
        .namespace(EXEC_NS)
        .namespace(NS)
        .namespace(RULES_NS)
        .start()
        .await;
    let _sim = Simulator::start(emu.client());
    let client = emu.client();
    let candidate = exit_42_is_configuration_error();
    let candidate_revision = revision_of(&candidate);
    apply_candidate(&client, &candidate).await;
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = emu.write_kubeconfig(tmp.path()).unwrap();
    let rules = bin::shipped_rules(tmp.path());
    let addr = bin::free_addr();
    let addr_arg = addr.to_string();
    let shadow_arg = format!("{RULES_NS}/{CANDIDATE}");
    let args: Vec<&std::ffi::OsStr> = vec![
        "run".as_ref(),
        "--kubeconfig".as_ref(),
        kubeconfig.as_os_str(),
        "--rules".as_ref(),
        rules.as_os_str(),
        "--shadow-rules-configmap".as_ref(),
        shadow_arg.as_ref(),
        "--execution-namespace".as_ref(),
        EXEC_NS.as_ref(),
        "--http-addr".as_ref(),
        addr_arg.as_ref(),
        "--log-format".as_ref(),
        "json".as_ref(),
    ];
    let log = tmp.path().join("wfe-engine.log");
    let mut p = bin::Process::spawn(&args, &log);
    let end = tokio::time::Instant::now() + T;
    let status: Value = loop {
        if let Some((200, body)) = get(addr, "/rules").await {
            break serde_json::from_str(&body).unwrap();
        }
        assert!(p.exited().is_none(), "exited early:\n{}", p.output());
        assert!(
            tokio::time::Instant::now() < end,
            "no /rules:\n{}",
            p.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // `run` waited for the candidate before it started reconciling.
    assert_eq!(
        status["shadow"]["candidate"]["revision"], candidate_revision,
        "{status}"
    );
    assert_eq!(status["shadow"]["configMap"]["name"], CANDIDATE);
    assert!(status["shadow"]["lastError"].is_null());
    assert_ne!(status["active"]["revision"], candidate_revision);

    let w: WorkflowExecution = serde_json::from_value(wfe(
        "via-run",
        &format!("{NS}/Deployment/via-run"),
        "tekton",
        Some("failed:42"),
    ))
    .unwrap();
    Api::<WorkflowExecution>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &w)
        .await
        .unwrap();
    let end = tokio::time::Instant::now() + T;
    let records: Vec<Value> = loop {
        if let Some((200, body)) = get(addr, "/rules/shadow").await {
            let v: Vec<Value> = serde_json::from_str(&body).unwrap();
            if v.iter().any(|r| {
                r["changes"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["field"] == "reason"))
            }) {
                break v;
            }
        }
        assert!(
            tokio::time::Instant::now() < end,
            "no disagreement at /rules/shadow:\n{}",
            p.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let r = &records[0];
    assert_eq!(r["wfe"], format!("{NS}/via-run"));
    assert_eq!(r["candidateRevision"], candidate_revision);
    assert_eq!(r["baseRevision"], status["active"]["revision"]);
    assert!(r["now"].as_str().is_some_and(|n| n.ends_with('Z')), "{r}");

    let (_, metrics) = get(addr, "/metrics").await.unwrap();
    assert!(
        metric(
            &metrics,
            r#"wfe_rules_shadow_disagreements_total{field="reason"}"#
        ) >= 1.0,
        "{metrics}"
    );
    let api = Api::<WorkflowExecution>::namespaced(client.clone(), NS);
    assert_eq!(reason_of(&api.get("via-run").await.unwrap()), "TaskFailed");

    // The disagreement is in the log, at info, with the WFE and both sides.
    let end = tokio::time::Instant::now() + T;
    let line = loop {
        let out = p.output();
        if let Some(l) = out
            .lines()
            .find(|l| l.contains("shadow rules decide differently") && l.contains("via-run"))
        {
            break l.to_string();
        }
        assert!(tokio::time::Instant::now() < end, "no log line:\n{out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let entry: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["level"], "INFO", "{entry}");
    // JSON logs flatten the fields into the line.
    let fields = &entry;
    assert_eq!(fields["wfe"], format!("{NS}/via-run"), "{entry}");
    assert_eq!(fields["base_reason"], "TaskFailed", "{entry}");
    assert_eq!(fields["candidate_reason"], "ConfigurationError", "{entry}");
    assert_eq!(fields["candidate_revision"], candidate_revision, "{entry}");
    p.terminate_and_wait(Duration::from_secs(10));
}

#[test]
fn run_refuses_a_missing_shadow_directory_two_shadow_sources_and_the_active_set_as_candidate() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin::path())
            .arg("run")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&[
        "--rules",
        "rules",
        "--shadow-rules",
        "/nonexistent/candidate",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("shadow rules directory /nonexistent/candidate does not exist"),
        "{err}"
    );

    let (code, err) = run(&[
        "--rules",
        "rules",
        "--shadow-rules",
        "rules",
        "--shadow-rules-configmap",
        "ns/c",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");

    let (code, err) = run(&["--rules", "rules", "--shadow-rules", "./rules/"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is the active rules directory"), "{err}");

    let (code, err) = run(&[
        "--rules-configmap",
        "ns/rules",
        "--shadow-rules-configmap",
        "ns/rules",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is the active rules ConfigMap"), "{err}");

    let (code, err) = run(&["--rules", "rules", "--shadow-rules-configmap", "candidate"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not NAMESPACE/NAME"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_directory_goes_through_the_same_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("candidate");
    let good = exit_42_is_configuration_error();
    let mut volume = atomic_writer::ConfigMapVolume::create(&dir, &good).unwrap();
    let shadow = Shadow::default();
    let options = ReloadOptions {
        debounce: Duration::from_millis(30),
        ..ReloadOptions::default()
    };
    let handle = Reloader::spawn_shadow(
        RulesSource::Directory(dir.clone()),
        options,
        shadow.candidate_slot(),
    );
    assert!(handle.settled(T).await);
    let good_revision = revision_of(&good);
    assert_eq!(
        handle.candidate().map(|c| c.revision.clone()),
        Some(good_revision.clone())
    );
    let status = handle.status();
    assert_eq!(status.directory.as_deref(), Some(dir.to_str().unwrap()));
    assert!(status.config_map.is_none());
    assert!(status.rule_test_gate);

    // A kubelet-style swap to a set whose own tests fail: refused, kept.
    volume.write(&breaking_its_tests(&good)).unwrap();
    eventually("the refusal", T, || async {
        handle.status().reloads.failure == 1
    })
    .await;
    let status = handle.status();
    assert_eq!(status.candidate.map(|c| c.revision), Some(good_revision));
    assert!(status
        .source
        .last_error
        .expect("lastError")
        .locations
        .iter()
        .any(|l| l.file.ends_with(".test.yaml")));
    handle.shutdown().await;
}
