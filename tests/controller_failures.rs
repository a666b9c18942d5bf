//! Failure paths end to end: each failure reason from a simulated
//! execution, invalid specs, unavailable engines, missing dependencies.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::harness;

use std::time::Duration;

use harness::*;
use wfe_engine::controller::ControllerConfig;

const T: Duration = Duration::from_secs(15);

async fn outcome(
    h: &Harness,
    name: &str,
    target: &str,
    engine: &str,
    scenario: &str,
) -> (String, bool) {
    h.create(NS, wfe(name, target, engine, Some(scenario)))
        .await;
    let w = h.wait_phase(NS, name, "Failed", T).await;
    let d = w.status.unwrap().failure_details.expect("failureDetails");
    (d.reason, d.was_execution_failure)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tekton_failure_reasons() {
    let h = Harness::start().await;
    let cases = [
        ("failed:2", "TaskFailed", true),
        ("oom", "OOMKilled", true),
        ("timeout", "DeadlineExceeded", true),
        // The only task's image never pulled: nothing ran (spec §3).
        ("imagepull", "ImagePullBackOff", false),
        ("validation", "ConfigurationError", false),
    ];
    let mut got = Vec::new();
    for (i, (scenario, _, _)) in cases.iter().enumerate() {
        let name = format!("tk-{i}");
        let target = format!("team-a/Deployment/tk-{i}");
        got.push(outcome(&h, &name, &target, "tekton", scenario).await);
    }
    for ((scenario, reason, exec), (r, e)) in cases.iter().zip(&got) {
        assert_eq!((r.as_str(), *e), (*reason, *exec), "scenario {scenario}");
    }
    // Each failure's WFE got exactly one WorkflowFailed event.
    for i in 0..cases.len() {
        let reasons = h.event_reasons(NS, &format!("tk-{i}")).await;
        assert_eq!(
            reasons.iter().filter(|r| *r == "WorkflowFailed").count(),
            1,
            "{reasons:?}"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_failure_reasons() {
    let h = Harness::start().await;
    let (r, e) = outcome(&h, "jb-1", "team-a/Deployment/jb-1", "job", "failed:3").await;
    assert_eq!((r.as_str(), e), ("TaskFailed", true));
    let (r, _) = outcome(&h, "jb-2", "team-a/Deployment/jb-2", "job", "oom").await;
    assert_eq!(r, "OOMKilled");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_fail_with_a_precise_message_and_create_nothing() {
    let h = Harness::start().await;
    let cases = [
        ("bad-parts", "just-a-name", "tekton", "got 1 parts"),
        (
            "bad-empty",
            "team-a//api",
            "tekton",
            "empty part at position 1",
        ),
        (
            "no-engine",
            "team-a/Deployment/x",
            "",
            "execution engine not declared",
        ),
    ];
    for (name, target, engine, _) in cases {
        let mut doc = wfe(name, target, engine, None);
        if engine.is_empty() {
            doc["spec"]["workflowRef"]
                .as_object_mut()
                .unwrap()
                .remove("executionEngine");
        }
        h.create(NS, doc).await;
    }
    for (name, _, _, msg) in cases {
        let w = h.wait_phase(NS, name, "Failed", T).await;
        let d = w.status.unwrap().failure_details.unwrap();
        assert_eq!(d.reason, "ConfigurationError");
        assert!(d.message.contains(msg), "{}: {}", name, d.message);
        assert!(!d.was_execution_failure);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.creates_of("PipelineRun") + h.creates_of("Job"), 0);
    // No hot loop: a settled invalid WFE causes no further writes.
    let before = h.controller_writes();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(h.controller_writes(), before);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tekton_unavailable_gives_unsupported_engine_with_guidance() {
    let h = Harness::start_with(Options {
        config: ControllerConfig {
            execution_namespace: EXEC_NS.into(),
            disable_tekton: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    h.create(NS, wfe("no-tekton", "team-a/Deployment/nt", "tekton", None))
        .await;
    let w = h.wait_phase(NS, "no-tekton", "Failed", T).await;
    let d = w.status.unwrap().failure_details.unwrap();
    assert_eq!(d.reason, "UnsupportedEngine");
    assert!(
        d.message.contains("install Tekton Pipelines CRDs"),
        "{}",
        d.message
    );
    // The Job engine still works.
    h.create(NS, wfe("as-job", "team-a/Deployment/aj", "job", None))
        .await;
    h.wait_phase(NS, "as-job", "Completed", T).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_dependencies_fail_when_the_check_is_on() {
    let h = Harness::start_with(Options {
        config: ControllerConfig {
            execution_namespace: EXEC_NS.into(),
            dependency_check: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut doc = wfe("deps", "team-a/Deployment/deps", "tekton", None);
    doc["spec"]["workflowRef"]["dependencies"] =
        serde_json::json!({"secrets": [{"name": "db-creds"}], "configMaps": [{"name": "cfg"}]});
    h.create(NS, doc).await;
    let w = h.wait_phase(NS, "deps", "Failed", T).await;
    let d = w.status.unwrap().failure_details.unwrap();
    assert_eq!(d.reason, "ConfigurationError");
    assert!(
        d.message.contains("secret/db-creds") && d.message.contains("configmap/cfg"),
        "{}",
        d.message
    );
    assert_eq!(h.creates_of("PipelineRun"), 0);
    h.stop().await;
}
