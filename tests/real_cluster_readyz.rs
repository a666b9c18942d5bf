//! `wfe-engine run` (as a user runs it, through a kubeconfig) against a
//! cluster whose execution namespace does not exist: `/readyz` fails and
//! says why, WFEs are held, and both recover once the namespace is created.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::harness;

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use harness::{eventually, phase_of, test_rules, wfe, RuleTimes, EXEC_NS, NS};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use support::simulator::Simulator;
use support::Emulator;
use wfe_engine::api::WorkflowExecution;
use wfe_engine::cli::run::{run_until, RunArgs};

const T: Duration = Duration::from_secs(20);

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
}

async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    support::bin::http_get_async(addr, path).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_readyz_reports_a_missing_execution_namespace() {
    harness::init_tracing();
    let emu = Emulator::builder().realistic().namespace(NS).start().await;
    let _sim = Simulator::start(emu.client());
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("rules dir");
    test_rules(&rules, &RuleTimes::default());
    let kubeconfig = emu.write_kubeconfig(dir.path()).expect("kubeconfig");
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("addr");
    let cli = Cli::try_parse_from([
        "wfe-engine".to_string(),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--rules={}", rules.display()),
        format!("--http-addr={addr}"),
        format!("--execution-namespace={EXEC_NS}"),
        "--log-format=text".to_string(),
    ])
    .expect("arguments");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_until(cli.run, async move {
        let _ = stopped.await;
    }));

    let want = format!("execution namespace {EXEC_NS} does not exist");
    eventually("/readyz 503 with the reason", T, || async {
        matches!(get(addr, "/readyz").await, Some((503, body)) if body.contains(&want))
    })
    .await;

    let wfes: Api<WorkflowExecution> = Api::namespaced(emu.client(), NS);
    let w: WorkflowExecution =
        serde_json::from_value(wfe("w1", "team-a/Deployment/r", "job", None)).expect("wfe");
    wfes.create(&PostParams::default(), &w)
        .await
        .expect("create");
    eventually("w1 held", T, || async {
        let w = wfes.get("w1").await.expect("get");
        w.status.and_then(|s| s.blocked_reason).as_deref() == Some("ExecutionNamespaceUnavailable")
    })
    .await;

    let namespaces: Api<Namespace> = Api::all(emu.client());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": EXEC_NS}}))
        .expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    eventually("/readyz 200", T, || async {
        matches!(get(addr, "/readyz").await, Some((200, _)))
    })
    .await;
    eventually("w1 completes", T, || async {
        phase_of(&wfes.get("w1").await.expect("get")) == "Completed"
    })
    .await;

    let _ = stop.send(());
    tokio::time::timeout(T, task)
        .await
        .expect("run stops")
        .expect("task")
        .expect("run returns Ok");
}
