//! Evidence belongs to this run only (DESIGN invariant 8): after the lock
//! name is reused, children of the previous execution object can still be
//! listed with the same name labels (asynchronous garbage collection,
//! finalizers). They must never decide the next WFE's failure.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::harness;

use std::time::Duration;

use harness::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use wfe_engine::execute::task_run_resource;

const T: Duration = Duration::from_secs(15);
const OLD_UID: &str = "0ld00000-0000-4000-8000-000000000001";

/// Create `obj` in the execution namespace, then give it `status` (status
/// is dropped on create, as by a real API server).
async fn create_with_status(api: &Api<DynamicObject>, obj: Value, status: Value) {
    let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
    let o: DynamicObject = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &o).await.unwrap();
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .unwrap();
}

/// A failed, OOM-killed Pod of the previous Job at the lock name: same
/// name labels, the old controller-uid, held by the Job controller's
/// finalizer so no garbage collection removes it during the test.
async fn lingering_oom_pod(h: &Harness, job: &str) {
    let pods: Api<DynamicObject> = Api::namespaced_with(
        h.client(),
        EXEC_NS,
        &kube::discovery::ApiResource::erase::<Pod>(&()),
    );
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{job}-old01"), "namespace": EXEC_NS,
            "labels": {
                "batch.kubernetes.io/job-name": job, "job-name": job,
                "batch.kubernetes.io/controller-uid": OLD_UID, "controller-uid": OLD_UID,
            },
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job,
                "uid": OLD_UID, "controller": true, "blockOwnerDeletion": true}],
            "finalizers": ["batch.kubernetes.io/job-tracking"],
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "workflow", "image": "old"}]},
    });
    let status = json!({
        "phase": "Failed",
        "containerStatuses": [{"name": "workflow", "image": "old", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
            "startedAt": "2025-03-14T09:00:00Z", "finishedAt": "2025-03-14T09:01:00Z"}}}],
    });
    create_with_status(&pods, pod, status).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_jobs_lingering_oom_pod_does_not_decide_the_next_failure() {
    let h = Harness::start().await;
    let target = "team-a/Deployment/evidence-job";
    let job = lock(target);
    lingering_oom_pod(&h, &job).await;

    h.create(NS, wfe("next", target, "job", Some("failed:3")))
        .await;
    let w = h.wait_phase(NS, "next", "Failed", T).await;
    let d = w.status.unwrap().failure_details.expect("failureDetails");
    assert_eq!(
        (d.reason.as_str(), d.exit_code, d.was_execution_failure),
        ("TaskFailed", Some(3), true),
        "{d:?}"
    );
    assert!(!d.message.contains("OOMKilled"), "{}", d.message);
    assert!(!d.natural_language_summary.contains("137"), "{d:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_runs_lingering_succeeded_taskrun_does_not_make_a_validation_failure_unsafe() {
    let h = Harness::start().await;
    let target = "team-a/Deployment/evidence-tekton";
    let pr = lock(target);
    // A TaskRun of the previous PipelineRun at this name that ran and
    // succeeded: had it been this run's, a retry would not be safe.
    let trs: Api<DynamicObject> = Api::namespaced_with(h.client(), EXEC_NS, &task_run_resource());
    let tr = json!({
        "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
        "metadata": {
            "name": format!("{pr}-prepare"), "namespace": EXEC_NS,
            "labels": {"tekton.dev/pipelineRun": pr, "tekton.dev/pipelineRunUID": OLD_UID,
                "tekton.dev/pipelineTask": "prepare"},
            "ownerReferences": [{"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "name": pr,
                "uid": OLD_UID, "controller": true, "blockOwnerDeletion": true}],
            "finalizers": ["chains.tekton.dev/taskrun"],
        },
        "spec": {"taskSpec": {"steps": [{"name": "run", "image": "old"}]}},
    });
    let status = json!({
        "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded",
            "message": "All Steps have completed executing"}],
        "steps": [{"name": "run", "container": "step-run", "terminated": {"exitCode": 0,
            "reason": "Completed", "startedAt": "2025-03-14T09:00:00Z", "finishedAt": "2025-03-14T09:01:00Z"}}],
    });
    create_with_status(&trs, tr, status).await;

    h.create(NS, wfe("next", target, "tekton", Some("validation")))
        .await;
    let w = h.wait_phase(NS, "next", "Failed", T).await;
    let d = w.status.unwrap().failure_details.expect("failureDetails");
    assert_eq!(
        (d.reason.as_str(), d.was_execution_failure),
        ("ConfigurationError", false),
        "{d:?}"
    );
    h.stop().await;
}
