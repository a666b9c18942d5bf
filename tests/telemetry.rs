//! `wfe-engine run` end to end against the API emulator (through its
//! kubeconfig, as a user would run it): `/metrics` carries kubernaut's two
//! reconciler metrics with their labels and buckets and the engine's own,
//! no label value names a WFE, `/readyz` follows the caches and the rules,
//! a standby replica is ready too, and shutdown flushes the audit file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::harness;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Parser;
use harness::{
    emulator_with_simulator, eventually, phase_of, test_rules, wfe, RuleTimes, EXEC_NS, NS,
};
use kube::api::{Api, PostParams};
use kube::Client;
use support::simulator::Simulator;
use support::Emulator;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wfe_engine::api::WorkflowExecution;
use wfe_engine::cli::run::{run_until, RunArgs};

const T: Duration = Duration::from_secs(20);

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// A plain HTTP/1.0 GET: (status, body).
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    support::bin::http_get_async(addr, path).await.ok()
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

fn start(dir: &Path, kubeconfig: &Path, extra: &[&str]) -> Running {
    let addr = free_addr();
    let rules = dir.join("rules");
    let mut argv: Vec<String> = vec![
        "wfe-engine".into(),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--rules={}", rules.display()),
        format!("--http-addr={addr}"),
        format!("--execution-namespace={EXEC_NS}"),
        "--log-format=text".into(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    let cli = Cli::try_parse_from(argv).expect("arguments parse");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_until(cli.run, async move {
        let _ = stopped.await;
    }));
    Running { addr, stop, task }
}

impl Running {
    async fn wait_ready(&self) {
        let addr = self.addr;
        let task = &self.task;
        eventually("/readyz 200", T, || async move {
            assert!(!task.is_finished(), "run ended before it was ready");
            matches!(get(addr, "/readyz").await, Some((200, _)))
        })
        .await;
    }

    async fn metrics(&self) -> String {
        let (status, body) = get(self.addr, "/metrics").await.expect("/metrics answers");
        assert_eq!(status, 200);
        body
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(T, self.task)
            .await
            .expect("run stops in time")
            .expect("task")
            .expect("run returns Ok");
    }
}

/// `name{labels} value` lines → (name, labels map, value).
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = value.parse().unwrap_or(f64::NAN);
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').expect("label pair");
            map.insert(k.to_string(), v.trim_matches('"').to_string());
        }
        out.push((name.to_string(), map, value));
    }
    out
}

fn value(
    samples: &[(String, BTreeMap<String, String>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .sum()
}

async fn create(client: &Client, name: &str, target: &str, engine: &str, scenario: Option<&str>) {
    let w: WorkflowExecution =
        serde_json::from_value(wfe(name, target, engine, scenario)).expect("wfe json");
    Api::<WorkflowExecution>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &w)
        .await
        .expect("create wfe");
}

async fn wait_phase(client: &Client, name: &str, phase: &str) {
    let api = Api::<WorkflowExecution>::namespaced(client.clone(), NS);
    eventually(&format!("{name} {phase}"), T, || async {
        api.get(name)
            .await
            .map(|w| phase_of(&w) == phase)
            .unwrap_or(false)
    })
    .await;
}

async fn setup() -> (Emulator, Simulator, tempfile::TempDir, std::path::PathBuf) {
    let (emu, sim) = emulator_with_simulator().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("rules")).expect("mkdir");
    test_rules(&dir.path().join("rules"), &RuleTimes::default());
    let kubeconfig = emu.write_kubeconfig(dir.path()).expect("kubeconfig");
    (emu, sim, dir, kubeconfig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_small_run_have_the_right_names_labels_and_buckets() {
    let (emu, _sim, dir, kubeconfig) = setup().await;
    let audit_file = dir.path().join("audit.jsonl");
    let run = start(
        dir.path(),
        &kubeconfig,
        &[&format!("--audit-file={}", audit_file.display())],
    );
    run.wait_ready().await;
    assert_eq!(get(run.addr, "/healthz").await.map(|r| r.0), Some(200));

    let client = emu.client();
    let names = [
        "ok-tekton",
        "ok-job",
        "fails-in-run",
        "bad-target",
        "cooled-down",
    ];
    create(&client, names[0], "team-a/Deployment/api", "tekton", None).await;
    create(&client, names[1], "team-a/Deployment/db", "job", None).await;
    create(
        &client,
        names[2],
        "team-a/Deployment/web",
        "tekton",
        Some("failed:3"),
    )
    .await;
    create(&client, names[3], "just-a-name", "tekton", None).await;
    wait_phase(&client, names[0], "Completed").await;
    wait_phase(&client, names[1], "Completed").await;
    wait_phase(&client, names[2], "Failed").await;
    wait_phase(&client, names[3], "Failed").await;
    // Same target as a run that just completed: held by the 2 s cooldown.
    create(&client, names[4], "team-a/Deployment/api", "tekton", None).await;
    wait_phase(&client, names[4], "Completed").await;

    let text = run.metrics().await;
    let s = samples(&text);

    // kubernaut's metrics: one per terminal transition, execution duration.
    let total = |o: &str| value(&s, "workflowexecution_reconciler_total", &[("outcome", o)]);
    assert_eq!(total("Completed"), 3.0, "{text}");
    assert_eq!(total("Failed"), 2.0, "{text}");
    let bucket = |o: &str, le: &str| {
        value(
            &s,
            "workflowexecution_reconciler_duration_seconds_bucket",
            &[("outcome", o), ("le", le)],
        )
    };
    let les: Vec<String> = s
        .iter()
        .filter(|(n, l, _)| {
            n == "workflowexecution_reconciler_duration_seconds_bucket"
                && l.get("outcome").map(String::as_str) == Some("Completed")
        })
        .map(|(_, l, _)| l["le"].clone())
        .collect();
    assert_eq!(les, ["5", "10", "20", "40", "80", "160", "320", "+Inf"]);
    // The simulated runs take milliseconds; the pre-execution failure is 0.
    assert_eq!(bucket("Completed", "5"), 3.0);
    assert_eq!(bucket("Failed", "5"), 2.0);
    assert_eq!(
        value(
            &s,
            "workflowexecution_reconciler_duration_seconds_count",
            &[("outcome", "Failed")]
        ),
        2.0
    );

    // The engine's metrics.
    assert!(value(&s, "wfe_reconcile_total", &[("result", "applied")]) >= 5.0);
    assert!(s
        .iter()
        .any(|(n, l, _)| n == "wfe_reconcile_errors_total" && l["kind"] == "conflict"));
    assert!(value(&s, "wfe_reconcile_duration_seconds_count", &[]) >= 5.0);
    assert!(
        value(
            &s,
            "wfe_decisions_total",
            &[("rule", "lifecycle.yaml#start")]
        ) >= 4.0,
        "{text}"
    );
    assert!(
        value(
            &s,
            "wfe_decisions_total",
            &[("rule", "lifecycle.yaml#cooldown")]
        ) >= 1.0,
        "{text}"
    );
    assert!(value(&s, "wfe_rule_evaluation_seconds_count", &[]) >= 5.0);
    assert_eq!(
        value(&s, "wfe_executions_created_total", &[("engine", "tekton")]),
        3.0
    );
    assert_eq!(
        value(&s, "wfe_executions_created_total", &[("engine", "job")]),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "wfe_api_writes_total",
            &[("verb", "create"), ("kind", "PipelineRun")]
        ),
        3.0
    );
    assert!(
        value(
            &s,
            "wfe_api_writes_total",
            &[("verb", "patch-status"), ("kind", "WorkflowExecution")]
        ) >= 10.0
    );
    assert!(
        value(&s, "wfe_holds_total", &[("reason", "CooldownActive")]) >= 1.0,
        "{text}"
    );
    assert_eq!(
        value(&s, "wfe_workflowexecutions_pending_oldest_seconds", &[]),
        0.0
    );
    assert!(text.contains("\nwfe_workflowexecutions_pending_oldest_seconds "));
    assert_eq!(value(&s, "wfe_leader", &[]), 1.0);
    assert!(text.contains("wfe_audit_records_dropped_total{reason=\"buffer_full\"} 0"));
    assert!(text.contains("wfe_audit_buffer_records"));
    assert!(text.contains("wfe_rules_last_reload_successful 1"));

    // Bounded labels: no WFE name or target anywhere in a label value, and
    // a handful of series per metric.
    let mut per_metric: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, labels, _) in &s {
        *per_metric.entry(name.as_str()).or_default() += 1;
        for v in labels.values() {
            for n in names {
                assert!(!v.contains(n), "{name} has a WFE name in {labels:?}");
            }
            assert!(
                !v.contains("team-a"),
                "{name} has a namespace/target in {labels:?}"
            );
        }
    }
    for (name, n) in per_metric {
        assert!(n <= 40, "{name} has {n} series");
    }

    // A Pending WFE ages in the gauge: one held by the 2 s cooldown of a
    // run on its target that has just completed.
    create(
        &client,
        "before-wait",
        "team-a/Deployment/w",
        "tekton",
        None,
    )
    .await;
    wait_phase(&client, "before-wait", "Completed").await;
    create(&client, "waits", "team-a/Deployment/w", "tekton", None).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let s = samples(&run.metrics().await);
    let age = value(&s, "wfe_workflowexecutions_pending_oldest_seconds", &[]);
    assert!((1.0..30.0).contains(&age), "pending age {age}");
    wait_phase(&client, "waits", "Completed").await;

    // Every watch gets 410 Gone and restarts (counted as each sees it).
    emu.force_gone();
    let addr = run.addr;
    eventually("watch restarts counted", T, || async move {
        let text = get(addr, "/metrics").await.map(|r| r.1).unwrap_or_default();
        value(&samples(&text), "wfe_watch_restarts_total", &[]) >= 2.0
    })
    .await;

    run.stop().await;
    // Shutdown flushed the audit file: one line per key, none twice.
    let text = std::fs::read_to_string(&audit_file).expect("audit file");
    let keys: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["idempotency_key"].as_str().expect("key").to_string()
        })
        .collect();
    let unique: HashSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "duplicate audit keys");
    // started + completed/failed for the five executions, failed for the
    // bad target.
    assert!(keys.len() >= 9, "{} audit records", keys.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_leader_election_both_replicas_are_ready_and_one_leads() {
    let (emu, _sim, dir, kubeconfig) = setup().await;
    let args = |id: &str| {
        vec![
            "--leader-election".to_string(),
            "--leader-election-namespace=kubernaut-workflows".to_string(),
            format!("--leader-election-identity={id}"),
        ]
    };
    let a_args = args("a");
    let a = start(
        dir.path(),
        &kubeconfig,
        &a_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    a.wait_ready().await;
    let b_args = args("b");
    let b = start(
        dir.path(),
        &kubeconfig,
        &b_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    b.wait_ready().await;

    let leader = |text: &str| value(&samples(text), "wfe_leader", &[]);
    assert_eq!(leader(&a.metrics().await), 1.0);
    assert_eq!(leader(&b.metrics().await), 0.0);
    // The standby exports no Pending age (it has no cache).
    assert!(!b
        .metrics()
        .await
        .contains("\nwfe_workflowexecutions_pending_oldest_seconds "));

    let client = emu.client();
    create(&client, "one", "team-a/Deployment/one", "tekton", None).await;
    wait_phase(&client, "one", "Completed").await;
    let writes = |text: &str| {
        value(
            &samples(text),
            "wfe_api_writes_total",
            &[("verb", "patch-status")],
        )
    };
    assert!(writes(&a.metrics().await) > 0.0);
    assert_eq!(writes(&b.metrics().await), 0.0);

    // The leader stops (SIGTERM): it releases the Lease, the standby leads
    // without waiting for the 15 s expiry.
    a.stop().await;
    let b_addr = b.addr;
    eventually("b leads", Duration::from_secs(8), || async move {
        let text = get(b_addr, "/metrics")
            .await
            .map(|r| r.1)
            .unwrap_or_default();
        value(&samples(&text), "wfe_leader", &[]) == 1.0
    })
    .await;
    b.wait_ready().await;
    create(&client, "two", "team-a/Deployment/two", "tekton", None).await;
    wait_phase(&client, "two", "Completed").await;
    b.stop().await;
}

#[tokio::test]
async fn bad_flags_are_refused_with_a_clear_error() {
    let err = match Cli::try_parse_from(["wfe-engine", "--log-format=xml"]) {
        Ok(_) => panic!("xml accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("json") && err.contains("text"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let cli = Cli::try_parse_from([
        "wfe-engine",
        "--rules=/nonexistent/rules",
        "--http-addr=127.0.0.1:0",
    ])
    .expect("parses");
    let err = run_until(cli.run, std::future::ready(()))
        .await
        .expect_err("no rules");
    assert!(err.to_string().contains("/nonexistent/rules"), "{err}");
    let both = Cli::try_parse_from([
        "wfe-engine".to_string(),
        format!("--rules={}/rules", env!("CARGO_MANIFEST_DIR")),
        "--http-addr=127.0.0.1:0".to_string(),
        format!("--audit-file={}/a", dir.path().display()),
        "--audit-url=http://127.0.0.1:1/x".to_string(),
    ])
    .expect("parses");
    let err = run_until(both.run, std::future::ready(()))
        .await
        .expect_err("two audit destinations");
    assert!(format!("{err:#}").contains("exclusive"), "{err:#}");
}
