//! The API emulator behaves as kube-apiserver and kube-controller-manager
//! do where a controller can trip: asynchronous garbage collection
//! (Background, Foreground, Orphan; finalizers keeping objects with a
//! `deletionTimestamp`), namespaces that must exist and that terminate,
//! validation answered as the real server answers it, quota, Pod Security,
//! webhook and RBAC denials, and the WorkflowExecution CRD's own rules.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};
use support::emulator::PodSecurityLevel;
use support::simulator::kit;
use support::{Emulator, Quota, WebhookDenial};

const GC: Duration = Duration::from_millis(300);

async fn emulator() -> Emulator {
    Emulator::builder()
        .realistic()
        .gc_delay(Some(GC))
        .namespace("exec")
        .start()
        .await
}

fn api(client: &Client, ns: &str, ar: &kube::discovery::ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, ar)
}

async fn create(api: &Api<DynamicObject>, v: Value) -> Result<Value, kube::Error> {
    let obj: DynamicObject = serde_json::from_value(v).expect("object json");
    let o = api.create(&PostParams::default(), &obj).await?;
    Ok(serde_json::to_value(o).expect("to json"))
}

fn owner(o: &Value, block: bool) -> Value {
    json!([{"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
        "uid": o["metadata"]["uid"], "controller": true, "blockOwnerDeletion": block}])
}

fn pipeline_run(name: &str) -> Value {
    json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
        "metadata": {"name": name}, "spec": {"pipelineRef": {"name": "p"}}})
}

fn api_error(r: Result<Value, kube::Error>) -> Box<kube::core::Status> {
    match r {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn exists(api: &Api<DynamicObject>, name: &str) -> bool {
    api.get_opt(name).await.expect("get").is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_background_deletion_collects_dependents_later() {
    let emu = emulator().await;
    let c = emu.client();
    let (prs, trs, pods) = (
        api(&c, "exec", &kit::pipelineruns()),
        api(&c, "exec", &kit::taskruns()),
        api(&c, "exec", &kit::pods()),
    );
    let pr = create(&prs, pipeline_run("run")).await.unwrap();
    let tr = create(
        &trs,
        json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
        "metadata": {"name": "run-a", "ownerReferences": owner(&pr, true)}, "spec": {}}),
    )
    .await
    .unwrap();
    create(
        &pods,
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "run-a-pod", "ownerReferences": owner(&tr, true),
            "finalizers": ["example.com/keep"]},
        "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .await
    .unwrap();

    prs.delete("run", &DeleteParams::background())
        .await
        .unwrap();
    // The owner is gone at once; its children are still there.
    assert!(!exists(&prs, "run").await);
    assert!(
        exists(&trs, "run-a").await,
        "TaskRun collected inside the DELETE"
    );
    tokio::time::sleep(GC * 2).await;
    assert!(
        !exists(&trs, "run-a").await,
        "TaskRun not collected after the delay"
    );
    // The pod's owner went in turn; the pod lingers on its finalizer.
    tokio::time::sleep(GC * 2).await;
    let pod = pods.get("run-a-pod").await.unwrap();
    assert!(
        pod.metadata.deletion_timestamp.is_some(),
        "pod not being deleted"
    );
    pods.patch(
        "run-a-pod",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(!exists(&pods, "run-a-pod").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_foreground_deletion_waits_for_blocking_dependents() {
    let emu = emulator().await;
    let c = emu.client();
    let (prs, trs) = (
        api(&c, "exec", &kit::pipelineruns()),
        api(&c, "exec", &kit::taskruns()),
    );
    let pr = create(&prs, pipeline_run("fg")).await.unwrap();
    create(
        &trs,
        json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
        "metadata": {"name": "fg-a", "ownerReferences": owner(&pr, true),
            "finalizers": ["chains.tekton.dev"]}, "spec": {}}),
    )
    .await
    .unwrap();
    prs.delete("fg", &DeleteParams::foreground()).await.unwrap();
    let owner_now = prs.get("fg").await.unwrap();
    assert!(owner_now.metadata.deletion_timestamp.is_some());
    assert_eq!(
        owner_now.metadata.finalizers.as_deref(),
        Some(&["foregroundDeletion".to_string()][..])
    );
    tokio::time::sleep(GC * 3).await;
    // The blocking dependent is being deleted but held by its finalizer, so
    // the owner waits too.
    assert!(trs
        .get("fg-a")
        .await
        .unwrap()
        .metadata
        .deletion_timestamp
        .is_some());
    assert!(
        exists(&prs, "fg").await,
        "owner went before its blocking dependent"
    );
    trs.patch(
        "fg-a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    tokio::time::sleep(GC * 3).await;
    assert!(
        !exists(&prs, "fg").await,
        "owner kept after its dependents went"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_orphan_deletion_of_a_job_strips_owner_references() {
    let emu = emulator().await;
    let c = emu.client();
    let (jobs, pods) = (api(&c, "exec", &kit::jobs()), api(&c, "exec", &kit::pods()));
    let job = create(&jobs, json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}))
    .await
    .unwrap();
    create(
        &pods,
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "j-x", "ownerReferences": owner(&job, true)},
        "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .await
    .unwrap();
    // No propagationPolicy: batch/v1 Jobs orphan by default.
    jobs.delete("j", &DeleteParams::default()).await.unwrap();
    let j = jobs.get("j").await.unwrap();
    assert_eq!(
        j.metadata.finalizers.as_deref(),
        Some(&["orphan".to_string()][..])
    );
    tokio::time::sleep(GC * 3).await;
    assert!(!exists(&jobs, "j").await);
    let pod = pods.get("j-x").await.unwrap();
    assert!(pod.metadata.owner_references.unwrap_or_default().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_namespaces_must_exist_and_terminating_ones_refuse_creates() {
    let emu = emulator().await;
    let c = emu.client();
    let missing = api_error(create(&api(&c, "nowhere", &kit::jobs()), json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}})).await);
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "namespaces \"nowhere\" not found");
    let d = missing.details.expect("details");
    assert_eq!(
        (d.kind.as_str(), d.name.as_str()),
        ("namespaces", "nowhere")
    );

    // A namespace with an object held by a finalizer terminates until it goes.
    let cms = api(
        &c,
        "exec",
        &kit::resource("", "v1", "ConfigMap", "configmaps"),
    );
    create(
        &cms,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "held", "finalizers": ["example.com/keep"]}}),
    )
    .await
    .unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    namespaces
        .delete("exec", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(GC * 2).await;
    let ns = namespaces.get("exec").await.unwrap();
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    let refused =
        api_error(create(&api(&c, "exec", &kit::pipelineruns()), pipeline_run("late")).await);
    assert_eq!((refused.code, refused.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        refused.message,
        "pipelineruns.tekton.dev \"late\" is forbidden: unable to create new content in namespace exec because it is being terminated"
    );
    let causes = refused.details.expect("details").causes;
    assert_eq!(causes[0].reason, "NamespaceTerminating");
    assert_eq!(causes[0].field, "metadata.namespace");

    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    tokio::time::sleep(GC * 3).await;
    assert!(namespaces.get_opt("exec").await.unwrap().is_none());
}

fn job(env: Value, resources: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "wfe-0123456789abcdef"},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "workflow", "image": "img", "env": env, "resources": resources}]}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_validation_answers_as_the_api_server() {
    let emu = emulator().await;
    let c = emu.client();
    let jobs = api(&c, "exec", &kit::jobs());
    // An environment variable name the API server refuses: 422 Invalid.
    let e = api_error(
        create(
            &jobs,
            job(json!([{"name": "1ST", "value": "x"}]), json!({})),
        )
        .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message.starts_with("Job.batch \"wfe-0123456789abcdef\" is invalid: spec.template.spec.containers[0].env[0].name: Invalid value: \"1ST\": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit"),
        "{}",
        e.message
    );
    let cause = &e.details.expect("details").causes[0];
    assert_eq!(cause.reason, "FieldValueInvalid");
    assert_eq!(cause.field, "spec.template.spec.containers[0].env[0].name");

    // A request above its limit.
    let e = api_error(
        create(
            &jobs,
            job(
                json!([]),
                json!({"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}),
            ),
        )
        .await,
    );
    assert_eq!(e.code, 422);
    assert!(e.message.contains("spec.template.spec.containers[0].resources.requests: Invalid value: \"2Gi\": must be less than or equal to memory limit of 1Gi"), "{}", e.message);

    // A malformed quantity: the body cannot be decoded (400).
    let e = api_error(create(&jobs, job(json!([]), json!({"limits": {"memory": "2 GB"}}))).await);
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    assert!(e.message.starts_with("Job in version \"v1\" cannot be handled as a Job: quantities must match the regular expression"), "{}", e.message);

    // Tekton's validating webhook (400) and its defaulting webhook.
    let prs = api(&c, "exec", &kit::pipelineruns());
    let e = api_error(
        create(
            &prs,
            json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
        "metadata": {"name": "no-ref"}, "spec": {}}),
        )
        .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    assert_eq!(e.message, "admission webhook \"validation.webhook.pipeline.tekton.dev\" denied the request: validation failed: expected exactly one, got neither: spec.pipelineRef, spec.pipelineSpec");
    let pr = create(&prs, pipeline_run("defaulted")).await.unwrap();
    assert_eq!(pr["spec"]["timeouts"]["pipeline"], "1h0m0s");
    assert_eq!(
        pr["spec"]["taskRunTemplate"]["serviceAccountName"],
        "default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_quota_pod_security_webhook_and_rbac_refusals() {
    let emu = emulator().await;
    let c = emu.client();
    let adm = emu.admission();
    let jobs = api(&c, "exec", &kit::jobs());
    let one = |name: &str| {
        let mut j = job(json!([]), json!({}));
        j["metadata"]["name"] = json!(name);
        j
    };
    adm.quota(Quota {
        namespace: "exec".into(),
        name: "runs".into(),
        resource: "count/jobs.batch".into(),
        hard: 1,
    });
    create(&jobs, one("first")).await.unwrap();
    let e = api_error(create(&jobs, one("second")).await);
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(e.message, "jobs.batch \"second\" is forbidden: exceeded quota: runs, requested: count/jobs.batch=1, used: count/jobs.batch=1, limited: count/jobs.batch=1");
    adm.clear();

    adm.pod_security("exec", PodSecurityLevel::Restricted);
    let pods = api(&c, "exec", &kit::pods());
    let e = api_error(create(&pods, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "step"},
        "spec": {"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "step-run", "image": "i"}]}})).await);
    assert_eq!(e.code, 403);
    assert_eq!(e.message, "pods \"step\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"step-run\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"step-run\" must set securityContext.capabilities.drop=[\"ALL\"])");
    adm.clear();

    adm.deny(
        WebhookDenial::new(
            "validation.gatekeeper.sh",
            "[team-label] you must provide labels: {\"team\"}",
        )
        .namespace("exec")
        .kind("Job"),
    );
    let e = api_error(create(&jobs, one("third")).await);
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(e.message, "admission webhook \"validation.gatekeeper.sh\" denied the request: [team-label] you must provide labels: {\"team\"}");
    adm.clear();

    adm.forbid_rbac(
        "exec",
        "Job",
        "system:serviceaccount:kubernaut-system:wfe-engine",
    );
    let e = api_error(create(&jobs, one("fourth")).await);
    assert_eq!(e.code, 403);
    assert_eq!(e.message, "jobs.batch is forbidden: User \"system:serviceaccount:kubernaut-system:wfe-engine\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"exec\"");
}

fn wfe_doc(name: &str, params: Value, secrets: Value) -> Value {
    json!({"apiVersion": "kubernaut.ai/v1alpha1", "kind": "WorkflowExecution",
        "metadata": {"name": name},
        "spec": {"remediationRequestRef": {"name": "rr"},
            "workflowRef": {"workflowId": "w", "workflowName": "w", "actionType": "a", "version": "1",
                "executionBundle": "img", "executionEngine": "job", "dependencies": {"secrets": secrets}},
            "targetResource": "exec/Deployment/x", "parameters": params}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_crd_rejects_what_the_cluster_would_reject_later() {
    let emu = emulator().await;
    let wfes = api(
        &emu.client(),
        "exec",
        &kube::discovery::ApiResource::erase::<wfe_engine::api::WorkflowExecution>(&()),
    );
    for bad in ["1ST", "A=B", "WITH SPACE", "..X", "."] {
        let e = api_error(create(&wfes, wfe_doc("p", json!({bad: "v"}), json!([]))).await);
        assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"), "{bad}");
        assert!(e.message.contains("spec.parameters: Invalid value: \"object\": parameter names must be valid environment variable names"), "{bad}: {}", e.message);
    }
    create(
        &wfes,
        wfe_doc(
            "ok",
            json!({"REPLICAS": "3", "my.env-name": "x", "_X": "y"}),
            json!([]),
        ),
    )
    .await
    .expect("valid names accepted");
    let e = api_error(
        create(
            &wfes,
            wfe_doc("s", json!({}), json!([{"name": "My_Secret"}])),
        )
        .await,
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains(
            "spec.workflowRef.dependencies.secrets[0].name: Invalid value: \"My_Secret\""
        ),
        "{}",
        e.message
    );

    let long = "w".repeat(237);
    let e = api_error(create(&wfes, wfe_doc(&long, json!({}), json!([]))).await);
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("metadata.name: Too long"),
        "{}",
        e.message
    );
    create(&wfes, wfe_doc(&"w".repeat(236), json!({}), json!([])))
        .await
        .expect("236 characters accepted");
}
