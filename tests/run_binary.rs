//! The real `wfe-engine run` binary as a child process against the API
//! emulator: it gets ready, drives a WFE to completion, serves its
//! endpoints, and stops cleanly on SIGTERM; bad rules keep it from starting.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::bin;
use support::harness;

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use bin::{shipped_rules, unreachable_kubeconfig, Process};
use harness::{phase_of, wfe, EXEC_NS, NS};
use kube::api::{Api, PostParams};
use support::simulator::Simulator;
use support::{Emulator, Verb};
use wfe_engine::api::WorkflowExecution;

async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    support::bin::http_get_async(addr, path).await
}

/// Poll without blocking the runtime the emulator serves from.
async fn wait_until<F: FnMut(&mut Process) -> bool>(
    p: &mut Process,
    what: &str,
    timeout: Duration,
    mut done: F,
) {
    let end = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < end {
        if done(p) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} not reached in {timeout:?}; output:\n{}", p.output());
}

/// The emulator (with the simulator) and `wfe-engine run` pointed at it.
struct Running {
    emu: Emulator,
    _sim: Simulator,
    _tmp: tempfile::TempDir,
    p: Process,
    addr: SocketAddr,
    /// The revision of the rules the binary was given.
    revision: String,
}

impl Running {
    async fn start() -> Running {
        let emu = Emulator::builder()
            .namespace(EXEC_NS)
            .namespace(NS)
            .start()
            .await;
        let sim = Simulator::start(emu.client());
        let tmp = tempfile::tempdir().unwrap();
        let kubeconfig = emu.write_kubeconfig(tmp.path()).unwrap();
        let rules = shipped_rules(tmp.path());
        let revision = wfe_engine::rules::load_dir(&rules)
            .unwrap_or_else(|e| panic!("shipped rules:\n{e}"))
            .revision;
        let addr = bin::free_addr();
        let addr_arg = addr.to_string();
        let args: Vec<&OsStr> = vec![
            "run".as_ref(),
            "--kubeconfig".as_ref(),
            kubeconfig.as_os_str(),
            "--rules".as_ref(),
            rules.as_os_str(),
            "--http-addr".as_ref(),
            addr_arg.as_ref(),
            "--execution-namespace".as_ref(),
            EXEC_NS.as_ref(),
            "--log-format".as_ref(),
            "text".as_ref(),
        ];
        let p = Process::spawn(&args, &tmp.path().join("wfe-engine.log"));
        Running {
            emu,
            _sim: sim,
            _tmp: tmp,
            p,
            addr,
            revision,
        }
    }

    /// Poll `path` until it answers `code`.
    async fn wait_for_code(&mut self, path: &'static str, code: u16, timeout: Duration) {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(s) = self.p.exited() {
                panic!("wfe-engine exited early ({s}):\n{}", self.p.output());
            }
            let last = get(self.addr, path).await;
            if matches!(last, Ok((c, _)) if c == code) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "{path} did not answer {code} in {timeout:?} (last answer: {last:?}); output:\n{}",
                self.p.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_turns_ready_once_its_caches_have_synced() {
    let mut r = Running::start().await;
    r.wait_for_code("/readyz", 200, Duration::from_secs(10))
        .await;
    r.p.terminate();
    wait_until(
        &mut r.p,
        "exit after SIGTERM",
        Duration::from_secs(5),
        |p| p.exited().is_some(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_completes_a_wfe_serves_its_endpoints_and_stops_on_sigterm() {
    let mut r = Running::start().await;
    // Serving (readiness has its own test above).
    r.wait_for_code("/healthz", 200, Duration::from_secs(10))
        .await;
    let (emu, addr, revision) = (&r.emu, r.addr, r.revision.clone());

    // A Job WFE runs to completion through the binary.
    let wfes: Api<WorkflowExecution> = Api::namespaced(emu.client(), NS);
    let w: WorkflowExecution =
        serde_json::from_value(wfe("bin", "team-a/Deployment/bin", "job", None)).unwrap();
    wfes.create(&PostParams::default(), &w).await.unwrap();
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    let done = loop {
        let w = wfes.get("bin").await.unwrap();
        if phase_of(&w) == "Completed" {
            break w;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "the WFE did not complete; status: {:?}\noutput:\n{}",
            w.status,
            r.p.output()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let st = done.status.unwrap();
    assert_eq!(
        st.rules.as_ref().map(|r| r.revision.as_str()),
        Some(revision.as_str())
    );
    assert_eq!(emu.log().count_ok(Verb::Create, "Job"), 1);

    // /metrics: the reload metrics, and kubernaut's count of terminal WFEs
    // (counted just after the status write the loop above saw).
    let counted = r#"workflowexecution_reconciler_total{outcome="Completed"} 1"#;
    let end = tokio::time::Instant::now() + Duration::from_secs(3);
    let metrics = loop {
        let (code, metrics) = get(addr, "/metrics").await.unwrap();
        assert_eq!(code, 200, "{metrics}");
        if metrics.contains(counted) || tokio::time::Instant::now() > end {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(metrics.contains(counted), "{metrics}");
    let info = format!(r#"wfe_rules_revision_info{{revision="{revision}"}} 1"#);
    assert!(metrics.contains(&info), "{metrics}");
    assert!(
        metrics.contains("wfe_rules_last_reload_successful 1"),
        "{metrics}"
    );

    // /rules: the active revision and its files.
    let (code, body) = get(addr, "/rules").await.unwrap();
    assert_eq!(code, 200, "{body}");
    let rules_status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        rules_status["active"]["revision"],
        revision.as_str(),
        "{body}"
    );
    assert!(
        rules_status["active"]["files"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "{body}"
    );
    assert_eq!(rules_status["lastError"], serde_json::Value::Null, "{body}");

    // SIGTERM: a clean exit, promptly.
    r.p.terminate();
    wait_until(
        &mut r.p,
        "exit after SIGTERM",
        Duration::from_secs(5),
        |p| p.exited().is_some(),
    )
    .await;
    let status = r.p.exited().unwrap();
    assert_eq!(status.code(), Some(0), "output:\n{}", r.p.output());
}

#[test]
fn run_with_a_missing_rules_directory_exits_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-rules");
    let out = Command::new(bin::path())
        .arg("run")
        .arg("--kubeconfig")
        .arg(unreachable_kubeconfig(tmp.path()))
        .arg("--rules")
        .arg(&missing)
        .args(["--http-addr", "127.0.0.1:0", "--log-format", "text"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(matches!(out.status.code(), Some(1 | 2)), "{:?}", out.status);
    assert!(
        stderr.contains(&missing.display().to_string()) && stderr.contains("does not exist"),
        "{stderr}"
    );
}

#[test]
fn run_with_invalid_rules_refuses_to_start_and_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = shipped_rules(tmp.path());
    let history = rules.join("history.yaml");
    let text = std::fs::read_to_string(&history).unwrap();
    let line = text
        .lines()
        .position(|l| l.trim() == "period: 5m")
        .expect("the shipped cooldown")
        + 1;
    std::fs::write(&history, text.replace("period: 5m", "period: soon")).unwrap();

    let out = Command::new(bin::path())
        .arg("run")
        .arg("--kubeconfig")
        .arg(unreachable_kubeconfig(tmp.path()))
        .arg("--rules")
        .arg(&rules)
        .args(["--http-addr", "127.0.0.1:0", "--log-format", "text"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(1 | 2)), "{:?}", out.status);
    assert!(
        stderr.contains(&format!("history.yaml:{line}:")),
        "no history.yaml:{line} in:\n{stderr}"
    );
    assert!(stderr.contains("soon"), "{stderr}");
    // Refused before talking to the cluster.
    assert!(!stderr.contains("Connect"), "{stderr}");
}
