//! `wfe-engine capture` + `dry-run` reproduce the controller's decision, and
//! `explain` agrees with the status it wrote, for a held, a running and a
//! failed WFE in the API emulator (the real controller deciding, the real
//! binary capturing over HTTP with a kubeconfig).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use harness::{phase_of, test_rules, wfe, Harness, Options, RuleTimes, EXEC_NS, NS};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_wfe-engine");

async fn cli(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).output().expect("run"))
        .await
        .expect("join")
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Cli {
    kubeconfig: PathBuf,
    rules: PathBuf,
    dir: PathBuf,
}

impl Cli {
    async fn capture(&self, name: &str) -> PathBuf {
        let file = self.dir.join(format!("{name}.yaml"));
        let o = cli(vec![
            "capture".into(),
            "--kubeconfig".into(),
            self.kubeconfig.display().to_string(),
            "--execution-namespace".into(),
            EXEC_NS.into(),
            format!("{NS}/{name}"),
            "-o".into(),
            file.display().to_string(),
        ])
        .await;
        assert_eq!(o.status.code(), Some(0), "capture {name}: {}", text(&o));
        file
    }

    async fn dry_run(&self, file: &Path) -> Value {
        let o = cli(vec![
            "dry-run".into(),
            "--rules".into(),
            self.rules.display().to_string(),
            "-o".into(),
            "json".into(),
            file.display().to_string(),
        ])
        .await;
        assert_eq!(o.status.code(), Some(0), "dry-run: {}", text(&o));
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap())
            .expect("one record")
    }

    async fn explain(&self, name: &str) -> Output {
        cli(vec![
            "explain".into(),
            "--kubeconfig".into(),
            self.kubeconfig.display().to_string(),
            "--rules".into(),
            self.rules.display().to_string(),
            format!("{NS}/{name}"),
        ])
        .await
    }

    /// Capture until the view is at rest (the controller has written what
    /// it decides on this view), then replay it.
    async fn settled(&self, name: &str) -> (PathBuf, Value, String) {
        let end = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let e = self.explain(name).await;
            if e.status.code() == Some(0) {
                let file = self.capture(name).await;
                let record = self.dry_run(&file).await;
                return (file, record, String::from_utf8_lossy(&e.stdout).to_string());
            }
            assert_eq!(e.status.code(), Some(1), "explain {name}: {}", text(&e));
            assert!(
                tokio::time::Instant::now() < end,
                "explain never agreed: {}",
                text(&e)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_and_dry_run_reproduce_the_controllers_decisions() {
    // A cooldown long enough to find the second WFE held.
    let times = RuleTimes {
        cooldown: "60s",
        ..RuleTimes::default()
    };
    let h = Harness::start_with(Options {
        times: times.clone(),
        ..Options::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    test_rules(&rules, &times);
    let c = Cli {
        kubeconfig: h.emu.write_kubeconfig(tmp.path()).unwrap(),
        rules,
        dir: tmp.path().to_path_buf(),
    };

    // Failed: a task exits 3.
    h.create(
        NS,
        wfe(
            "broken",
            "team-a/deployment/one",
            "tekton",
            Some("failed:3"),
        ),
    )
    .await;
    // Held: a success, then a second WFE on the same target in the cooldown.
    h.create(NS, wfe("first", "team-a/deployment/two", "tekton", None))
        .await;
    h.wait_phase(NS, "first", "Completed", Duration::from_secs(10))
        .await;
    h.create(NS, wfe("held", "team-a/deployment/two", "tekton", None))
        .await;
    // Running: a run that does not end.
    h.create(
        NS,
        wfe("busy", "team-a/deployment/three", "tekton", Some("hang")),
    )
    .await;
    h.wait_phase(NS, "broken", "Failed", Duration::from_secs(10))
        .await;
    h.wait_phase(NS, "busy", "Running", Duration::from_secs(10))
        .await;
    harness::eventually("held is blocked", Duration::from_secs(10), || async {
        h.get(NS, "held")
            .await
            .status
            .is_some_and(|s| s.blocked_reason.as_deref() == Some("CooldownActive"))
    })
    .await;

    // Held: the same hold, until the same instant.
    let (file, r, explained) = c.settled("held").await;
    let status = h.get(NS, "held").await.status.unwrap();
    assert_eq!(r["phase"], "Pending");
    assert_eq!(r["hold"]["reason"], "CooldownActive");
    assert_eq!(
        r["hold"]["until"],
        status.next_allowed_execution.unwrap().0.to_string()
    );
    assert!(explained.contains("status: agrees"), "{explained}");
    let capture = std::fs::read_to_string(&file).unwrap();
    assert!(
        capture.contains("kind: Capture") && capture.contains("name: first"),
        "{capture}"
    );

    // Running: still running, deciding progress.
    let (_, r, explained) = c.settled("busy").await;
    assert_eq!(r["phase"], "Running");
    assert_eq!(r["outcome"], "Running");
    assert!(r["rule"].as_str().unwrap().ends_with("#progress"), "{r}");
    assert!(r["primary"]
        .as_str()
        .unwrap()
        .starts_with("PipelineRun/kubernaut-workflows/"));
    assert!(explained.contains("status: agrees"), "{explained}");

    // Failed: the failure the controller recorded, and the active rules
    // classify the finished run the same way again.
    let (file, r, explained) = c.settled("broken").await;
    let w = h.get(NS, "broken").await;
    assert_eq!(phase_of(&w), "Failed");
    let details = w.status.unwrap().failure_details.unwrap();
    assert_eq!(r["phase"], "Failed");
    assert_eq!(r["reason"], details.reason);
    assert_eq!(r["reason"], "TaskFailed");
    assert_eq!(r["wasExecutionFailure"], details.was_execution_failure);
    assert_eq!(r["exitCode"], 3);
    assert!(
        explained
            .contains("failure: agrees — the active rules classify the execution as TaskFailed"),
        "{explained}"
    );
    let capture = std::fs::read_to_string(&file).unwrap();
    assert!(
        capture.contains("kind: TaskRun"),
        "children are captured: {capture}"
    );

    // The rules changed (an exit code reclassified): explain says so, exit 1.
    let changed = tmp.path().join("changed");
    std::fs::create_dir(&changed).unwrap();
    test_rules(&changed, &times);
    let f = changed.join("failures.yaml");
    let t = std::fs::read_to_string(&f).unwrap().replacen(
        "    # 8. A task or container ran and failed.",
        "    - name: exit-3\n      reason: ConfigurationError\n      exitCode: true\n      when:\n        execution.exitCode: 3\n\n    # 8. A task or container ran and failed.",
        1,
    );
    std::fs::write(&f, t).unwrap();
    let o = cli(vec![
        "explain".into(),
        "--kubeconfig".into(),
        c.kubeconfig.display().to_string(),
        "--rules".into(),
        changed.display().to_string(),
        format!("{NS}/broken"),
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("failure: DISAGREES"), "{}", text(&o));

    // Not there: an input error.
    let o = cli(vec![
        "capture".into(),
        "--kubeconfig".into(),
        c.kubeconfig.display().to_string(),
        format!("{NS}/no-such-wfe"),
    ])
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not found"), "{}", text(&o));
    h.stop().await;
}
