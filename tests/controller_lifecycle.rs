//! End-to-end lifecycles of the controller against the API emulator and
//! the execution simulator: happy paths, failure reasons, the lock release.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::harness;

use std::time::Duration;

use harness::*;
use kube::ResourceExt;
use wfe_engine::api::FINALIZER;
use wfe_engine::execute::ExecutionEngine;

const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tekton_happy_path_with_lock_release_and_five_writes() {
    let h = Harness::start().await;
    let target = "team-a/Deployment/api";
    h.create(NS, wfe("restart-api", target, "tekton", None))
        .await;

    let running = h.wait_phase(NS, "restart-api", "Running", T).await;
    assert!(running.finalizers().iter().any(|f| f == FINALIZER));
    let st = running.status.clone().unwrap();
    assert_eq!(st.execution_ref.unwrap().name, lock(target));
    assert!(st.start_time.is_some());

    let pr = h
        .pipeline_runs()
        .get(&lock(target))
        .await
        .expect("pipelinerun exists");
    assert_eq!(
        pr.labels()["kubernaut.ai/workflow-execution"],
        "restart-api"
    );
    let params = pr.data["spec"]["params"].as_array().unwrap();
    assert_eq!(params.last().unwrap()["name"], "TARGET_RESOURCE");

    let done = h.wait_phase(NS, "restart-api", "Completed", T).await;
    let st = done.status.unwrap();
    assert!(st.completion_time.is_some());

    // Lock released after the (2 s) cooldown, once.
    eventually("lock released", T, || async {
        h.pipeline_runs()
            .get_opt(&lock(target))
            .await
            .unwrap()
            .is_none()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reasons = h.event_reasons(NS, "restart-api").await;
    assert_eq!(
        reasons.iter().filter(|r| *r == "LockReleased").count(),
        1,
        "{reasons:?}"
    );
    assert_eq!(
        reasons.iter().filter(|r| *r == "WorkflowCompleted").count(),
        1,
        "{reasons:?}"
    );
    assert_eq!(
        reasons.iter().filter(|r| *r == "ExecutionCreated").count(),
        1,
        "{reasons:?}"
    );

    let writes = h.controller_writes();
    println!("controller writes for one Tekton lifecycle: {writes}");
    h.dump_writes();
    assert!(writes <= 5, "writes: {writes}");
    assert_eq!(h.creates_of("PipelineRun"), 1);

    let audit: Vec<String> = h
        .audit
        .records()
        .into_iter()
        .map(|r| r.event_type)
        .collect();
    assert!(
        audit.iter().any(|t| t.ends_with("workflow.completed")),
        "{audit:?}"
    );
    assert_eq!(h.audit.duplicates(), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_happy_path() {
    let h = Harness::start().await;
    let target = "team-a/Deployment/jobby";
    h.create(NS, wfe("job-1", target, "job", None)).await;
    h.wait_phase(NS, "job-1", "Completed", T).await;
    let job = h
        .executions(ExecutionEngine::Job)
        .get_opt(&lock(target))
        .await
        .unwrap();
    if let Some(job) = job {
        assert_eq!(job.labels()["kubernaut.ai/execution-engine"], "job");
    }
    assert_eq!(h.creates_of("Job"), 1);
    h.stop().await;
}
