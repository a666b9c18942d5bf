//! The lock: AlreadyExists (ours, another WFE's, unlabelled), cooldown hold
//! and lock release, external deletion of the execution object, deletion
//! of a Running WFE.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::harness;

use std::time::Duration;

use harness::*;
use kube::api::{DeleteParams, DynamicObject, PostParams};
use kube::ResourceExt;
use serde_json::json;
use wfe_engine::execute::ExecutionEngine;

const T: Duration = Duration::from_secs(15);

fn pipeline_run(name: &str, labels: serde_json::Value, scenario: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": EXEC_NS, "labels": labels},
        "spec": {"pipelineRef": {"name": "workflow"}, "params": [{"name": "SIM_SCENARIO", "value": scenario}]}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_exists_ours_other_and_unlabelled() {
    let h = Harness::start().await;
    let prs = h.pipeline_runs();

    // Ours: adopted, runs to completion, never created twice.
    let t1 = "team-a/Deployment/ours";
    prs.create(
        &PostParams::default(),
        &pipeline_run(
            &lock(t1),
            json!({
        "kubernaut.ai/workflow-execution": "ours", "kubernaut.ai/source-namespace": NS}),
            "success",
        ),
    )
    .await
    .unwrap();
    // Another WFE's, still running.
    let t2 = "team-a/Deployment/other";
    prs.create(
        &PostParams::default(),
        &pipeline_run(
            &lock(t2),
            json!({
        "kubernaut.ai/workflow-execution": "someone-else", "kubernaut.ai/source-namespace": NS}),
            "hang",
        ),
    )
    .await
    .unwrap();
    // Unlabelled (invisible to the controller's label-selected cache, so
    // this one goes through create → AlreadyExists → re-decide).
    let t3 = "team-a/Deployment/unlabelled";
    prs.create(
        &PostParams::default(),
        &pipeline_run(&lock(t3), json!({}), "hang"),
    )
    .await
    .unwrap();

    h.create(NS, wfe("ours", t1, "tekton", None)).await;
    h.create(NS, wfe("dup", t2, "tekton", None)).await;
    h.create(NS, wfe("locked", t3, "tekton", None)).await;

    h.wait_phase(NS, "ours", "Completed", T).await;
    let dup = h.wait_phase(NS, "dup", "Failed", T).await;
    let st = dup.status.unwrap();
    assert_eq!(st.failure_details.as_ref().unwrap().reason, "Deduplicated");
    assert_eq!(st.deduplicated_by.as_deref(), Some("someone-else"));
    let locked = h.wait_phase(NS, "locked", "Failed", T).await;
    let d = locked.status.unwrap().failure_details.unwrap();
    assert_eq!(d.reason, "Unknown");
    assert!(d.message.contains("locked"), "{}", d.message);

    // The three test-made PipelineRuns, plus one failed create attempt.
    assert_eq!(h.creates_of("PipelineRun"), 3);
    // The other WFE's and the unlabelled object are untouched.
    assert!(prs.get_opt(&lock(t2)).await.unwrap().is_some());
    assert!(prs.get_opt(&lock(t3)).await.unwrap().is_some());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooldown_holds_the_next_wfe_then_it_runs_and_the_lock_is_released_once() {
    let h = Harness::start().await;
    let target = "team-a/Deployment/cool";
    h.create(NS, wfe("first", target, "tekton", None)).await;
    h.wait_phase(NS, "first", "Completed", T).await;
    h.create(NS, wfe("second", target, "tekton", None)).await;

    let held = h.wait_phase(NS, "second", "Pending", T).await;
    let st = held.status.unwrap();
    assert!(st.next_allowed_execution.is_some(), "{st:?}");
    assert!(
        st.conditions
            .iter()
            .any(|c| c.type_ == "Blocked" && c.status == "True"),
        "{:?}",
        st.conditions
    );

    h.wait_phase(NS, "second", "Completed", T).await;
    // Both locks released after their cooldowns, each once.
    eventually("second lock released", T, || async {
        h.pipeline_runs()
            .get_opt(&lock(target))
            .await
            .unwrap()
            .is_none()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for name in ["first", "second"] {
        let reasons = h.event_reasons(NS, name).await;
        assert_eq!(
            reasons.iter().filter(|r| *r == "LockReleased").count(),
            1,
            "{name}: {reasons:?}"
        );
    }
    let second = h.event_reasons(NS, "second").await;
    assert_eq!(
        second.iter().filter(|r| *r == "CooldownActive").count(),
        1,
        "{second:?}"
    );
    assert_eq!(h.creates_of("PipelineRun"), 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_deletion_of_the_execution_fails_the_wfe() {
    let h = Harness::start().await;
    let target = "team-a/Deployment/ext";
    h.create(NS, wfe("ext", target, "tekton", Some("hang")))
        .await;
    h.wait_phase(NS, "ext", "Running", T).await;
    h.pipeline_runs()
        .delete(&lock(target), &DeleteParams::default())
        .await
        .unwrap();
    let w = h.wait_phase(NS, "ext", "Failed", T).await;
    let d = w.status.unwrap().failure_details.unwrap();
    assert_eq!(d.reason, "Unknown");
    assert!(d.message.contains("deleted externally"), "{}", d.message);
    assert!(!d.was_execution_failure);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_running_wfe_deletes_its_execution_and_the_finalizer() {
    let h = Harness::start().await;
    let target = "team-a/Deployment/del";
    h.create(NS, wfe("del", target, "job", Some("hang"))).await;
    h.wait_phase(NS, "del", "Running", T).await;
    h.wfes(NS)
        .delete("del", &DeleteParams::default())
        .await
        .unwrap();
    eventually("WFE gone", T, || async {
        h.wfes(NS).get_opt("del").await.unwrap().is_none()
    })
    .await;
    eventually("Job gone", T, || async {
        h.executions(ExecutionEngine::Job)
            .get_opt(&lock(target))
            .await
            .unwrap()
            .is_none()
    })
    .await;
    let reasons = h.event_reasons(NS, "del").await;
    assert!(
        reasons.iter().any(|r| r == "WorkflowExecutionDeleted"),
        "{reasons:?}"
    );
    h.stop().await;
}

/// A finished Job left behind by a WorkflowExecution that no longer exists is
/// a stale lock: the next WFE on the target deletes it, creates its own Job
/// and completes (AlreadyExists with a finished Job, §4.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_job_left_behind_is_replaced() {
    let h = Harness::start().await;
    let target = "team-a/Deployment/leftover";
    let jobs = h.executions(ExecutionEngine::Job);
    let leftover: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": lock(target), "namespace": EXEC_NS, "labels": {
            "kubernaut.ai/workflow-execution": "long-gone",
            "kubernaut.ai/source-namespace": NS}},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "workflow", "image": "x", "env": [{"name": "SIM_SCENARIO", "value": "success"}]}]}}}
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &leftover)
        .await
        .unwrap();
    let old_uid = jobs.get(&lock(target)).await.unwrap().metadata.uid;
    // The simulator plays it to completion: a finished Job nobody owns.
    eventually("leftover job finished", T, || async {
        let j = jobs.get(&lock(target)).await.unwrap();
        j.data["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Complete" && c["status"] == "True")
        })
    })
    .await;

    h.create(NS, wfe("next", target, "job", None)).await;
    let done = h.wait_phase(NS, "next", "Completed", T).await;
    assert_eq!(done.status.unwrap().failure_details, None);
    let job = jobs.get(&lock(target)).await.unwrap();
    assert_ne!(job.metadata.uid, old_uid, "the leftover Job was replaced");
    assert_eq!(job.labels()["kubernaut.ai/workflow-execution"], "next");
    assert_eq!(
        h.creates_of("Job"),
        2,
        "the leftover and exactly one of ours"
    );
    h.stop().await;
}
