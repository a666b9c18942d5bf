//! Tests of the API emulator and the execution simulator, with kube-rs as
//! the client (the way the controller will talk to them).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::{json, Value};
use support::harness::eventually;
use support::simulator::{kit, Scenario, SimConfig, Simulator};
use support::{Emulator, FaultRule, Verb};
use wfe_engine::api::WorkflowExecution;

fn api_err(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels.iter().cloned().collect::<BTreeMap<_, _>>()},
        "data": {"k": "v"},
    }))
    .unwrap()
}

fn wfe_json(name: &str) -> Value {
    json!({
        "apiVersion": "kubernaut.ai/v1alpha1",
        "kind": "WorkflowExecution",
        "metadata": {"name": name},
        "spec": {
            "remediationRequestRef": {"name": "rr-1", "kind": "RemediationRequest", "namespace": "default"},
            "workflowRef": {
                "workflowId": "wf-1", "workflowName": "restart", "actionType": "RestartPod",
                "version": "1.0.0", "executionBundle": "quay.io/x/y@sha256:abc", "executionEngine": "tekton"
            },
            "targetResource": "default/Deployment/web",
        }
    })
}

fn wfe(name: &str) -> WorkflowExecution {
    serde_json::from_value(wfe_json(name)).unwrap()
}

#[tokio::test]
async fn create_get_conflicts_and_not_found_are_proper_statuses() {
    let emu = Emulator::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    let created = cms
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let rv1: u64 = created.resource_version().unwrap().parse().unwrap();

    let dup = api_err(
        cms.create(&PostParams::default(), &cm("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(dup.message, "configmaps \"a\" already exists");

    let missing = api_err(cms.get("nope").await.unwrap_err());
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));

    // Replace with the current version works and bumps the version ...
    let mut fresh = cms.get("a").await.unwrap();
    fresh.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = cms
        .replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert!(replaced.resource_version().unwrap().parse::<u64>().unwrap() > rv1);
    // ... a stale one is a 409 Conflict.
    let stale = api_err(
        cms.replace("a", &PostParams::default(), &created)
            .await
            .unwrap_err(),
    );
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));

    // A no-op write does not move the resourceVersion.
    let again = cms
        .replace("a", &PostParams::default(), &replaced)
        .await
        .unwrap();
    assert_eq!(again.resource_version(), replaced.resource_version());

    // Delete preconditions.
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("wrong".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let pre = api_err(cms.delete("a", &dp).await.unwrap_err());
    assert_eq!(pre.code, 409);
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_err(cms.get("a").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn custom_resources_need_a_resource_version_on_put_and_refuse_strategic_merge() {
    let emu = Emulator::start().await;
    let wfes: Api<WorkflowExecution> = Api::namespaced(emu.client(), "default");
    let mut w = wfes
        .create(&PostParams::default(), &wfe("w"))
        .await
        .unwrap();
    w.metadata.resource_version = None;
    let e = api_err(
        wfes.replace("w", &PostParams::default(), &w)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    let e = api_err(
        wfes.patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 415);
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let emu = Emulator::start().await;
    let jobs: Api<Job> = Api::namespaced(emu.client(), "default");
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
        "status": {"succeeded": 5}
    }))
    .unwrap();
    let created = jobs.create(&PostParams::default(), &job).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(
        created.status.as_ref().and_then(|s| s.succeeded),
        None,
        "create drops status"
    );

    let st = jobs
        .patch_status(
            "j",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"active": 1}, "spec": {"parallelism": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(st.status.as_ref().and_then(|s| s.active), Some(1));
    assert_eq!(
        st.spec.as_ref().and_then(|s| s.parallelism),
        None,
        "status writes leave spec alone"
    );
    assert_eq!(st.metadata.generation, Some(1));

    let sp = jobs
        .patch(
            "j",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"parallelism": 2}, "status": {"active": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(
        sp.status.as_ref().and_then(|s| s.active),
        Some(1),
        "main writes leave status alone"
    );
    assert_eq!(sp.metadata.generation, Some(2));
    let lb = jobs
        .patch(
            "j",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        lb.metadata.generation,
        Some(2),
        "metadata changes keep the generation"
    );
}

#[tokio::test]
async fn label_and_field_selectors_and_pagination() {
    let emu = Emulator::start().await;
    let client = emu.client();
    for ns in ["a", "b"] {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        for i in 0..5 {
            let tier = if i % 2 == 0 { "web" } else { "db" };
            let mut labels = vec![("tier", tier)];
            if i == 4 {
                labels.push(("special", "yes"));
            }
            cms.create(&PostParams::default(), &cm(&format!("c{i}"), &labels))
                .await
                .unwrap();
        }
    }
    let all: Api<ConfigMap> = Api::all(client.clone());
    let names = |l: kube::api::ObjectList<ConfigMap>| {
        l.items
            .iter()
            .map(|c| format!("{}/{}", c.namespace().unwrap(), c.name_any()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        10
    );
    let web = all
        .list(&ListParams::default().labels("tier=web"))
        .await
        .unwrap();
    assert_eq!(web.items.len(), 6);
    let set = all
        .list(&ListParams::default().labels("tier in (db),!special"))
        .await
        .unwrap();
    assert_eq!(set.items.len(), 4);
    let notin = all
        .list(&ListParams::default().labels("tier notin (web)"))
        .await
        .unwrap();
    assert_eq!(notin.items.len(), 4);
    let f = all
        .list(&ListParams::default().fields("metadata.namespace=b,metadata.name!=c0"))
        .await
        .unwrap();
    assert_eq!(names(f), vec!["b/c1", "b/c2", "b/c3", "b/c4"]);
    let bad = api_err(
        all.list(&ListParams::default().fields("data.k=v"))
            .await
            .unwrap_err(),
    );
    assert_eq!(bad.code, 400);

    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(3);
    loop {
        let page = all.list(&lp).await.unwrap();
        let cont = page.metadata.continue_.clone();
        seen.extend(names(page));
        match cont {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(seen.len(), 10);
    let mut dedup = seen.clone();
    dedup.dedup();
    assert_eq!(dedup, seen);
}

#[tokio::test]
async fn crd_schema_is_enforced_and_spec_is_immutable() {
    let emu = Emulator::start().await;
    let raw: Api<DynamicObject> = Api::namespaced_with(
        emu.client(),
        "default",
        &kit::resource(
            "kubernaut.ai",
            "v1alpha1",
            "WorkflowExecution",
            "workflowexecutions",
        ),
    );
    let mut missing = wfe_json("bad");
    missing["spec"]
        .as_object_mut()
        .unwrap()
        .remove("targetResource");
    let e = api_err(
        raw.create(
            &PostParams::default(),
            &serde_json::from_value(missing).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message.contains("spec.targetResource: Required value"),
        "{}",
        e.message
    );

    let mut engine = wfe_json("bad2");
    engine["spec"]["workflowRef"]["executionEngine"] = json!("argo");
    let e = api_err(
        raw.create(
            &PostParams::default(),
            &serde_json::from_value(engine).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        e.message
            .contains("spec.workflowRef.executionEngine: Unsupported value: \"argo\""),
        "{}",
        e.message
    );

    let mut typed = wfe_json("bad3");
    typed["spec"]["confidence"] = json!("high");
    let e = api_err(
        raw.create(
            &PostParams::default(),
            &serde_json::from_value(typed).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        e.message.contains("must be of type number"),
        "{}",
        e.message
    );

    // Unknown fields are pruned, as for any structural schema.
    let mut extra = wfe_json("ok");
    extra["spec"]["bogus"] = json!(1);
    let created = raw
        .create(
            &PostParams::default(),
            &serde_json::from_value(extra).unwrap(),
        )
        .await
        .unwrap();
    assert!(created.data["spec"].get("bogus").is_none());

    let wfes: Api<WorkflowExecution> = Api::namespaced(emu.client(), "default");
    let e = api_err(
        wfes.patch_status(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Exploded"}})),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        e.message.contains("status.phase: Unsupported value"),
        "{}",
        e.message
    );
    let e = api_err(
        wfes.patch_status(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"failureDetails": {"reason": "not pascal", "message": "m",
                "failedAt": "2024-01-01T00:00:00Z", "naturalLanguageSummary": "s"}}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        e.message.contains("should match '^[A-Z][A-Za-z0-9]*$'"),
        "{}",
        e.message
    );
    wfes.patch_status(
        "ok",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap();

    let e = api_err(
        wfes.patch(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"targetResource": "x/y/z"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .contains("spec: Invalid value: \"object\": spec is immutable after creation"),
        "{}",
        e.message
    );
    // Metadata stays writable.
    wfes.patch(
        "ok",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn json_patch_test_operation_and_server_side_apply() {
    let emu = Emulator::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    cms.create(&PostParams::default(), &cm("p", &[]))
        .await
        .unwrap();
    let failing: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/k", "value": "other"},
        {"op": "replace", "path": "/data/k", "value": "new"},
    ]))
    .unwrap();
    let e = api_err(
        cms.patch("p", &PatchParams::default(), &Patch::<()>::Json(failing))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert_eq!(cms.get("p").await.unwrap().data.unwrap()["k"], "v");
    let ok: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/k", "value": "v"},
        {"op": "replace", "path": "/data/k", "value": "new"},
    ]))
    .unwrap();
    cms.patch("p", &PatchParams::default(), &Patch::<()>::Json(ok))
        .await
        .unwrap();
    assert_eq!(cms.get("p").await.unwrap().data.unwrap()["k"], "new");

    let ssa = PatchParams::apply("tester").force();
    let applied = cms
        .patch(
            "fresh",
            &ssa,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "fresh"}, "data": {"a": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["a"], "1");
    let merged = cms
        .patch(
            "fresh",
            &ssa,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "fresh"}, "data": {"b": "2"}})),
        )
        .await
        .unwrap();
    // The manager no longer applies `a`, and nobody else owns it: removed.
    let data = merged.data.unwrap();
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data["b"], "2");
}

/// Server-side apply's field ownership, as kube-apiserver keeps it: an
/// apply that would change another manager's field is a 409 naming the
/// manager and the field; the same value is shared; `force` takes the
/// field; an update takes what it changed and never conflicts; a field
/// still owned by another manager survives its applier dropping it.
#[tokio::test]
async fn server_side_apply_tracks_field_owners() {
    let emu = Emulator::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    let body = |data: Value| {
        Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "owned"}, "data": data}))
    };
    cms.patch(
        "owned",
        &PatchParams::apply("alice"),
        &body(json!({"k": "a", "x": "1"})),
    )
    .await
    .unwrap();

    let err = api_err(
        cms.patch(
            "owned",
            &PatchParams::apply("bob"),
            &body(json!({"k": "b"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert_eq!(err.reason, "Conflict");
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"alice\": .data.k"
    );
    assert_eq!(cms.get("owned").await.unwrap().data.unwrap()["k"], "a");

    // The same value: shared ownership, no conflict.
    cms.patch(
        "owned",
        &PatchParams::apply("bob"),
        &body(json!({"k": "a"})),
    )
    .await
    .unwrap();
    // Forced: bob takes `k`; alice keeps only `x`.
    let forced = cms
        .patch(
            "owned",
            &PatchParams::apply("bob").force(),
            &body(json!({"k": "b"})),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["k"], "b");
    let owners = |cm: &ConfigMap| -> Vec<(String, String, Value)> {
        cm.metadata
            .managed_fields
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                (
                    e.manager.unwrap_or_default(),
                    e.operation.unwrap_or_default(),
                    e.fields_v1.map(|f| f.0).unwrap_or_default(),
                )
            })
            .collect()
    };
    assert_eq!(
        owners(&forced),
        vec![
            (
                "alice".into(),
                "Apply".into(),
                json!({"f:data": {"f:x": {}}})
            ),
            ("bob".into(), "Apply".into(), json!({"f:data": {"f:k": {}}})),
        ]
    );

    // An update never conflicts and takes what it changed.
    let updated = cms
        .patch(
            "owned",
            &PatchParams {
                field_manager: Some("carol".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"data": {"x": "2"}})),
        )
        .await
        .unwrap();
    // alice owned only `x`: her entry is gone.
    assert_eq!(
        owners(&updated),
        vec![
            ("bob".into(), "Apply".into(), json!({"f:data": {"f:k": {}}})),
            (
                "carol".into(),
                "Update".into(),
                json!({"f:data": {"f:x": {}}})
            ),
        ]
    );

    // bob stops applying `k`, which nobody else owns: removed. He applies
    // `x` with its current value: shared with carol. Then he drops `x`
    // too: carol still owns it, so it stays.
    cms.patch(
        "owned",
        &PatchParams::apply("bob"),
        &body(json!({"x": "2"})),
    )
    .await
    .unwrap();
    let after = cms.get("owned").await.unwrap();
    let data = after.data.unwrap();
    assert!(!data.contains_key("k"), "{data:?}");
    assert_eq!(data["x"], "2", "shared with carol: kept");
    cms.patch("owned", &PatchParams::apply("bob"), &body(json!({})))
        .await
        .unwrap();
    assert_eq!(cms.get("owned").await.unwrap().data.unwrap()["x"], "2");

    // An Update manager is named with its version and time.
    let err = api_err(
        cms.patch(
            "owned",
            &PatchParams::apply("dave"),
            &body(json!({"x": "3"})),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        err.message
            .starts_with("Apply failed with 1 conflict: conflict with \"carol\" using v1 at "),
        "{}",
        err.message
    );
    assert!(err.message.ends_with(": .data.x"), "{}", err.message);
}

#[tokio::test]
async fn finalizers_and_garbage_collection() {
    let emu = Emulator::start().await;
    let client = emu.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut f = cm("fin", &[]);
    f.metadata.finalizers = Some(vec!["x/y".into()]);
    cms.create(&PostParams::default(), &f).await.unwrap();
    cms.delete("fin", &DeleteParams::default()).await.unwrap();
    let held = cms.get("fin").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    let e = api_err(
        cms.patch(
            "fin",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["x/y", "z/w"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422, "no new finalizers while deleting");
    cms.patch(
        "fin",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_err(cms.get("fin").await.unwrap_err()).code, 404);

    // PipelineRun -> TaskRun (background by default).
    let prs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &kit::pipelineruns());
    let trs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &kit::taskruns());
    let pr = prs
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"name": "pr"}, "spec": {}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let pr_v = serde_json::to_value(&pr).unwrap();
    trs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
        "metadata": {"name": "tr", "ownerReferences": [kit::owner_ref(&pr_v)]}, "spec": {}}))
        .unwrap(),
    )
    .await
    .unwrap();
    prs.delete("pr", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_err(trs.get("tr").await.unwrap_err()).code, 404);

    // Job -> Pod: the batch API orphans by default; Background collects.
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (job_name, dp, pod_survives) in [
        ("j1", DeleteParams::default(), true),
        ("j2", DeleteParams::background(), false),
    ] {
        let job: Job = serde_json::from_value(json!({"metadata": {"name": job_name},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}))
        .unwrap();
        let job =
            serde_json::to_value(jobs.create(&PostParams::default(), &job).await.unwrap()).unwrap();
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": format!("{job_name}-pod"),
            "ownerReferences": [kit::owner_ref(&job)]}, "spec": {"containers": [{"name": "c", "image": "i"}]}})).unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        jobs.delete(job_name, &dp).await.unwrap();
        let got = pods.get(&format!("{job_name}-pod")).await;
        assert_eq!(got.is_ok(), pod_survives, "{job_name}");
        if let Ok(p) = got {
            assert!(p.metadata.owner_references.unwrap_or_default().is_empty());
        }
    }
}

/// Random writes while watches are dropped and history is compacted: the
/// reflector must end up equal to the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_survives_dropped_watches_and_410() {
    let emu = Emulator::builder().history_limit(50).start().await;
    let client = emu.client();
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(
        writer,
        watcher(
            Api::<ConfigMap>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = counter.clone();
    let drive = tokio::spawn(async move {
        let mut s = std::pin::pin!(stream);
        while s.next().await.is_some() {
            c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    reader.wait_until_ready().await.unwrap();
    use rand::Rng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    use rand::SeedableRng;
    for round in 0..400 {
        let ns = ["default", "other"][rng.gen_range(0..2)];
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let name = format!("cm{}", rng.gen_range(0..20));
        match rng.gen_range(0..3) {
            0 => {
                let _ = cms.create(&PostParams::default(), &cm(&name, &[])).await;
            }
            1 => {
                let _ = cms
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"data": {"r": round.to_string()}})),
                    )
                    .await;
            }
            _ => {
                let _ = cms.delete(&name, &DeleteParams::default()).await;
            }
        }
        if round % 100 == 50 {
            emu.faults().close_watches();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        if round == 200 {
            emu.force_gone();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    let server: Api<ConfigMap> = Api::all(client.clone());
    eventually("reflector converges", Duration::from_secs(10), || {
        let reader = reader.clone();
        let server = server.clone();
        async move {
            let want: BTreeMap<String, String> = server
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|c| {
                    (
                        format!("{}/{}", c.namespace().unwrap(), c.name_any()),
                        c.resource_version().unwrap(),
                    )
                })
                .collect();
            let got: BTreeMap<String, String> = reader
                .state()
                .iter()
                .map(|c| {
                    (
                        format!("{}/{}", c.namespace().unwrap(), c.name_any()),
                        c.resource_version().unwrap(),
                    )
                })
                .collect();
            want == got
        }
    })
    .await;
    let watches = emu
        .log()
        .count(|e| e.verb == Verb::Watch && e.status == 200);
    let lists = emu
        .log()
        .count(|e| e.verb == Verb::List && e.kind == "ConfigMap");
    assert!(watches >= 3, "watches were re-established ({watches})");
    assert!(lists >= 2, "the 410 forced a re-list ({lists})");
    drive.abort();
}

/// A raw watch: initial events, resume from a version, bookmarks, 410, timeout.
#[tokio::test]
async fn watch_protocol() {
    let emu = Emulator::builder()
        .bookmark_interval(Duration::from_millis(50))
        .start()
        .await;
    let cms: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    let first = cms
        .create(&PostParams::default(), &cm("w1", &[]))
        .await
        .unwrap();
    let rv1 = first.resource_version().unwrap();
    cms.create(&PostParams::default(), &cm("w2", &[]))
        .await
        .unwrap();

    // From "0": the current objects as ADDED.
    let wp = WatchParams::default().timeout(1);
    let mut s = cms.watch(&wp, "0").await.unwrap().boxed();
    let mut added = Vec::new();
    while added.len() < 2 {
        if let WatchEvent::Added(o) = s.next().await.unwrap().unwrap() {
            added.push(o.name_any());
        }
    }
    assert_eq!(added, vec!["w1", "w2"]);

    // From rv1: only later changes, then a bookmark, then the server ends the stream.
    let mut s = cms
        .watch(&WatchParams::default().timeout(1), &rv1)
        .await
        .unwrap()
        .boxed();
    match s.next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.name_any(), "w2"),
        other => panic!("unexpected {other:?}"),
    }
    let mut saw_bookmark = false;
    while let Some(ev) = s.next().await {
        if let WatchEvent::Bookmark(_) = ev.unwrap() {
            saw_bookmark = true;
        }
    }
    assert!(
        saw_bookmark,
        "bookmarks arrive and timeoutSeconds ends the stream"
    );

    // Streaming-list semantics: initial events end with a marked bookmark.
    let mut s = cms
        .watch(&WatchParams::streaming_lists().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    let mut n = 0;
    loop {
        match s.next().await.unwrap().unwrap() {
            WatchEvent::Added(_) => n += 1,
            WatchEvent::Bookmark(b) => {
                assert!(b
                    .metadata
                    .annotations
                    .contains_key("k8s.io/initial-events-end"));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(n, 2);

    // After compaction the old version is Gone, as an ERROR event.
    emu.force_gone();
    let mut s = cms
        .watch(&WatchParams::default(), &rv1)
        .await
        .unwrap()
        .boxed();
    match s.next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_watcher_works() {
    let emu = Emulator::start().await;
    let client = emu.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("s1", &[]))
        .await
        .unwrap();
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(
        writer,
        watcher(cms.clone(), watcher::Config::default().streaming_lists()),
    )
    .default_backoff()
    .touched_objects();
    let drive = tokio::spawn(async move { stream.for_each(|_| async {}).await });
    reader.wait_until_ready().await.unwrap();
    cms.create(&PostParams::default(), &cm("s2", &[]))
        .await
        .unwrap();
    eventually("two objects", Duration::from_secs(5), || {
        let r = reader.clone();
        async move { r.state().len() == 2 }
    })
    .await;
    drive.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reconciles_and_finalizer_helper_works() {
    use kube::runtime::controller::Action;
    use kube::runtime::finalizer::{finalizer, Event as FinEvent};
    use kube::runtime::Controller;

    #[derive(Debug, thiserror::Error)]
    #[error("reconcile failed: {0}")]
    struct Oops(String);

    let emu = Emulator::start().await;
    let client = emu.client();
    let wfes: Api<WorkflowExecution> = Api::namespaced(client.clone(), "default");
    let cleaned = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ctx = Arc::new((wfes.clone(), cleaned.clone()));
    let controller = Controller::new(Api::<WorkflowExecution>::all(client.clone()), watcher::Config::default())
        .run(
            |obj: Arc<WorkflowExecution>, ctx: Arc<(Api<WorkflowExecution>, Arc<std::sync::atomic::AtomicUsize>)>| async move {
                let api: Api<WorkflowExecution> = Api::namespaced(ctx.0.clone().into_client(), &obj.namespace().unwrap());
                finalizer(&api, wfe_engine::api::FINALIZER, obj, |ev| async {
                    match ev {
                        FinEvent::Apply(w) => {
                            api.patch_status(
                                &w.name_any(),
                                &PatchParams::default(),
                                &Patch::Merge(json!({"status": {"phase": "Running", "observedGeneration": w.metadata.generation}})),
                            )
                            .await
                            .map_err(|e| Oops(e.to_string()))?;
                            Ok::<_, Oops>(Action::await_change())
                        }
                        FinEvent::Cleanup(_) => {
                            ctx.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            Ok(Action::await_change())
                        }
                    }
                })
                .await
                .map_err(|e| Oops(e.to_string()))
            },
            |_, _, _| Action::requeue(Duration::from_millis(50)),
            ctx,
        )
        .for_each(|_| async {});
    let task = tokio::spawn(controller);
    for i in 0..5 {
        wfes.create(&PostParams::default(), &wfe(&format!("c{i}")))
            .await
            .unwrap();
    }
    eventually("all reconciled", Duration::from_secs(10), || {
        let wfes = wfes.clone();
        async move {
            let l = wfes.list(&ListParams::default()).await.unwrap();
            l.items.iter().all(|w| {
                w.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    && w.finalizers()
                        .iter()
                        .any(|f| f == wfe_engine::api::FINALIZER)
            })
        }
    })
    .await;
    wfes.delete("c0", &DeleteParams::default()).await.unwrap();
    eventually(
        "finalizer cleanup ran and object is gone",
        Duration::from_secs(10),
        || {
            let wfes = wfes.clone();
            let cleaned = cleaned.clone();
            async move {
                wfes.get_opt("c0").await.unwrap().is_none()
                    && cleaned.load(std::sync::atomic::Ordering::SeqCst) == 1
            }
        },
    )
    .await;
    task.abort();
}

#[tokio::test]
async fn faults_errors_latency_pause_and_request_log() {
    let emu = Emulator::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    emu.faults()
        .fail(Some(Verb::Create), Some("ConfigMap"), 1.0, 503);
    let e = api_err(
        cms.create(&PostParams::default(), &cm("f", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 503);
    emu.faults().clear();
    cms.create(&PostParams::default(), &cm("f", &[]))
        .await
        .unwrap();

    emu.faults()
        .add_rule(FaultRule::new(Some(Verb::Get), None).latency(Duration::from_millis(120)));
    let t = std::time::Instant::now();
    cms.get("f").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(120));
    emu.faults().clear();

    emu.faults().set_conflict_rate(1.0);
    let mut cur = cms.get("f").await.unwrap();
    cur.data = Some([("z".to_string(), "1".to_string())].into());
    assert_eq!(
        api_err(
            cms.replace("f", &PostParams::default(), &cur)
                .await
                .unwrap_err()
        )
        .code,
        409
    );
    emu.faults().clear();

    emu.faults().pause();
    let slow = tokio::spawn({
        let cms = cms.clone();
        async move { cms.get("f").await.is_ok() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!slow.is_finished(), "paused server holds requests");
    emu.faults().resume();
    assert!(slow.await.unwrap());

    assert_eq!(emu.log().count_verb(Verb::Create, "ConfigMap"), 2);
    assert_eq!(emu.log().count_ok(Verb::Create, "ConfigMap"), 1);
    assert!(emu
        .log()
        .entries()
        .iter()
        .any(|e| e.status == 503 && e.path == "/api/v1/namespaces/default/configmaps"));
}

#[tokio::test]
async fn discovery_finds_every_kind() {
    let emu = Emulator::start().await;
    let d = kube::discovery::Discovery::new(emu.client())
        .run()
        .await
        .unwrap();
    let mut kinds = Vec::new();
    for g in d.groups() {
        for (ar, caps) in g.recommended_resources() {
            kinds.push(format!(
                "{}/{} status={}",
                ar.api_version,
                ar.kind,
                caps.subresources.iter().any(|s| s.0.plural == "status")
            ));
        }
    }
    for want in [
        "kubernaut.ai/v1alpha1/WorkflowExecution status=true",
        "tekton.dev/v1/PipelineRun status=true",
        "tekton.dev/v1/TaskRun status=true",
        "batch/v1/Job status=true",
        "v1/Pod status=true",
        "v1/Secret status=false",
        "events.k8s.io/v1/Event status=false",
        "coordination.k8s.io/v1/Lease status=false",
    ] {
        assert!(
            kinds.iter().any(|k| k == want),
            "{want} missing from {kinds:?}"
        );
    }
}

#[tokio::test]
async fn kubectl_applies_the_crd_and_a_workflowexecution() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        println!("SKIPPED: kubectl is not on PATH");
        return;
    }
    let emu = Emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = emu.write_kubeconfig(dir.path()).unwrap();
    let crd = dir.path().join("crd.yaml");
    std::fs::write(&crd, wfe_engine::api::crd_yaml()).unwrap();
    let wfe_file = dir.path().join("wfe.yaml");
    std::fs::write(
        &wfe_file,
        serde_yaml::to_string(&wfe_json("from-kubectl")).unwrap(),
    )
    .unwrap();
    let kubectl = |args: Vec<String>| {
        let kc = kc.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(&kc)
                    .args(&args)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    for f in [&crd, &wfe_file] {
        // The emulator serves no OpenAPI documents, so client-side validation is off.
        let out = kubectl(vec![
            "apply".into(),
            "--validate=false".into(),
            "-f".into(),
            f.display().to_string(),
        ])
        .await;
        assert!(
            out.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = kubectl(vec![
        "get".into(),
        "wfe".into(),
        "from-kubectl".into(),
        "-o".into(),
        "json".into(),
    ])
    .await;
    assert!(
        out.status.success(),
        "kubectl get: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["spec"]["targetResource"], "default/Deployment/web");
    let out = kubectl(vec![
        "get".into(),
        "crd".into(),
        "workflowexecutions.kubernaut.ai".into(),
        "-o".into(),
        "name".into(),
    ])
    .await;
    assert!(
        out.status.success(),
        "kubectl get crd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Applying again is a no-op patch.
    let out = kubectl(vec![
        "apply".into(),
        "--validate=false".into(),
        "-f".into(),
        wfe_file.display().to_string(),
    ])
    .await;
    assert!(
        out.status.success(),
        "re-apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------- simulator

async fn run_pipeline(
    emu: &Emulator,
    sim: &Simulator,
    name: &str,
    labels: Value,
) -> (Value, Vec<Value>) {
    let _ = sim;
    let client = emu.client();
    let prs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &kit::pipelineruns());
    prs.create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
        "metadata": {"name": name, "labels": labels},
        "spec": {"pipelineSpec": {"tasks": [{"name": "prepare"}, {"name": "execute"}]}, "timeouts": {"pipeline": "10m0s"}}})).unwrap())
        .await
        .unwrap();
    eventually(&format!("{name} finishes"), Duration::from_secs(10), || {
        let prs = prs.clone();
        async move {
            let v = serde_json::to_value(prs.get(name).await.unwrap()).unwrap();
            v.pointer("/status/completionTime").is_some()
        }
    })
    .await;
    let done = serde_json::to_value(prs.get(name).await.unwrap()).unwrap();
    let trs: Api<DynamicObject> = Api::namespaced_with(client, "default", &kit::taskruns());
    let mut children = Vec::new();
    for c in done
        .pointer("/status/childReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let tr = trs.get(c["name"].as_str().unwrap()).await.unwrap();
        children.push(serde_json::to_value(tr).unwrap());
    }
    (done, children)
}

fn succeeded(v: &Value) -> (String, String, String) {
    let c = &v["status"]["conditions"][0];
    (
        c["status"].as_str().unwrap_or("").into(),
        c["reason"].as_str().unwrap_or("").into(),
        c["message"].as_str().unwrap_or("").into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_plays_tekton_scenarios() {
    let emu = Emulator::start().await;
    let sim = Simulator::start_with(
        emu.client(),
        SimConfig {
            step_delay: Duration::from_millis(2),
            ..Default::default()
        },
    );
    sim.set_scenario("by-name", Scenario::Oom);

    let (pr, kids) = run_pipeline(&emu, &sim, "ok", json!({})).await;
    assert_eq!(
        succeeded(&pr),
        (
            "True".into(),
            "Succeeded".into(),
            "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0".into()
        )
    );
    assert_eq!(kids.len(), 2);
    assert_eq!(
        kids[0]["metadata"]["labels"]["tekton.dev/pipelineRun"],
        "ok"
    );
    assert_eq!(
        kids[1]["metadata"]["labels"]["tekton.dev/pipelineTask"],
        "execute"
    );
    assert_eq!(
        kids[0]["metadata"]["ownerReferences"][0]["uid"],
        pr["metadata"]["uid"]
    );
    assert!(pr["status"]["startTime"].is_string());

    let (pr, kids) = run_pipeline(
        &emu,
        &sim,
        "fails",
        json!({"sim.kubernaut.ai/scenario": "failed:3"}),
    )
    .await;
    assert_eq!(succeeded(&pr).1, "Failed");
    assert_eq!(
        succeeded(&pr).2,
        "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 0"
    );
    assert_eq!(
        succeeded(&kids[1]),
        (
            "False".into(),
            "StepFailed".into(),
            "\"step-run\" exited with code 3: Error".into()
        )
    );
    assert_eq!(kids[1]["status"]["steps"][0]["terminated"]["exitCode"], 3);

    let (_, kids) = run_pipeline(&emu, &sim, "by-name", json!({})).await;
    assert_eq!(succeeded(&kids[1]).1, "StepOOM");
    assert_eq!(kids[1]["status"]["steps"][0]["terminated"]["exitCode"], 137);
    let pods: Api<Pod> = Api::namespaced(emu.client(), "default");
    let pod = pods.get("by-name-execute-pod").await.unwrap();
    let term = pod.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(
        (term.exit_code, term.reason.as_deref()),
        (137, Some("OOMKilled"))
    );

    let (_, kids) = run_pipeline(
        &emu,
        &sim,
        "pull",
        json!({"sim.kubernaut.ai/scenario": "imagepull"}),
    )
    .await;
    assert_eq!(succeeded(&kids[1]).1, "TaskRunImagePullFailed");
    assert!(succeeded(&kids[1])
        .2
        .starts_with("the step \"run\" in TaskRun \"pull-execute\" failed to pull the image"));

    let (pr, kids) = run_pipeline(
        &emu,
        &sim,
        "slowpoke",
        json!({"sim.kubernaut.ai/scenario": "timeout"}),
    )
    .await;
    assert_eq!(
        succeeded(&pr),
        (
            "False".into(),
            "PipelineRunTimeout".into(),
            "PipelineRun \"slowpoke\" failed to finish within \"10m0s\"".into()
        )
    );
    assert_eq!(succeeded(&kids[1]).1, "TaskRunCancelled");
    assert!(succeeded(&kids[1]).2.ends_with("has timed out."));

    let (pr, kids) = run_pipeline(
        &emu,
        &sim,
        "invalid",
        json!({"sim.kubernaut.ai/scenario": "validation"}),
    )
    .await;
    assert_eq!(succeeded(&pr).1, "ParameterMissing");
    assert!(kids.is_empty());
    assert!(pr["status"]["startTime"].is_string());

    let (_, kids) = run_pipeline(
        &emu,
        &sim,
        "denied",
        json!({"sim.kubernaut.ai/scenario": "forbidden"}),
    )
    .await;
    assert_eq!(succeeded(&kids[1]).1, "PodAdmissionFailed");
    assert!(succeeded(&kids[1])
        .2
        .contains("is forbidden: violates PodSecurity"));

    let (pr, kids) = run_pipeline(
        &emu,
        &sim,
        "quota",
        json!({"sim.kubernaut.ai/scenario": "quota"}),
    )
    .await;
    assert_eq!(succeeded(&pr).1, "PipelineRunTimeout");
    assert!(succeeded(&kids[1])
        .2
        .contains("Previous status: [ExceededResourceQuota]"));

    let (pr, kids) = run_pipeline(
        &emu,
        &sim,
        "stopped",
        json!({"sim.kubernaut.ai/scenario": "cancel"}),
    )
    .await;
    assert_eq!(
        succeeded(&pr),
        (
            "False".into(),
            "Cancelled".into(),
            "PipelineRun \"stopped\" was cancelled".into()
        )
    );
    assert_eq!(succeeded(&kids[1]).1, "TaskRunCancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_plays_job_scenarios() {
    let emu = Emulator::start().await;
    let sim = Simulator::start_with(
        emu.client(),
        SimConfig {
            step_delay: Duration::from_millis(2),
            ..Default::default()
        },
    );
    let jobs: Api<Job> = Api::namespaced(emu.client(), "default");
    let pods: Api<Pod> = Api::namespaced(emu.client(), "default");
    for (name, scenario, want_type, want_reason) in [
        ("job-ok", "success", "Complete", "CompletionsReached"),
        ("job-fail", "failed:2", "Failed", "BackoffLimitExceeded"),
        ("job-oom", "oom", "Failed", "BackoffLimitExceeded"),
        ("job-late", "timeout", "Failed", "DeadlineExceeded"),
        ("job-pull", "imagepull", "Failed", "DeadlineExceeded"),
    ] {
        // A 60 s deadline passes in 0.12 s on the simulator's clock.
        let job: Job = serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 60, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "workflow", "image": "img",
                "env": [{"name": "SIM_SCENARIO", "value": scenario}]}]}}}})).unwrap();
        jobs.create(&PostParams::default(), &job).await.unwrap();
        eventually(&format!("{name} ends"), Duration::from_secs(10), || {
            let jobs = jobs.clone();
            async move {
                let j = jobs.get(name).await.unwrap();
                j.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == want_type)
            }
        })
        .await;
        let j = jobs.get(name).await.unwrap();
        let conds = j.status.unwrap().conditions.unwrap();
        let c = conds.iter().find(|c| c.type_ == want_type).unwrap();
        assert_eq!(c.reason.as_deref(), Some(want_reason), "{name}");
        if name == "job-fail" {
            let p = pods
                .list(&ListParams::default().labels("batch.kubernetes.io/job-name=job-fail"))
                .await
                .unwrap();
            let term = p.items[0]
                .status
                .clone()
                .unwrap()
                .container_statuses
                .unwrap()[0]
                .state
                .clone()
                .unwrap()
                .terminated
                .unwrap();
            assert_eq!(term.exit_code, 2);
        }
    }
    assert!(sim.finished() >= 5);
}
