//! The execution simulator follows the real controllers for the objects we
//! build: the Job controller's pod failure policy and deadline, Tekton's
//! default pipeline timeout and v0.70+ step shapes, lingering children
//! after a deletion, and pod creates refused by admission.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::Client;
use serde_json::{json, Value};
use support::emulator::PodSecurityLevel;
use support::simulator::{kit, SimConfig, Simulator};
use support::{Emulator, Quota};
use wfe_engine::api::WorkflowExecution;
use wfe_engine::execute::{build, BuildInput, ExecutionEngine};

const NS: &str = "exec";
const T: Duration = Duration::from_secs(15);

async fn cluster(time_scale: f64) -> (Emulator, Simulator) {
    let emu = Emulator::builder()
        .realistic()
        .gc_delay(Some(Duration::from_millis(300)))
        .namespace(NS)
        .start()
        .await;
    let sim = Simulator::start_with(
        emu.client(),
        SimConfig {
            step_delay: Duration::from_millis(5),
            time_scale,
            ..Default::default()
        },
    );
    (emu, sim)
}

/// What our executors build for a WFE with `scenario` (as a parameter).
fn built(
    engine: ExecutionEngine,
    target: &str,
    scenario: &str,
    times_out_in: Option<i64>,
) -> DynamicObject {
    let now = Timestamp::now();
    let mut w: WorkflowExecution = serde_json::from_value(json!({
        "apiVersion": "kubernaut.ai/v1alpha1", "kind": "WorkflowExecution",
        "metadata": {"name": "w", "namespace": "team-a"},
        "spec": {"remediationRequestRef": {"name": "rr"},
            "workflowRef": {"workflowId": "w", "workflowName": "w", "actionType": "a", "version": "1",
                "executionBundle": "img", "executionEngine": engine.as_str()},
            "targetResource": target, "parameters": {"SIM_SCENARIO": scenario}}
    }))
    .expect("wfe");
    if let Some(s) = times_out_in {
        let at = now
            .checked_add(jiff::SignedDuration::from_secs(s))
            .expect("time");
        w.spec.times_out_at = Some(Time(at));
    }
    build(
        engine,
        &BuildInput {
            wfe: &w,
            namespace: NS,
            now,
        },
    )
    .expect("build")
}

async fn create(client: &Client, engine: ExecutionEngine, obj: &DynamicObject) -> Value {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &engine.api_resource());
    serde_json::to_value(
        api.create(&PostParams::default(), obj)
            .await
            .expect("create"),
    )
    .expect("json")
}

fn api(client: &Client, ar: &kube::discovery::ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, ar)
}

/// Wait until `name` of `ar` has a terminal condition; return it as JSON.
async fn finished(client: &Client, ar: &kube::discovery::ApiResource, name: &str) -> Value {
    let api = api(client, ar);
    let end = tokio::time::Instant::now() + T;
    while tokio::time::Instant::now() < end {
        let v = serde_json::to_value(api.get(name).await.expect("get")).expect("json");
        let done = v
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| match c["type"].as_str() {
                Some("Succeeded") => c["status"] != "Unknown",
                Some("Failed" | "Complete") => c["status"] == "True",
                _ => false,
            });
        if done {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{name} did not finish in {T:?}");
}

/// Build, create and wait for the end of what our executors build for
/// `scenario` on `target`: the object's name and its finished state.
async fn run_to_end(
    client: &Client,
    engine: ExecutionEngine,
    target: &str,
    scenario: &str,
    times_out_in: Option<i64>,
) -> (String, Value) {
    let obj = built(engine, target, scenario, times_out_in);
    let name = obj.metadata.name.clone().expect("name");
    create(client, engine, &obj).await;
    let done = finished(client, &engine.api_resource(), &name).await;
    (name, done)
}

/// The TaskRuns of the PipelineRun `name`.
async fn task_runs_of(client: &Client, name: &str) -> Vec<Value> {
    list(
        client,
        &kit::taskruns(),
        &format!("tekton.dev/pipelineRun={name}"),
    )
    .await
}

fn condition<'a>(v: &'a Value, ty: &str) -> &'a Value {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
        .unwrap_or(&Value::Null)
}

async fn list(client: &Client, ar: &kube::discovery::ApiResource, selector: &str) -> Vec<Value> {
    api(client, ar)
        .list(&ListParams::default().labels(selector))
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).expect("json"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_job_oom_is_retried_until_the_deadline() {
    // 10 minutes of deadline pass in 0.6 s; the pod failure backoff (10 s,
    // 20 s, 40 s, ...) in 10, 20, 40 ms.
    let (emu, _sim) = cluster(0.001).await;
    let c = emu.client();
    let (name, done) = run_to_end(
        &c,
        ExecutionEngine::Job,
        "team-a/Deployment/oom",
        "oom",
        Some(600),
    )
    .await;
    let failed = condition(&done, "Failed");
    assert_eq!(failed["reason"], "DeadlineExceeded", "{done:#}");
    assert_eq!(
        failed["message"],
        "Job was active longer than specified deadline"
    );
    // Ignored failures do not count towards backoffLimit (0 here).
    let pods = list(
        &c,
        &kit::pods(),
        &format!("batch.kubernetes.io/job-name={name}"),
    )
    .await;
    let oom: Vec<&Value> = pods
        .iter()
        .filter(|p| {
            p.pointer("/status/containerStatuses/0/state/terminated/reason")
                == Some(&json!("OOMKilled"))
                && p.pointer("/status/containerStatuses/0/state/terminated/exitCode")
                    == Some(&json!(137))
        })
        .collect();
    assert!(
        oom.len() >= 2,
        "expected replacement pods after OOM kills: {pods:#?}"
    );
    // The Job controller released its tracking finalizer on counted pods.
    assert!(oom.iter().all(|p| p
        .pointer("/metadata/finalizers")
        .is_none_or(|f| f == &json!([]))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_tekton_default_timeout_ends_a_hanging_run() {
    // Tekton's default hour passes in 0.36 s.
    let (emu, _sim) = cluster(0.0001).await;
    let c = emu.client();
    let pr = built(
        ExecutionEngine::Tekton,
        "team-a/Deployment/hang",
        "hang",
        None,
    );
    let name = pr.metadata.name.clone().expect("name");
    assert!(
        pr.data["spec"].get("timeouts").is_none(),
        "the builder sets no timeout without timesOutAt"
    );
    let created = create(&c, ExecutionEngine::Tekton, &pr).await;
    assert_eq!(
        created["spec"]["timeouts"]["pipeline"], "1h0m0s",
        "Tekton's defaulting webhook"
    );
    let done = finished(&c, &kit::pipelineruns(), &name).await;
    let cond = condition(&done, "Succeeded");
    assert_eq!(cond["reason"], "PipelineRunTimeout");
    assert_eq!(
        cond["message"],
        format!("PipelineRun \"{name}\" failed to finish within \"1h0m0s\"")
    );
    let trs = task_runs_of(&c, &name).await;
    assert_eq!(
        condition(&trs[0], "Succeeded")["reason"],
        "TaskRunCancelled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_tekton_synthetic_steps_have_the_v0_70_start_times() {
    let (emu, _sim) = cluster(0.002).await;
    let c = emu.client();
    // A step still waiting (image pull) is terminated with the TaskRun's
    // creationTimestamp as startedAt.
    let (name, _) = run_to_end(
        &c,
        ExecutionEngine::Tekton,
        "team-a/Deployment/pull",
        "imagepull",
        None,
    )
    .await;
    let tr = &task_runs_of(&c, &name).await[0];
    let step = &tr["status"]["steps"][0];
    assert_eq!(step["terminationReason"], "TaskRunImagePullFailed");
    assert_eq!(step["terminated"]["exitCode"], 1);
    assert_eq!(
        step["terminated"]["startedAt"],
        tr["metadata"]["creationTimestamp"]
    );
    assert!(step.get("running").is_none() && step.get("waiting").is_none());

    // A running step keeps its own start when cancelled.
    let (name, _) = run_to_end(
        &c,
        ExecutionEngine::Tekton,
        "team-a/Deployment/cancel",
        "cancel",
        None,
    )
    .await;
    let tr = &task_runs_of(&c, &name).await[0];
    let pod = &list(
        &c,
        &kit::pods(),
        &format!(
            "tekton.dev/taskRun={}",
            tr["metadata"]["name"].as_str().unwrap()
        ),
    )
    .await[0];
    let step = &tr["status"]["steps"][0];
    assert_eq!(step["terminationReason"], "TaskRunCancelled");
    assert_eq!(
        step["terminated"]["startedAt"],
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["startedAt"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_children_linger_after_their_run_is_deleted() {
    let (emu, _sim) = cluster(0.002).await;
    let c = emu.client();
    let pr = built(
        ExecutionEngine::Tekton,
        "team-a/Deployment/linger",
        "success",
        None,
    );
    let name = pr.metadata.name.clone().expect("name");
    let first = create(&c, ExecutionEngine::Tekton, &pr).await;
    let first_uid = first["metadata"]["uid"].as_str().expect("uid").to_string();
    finished(&c, &kit::pipelineruns(), &name).await;
    api(&c, &kit::pipelineruns())
        .delete(&name, &DeleteParams::background())
        .await
        .expect("delete");
    // A new run under the same name while the old children are still there.
    let second = create(&c, ExecutionEngine::Tekton, &pr).await;
    let second_uid = second["metadata"]["uid"].as_str().expect("uid").to_string();
    let by_name = task_runs_of(&c, &name).await;
    assert!(
        by_name.iter().any(
            |t| t["metadata"]["labels"]["tekton.dev/pipelineRunUID"] == first_uid
                && t["metadata"]["ownerReferences"][0]["uid"] == first_uid
        ),
        "the previous run's TaskRun lingers, labelled and owned by the old uid: {by_name:#?}"
    );
    // The new run waits for the name, then runs; only its own children remain.
    let done = finished(&c, &kit::pipelineruns(), &name).await;
    assert_eq!(condition(&done, "Succeeded")["status"], "True");
    emu.gc_idle().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let left = task_runs_of(&c, &name).await;
    assert!(!left.is_empty());
    assert!(left
        .iter()
        .all(|t| t["metadata"]["labels"]["tekton.dev/pipelineRunUID"] == second_uid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_refused_pods_end_runs_as_the_controllers_report_them() {
    let (emu, _sim) = cluster(0.0005).await;
    let c = emu.client();
    // Pod Security `restricted`: an ordinary Tekton step is refused at
    // admission and the TaskRun says so with the API server's message.
    emu.admission()
        .pod_security(NS, PodSecurityLevel::Restricted);
    let (name, _) = run_to_end(
        &c,
        ExecutionEngine::Tekton,
        "team-a/Deployment/psa",
        "success",
        None,
    )
    .await;
    let tr = &task_runs_of(&c, &name).await[0];
    let cond = condition(tr, "Succeeded");
    assert_eq!(cond["reason"], "PodAdmissionFailed");
    assert!(
        cond["message"].as_str().unwrap().contains(
            "violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"
        ),
        "{cond}"
    );
    // Our Job's pod template passes `restricted`.
    let (_, done) = run_to_end(
        &c,
        ExecutionEngine::Job,
        "team-a/Deployment/psa-job",
        "success",
        None,
    )
    .await;
    assert_eq!(condition(&done, "Complete")["status"], "True");
    emu.admission().clear();

    // A pod quota: the TaskRun waits (ExceededResourceQuota) until the run times out.
    emu.admission().quota(Quota {
        namespace: NS.into(),
        name: "pods".into(),
        resource: "pods".into(),
        hard: 0,
    });
    let (name, done) = run_to_end(
        &c,
        ExecutionEngine::Tekton,
        "team-a/Deployment/quota",
        "success",
        Some(600),
    )
    .await;
    assert_eq!(
        condition(&done, "Succeeded")["reason"],
        "PipelineRunTimeout"
    );
    let tr = &task_runs_of(&c, &name).await[0];
    let msg = condition(tr, "Succeeded")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("Previous status: [ExceededResourceQuota] TaskRun Pod exceeded available resources: pods"), "{msg}");
    assert!(
        msg.contains("exceeded quota: pods, requested: pods=1, used: pods=0, limited: pods=0"),
        "{msg}"
    );
}
