//! The controller on a cluster that says no: a create refused as invalid,
//! forbidden or over quota is a result the rules turn into a failure (once,
//! never retried), transient errors are retried, a missing or terminating
//! execution namespace holds every WFE (readable condition, event,
//! `/readyz`) until it is back, and event names stay valid whatever the
//! WFE's name.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::harness;

use std::time::Duration;

use harness::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use support::{FaultRule, Quota, Verb, WebhookDenial};

const T: Duration = Duration::from_secs(15);

/// Every write the controller attempted (successful or not) on `wfe` and on
/// execution objects: status and metadata patches, creates and deletes.
fn write_attempts(h: &Harness, wfe: &str) -> usize {
    h.emu.log().count(|e| {
        e.verb.is_write()
            && ((e.kind == "WorkflowExecution"
                && e.verb != Verb::Create
                && e.name.as_deref() == Some(wfe))
                || ((e.kind == "PipelineRun" || e.kind == "Job")
                    && matches!(e.verb, Verb::Create | Verb::Delete)))
    })
}

fn create_attempts(h: &Harness, kind: &str) -> usize {
    h.emu
        .log()
        .count(|e| e.verb == Verb::Create && e.kind == kind)
}

fn condition(w: &wfe_engine::api::WorkflowExecution, ty: &str) -> Option<(String, String, String)> {
    w.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == ty)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// A Job WFE whose memory request exceeds its limit: the API server refuses
/// the Job (422); nothing in the WFE's own schema says so.
fn over_limit(name: &str, target: &str) -> Value {
    let mut w = wfe(name, target, "job", None);
    w["spec"]["workflowRef"]["resources"] =
        json!({"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}});
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_invalid_job_fails_once_with_the_api_servers_message() {
    let h = Harness::start().await;
    h.create(NS, over_limit("bad", "team-a/Deployment/bad"))
        .await;
    let w = h.wait_phase(NS, "bad", "Failed", T).await;
    let st = w.status.clone().unwrap();
    let d = st.failure_details.clone().unwrap();
    assert_eq!(d.reason, "ConfigurationError");
    assert!(!d.was_execution_failure);
    let lock = lock("team-a/Deployment/bad");
    assert_eq!(
        d.message,
        format!("job execution resource refused by the API server (422 Invalid): Job.batch \"{lock}\" is invalid: spec.template.spec.containers[0].resources.requests: Invalid value: \"2Gi\": must be less than or equal to memory limit of 1Gi")
    );
    assert!(
        d.natural_language_summary.contains("ConfigurationError")
            || !d.natural_language_summary.is_empty()
    );
    let reasons = h.event_reasons(NS, "bad").await;
    assert!(
        reasons.contains(&"ExecutionRejected".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"WorkflowFailed".to_string()),
        "{reasons:?}"
    );
    assert!(h
        .audit
        .records()
        .iter()
        .any(|r| r.event_type.ends_with("workflow.failed")));
    // Never retried: one create, and at most 3 writes (finalizer, the
    // refused create, the status), none after.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(create_attempts(&h, "Job"), 1);
    let writes = write_attempts(&h, "bad");
    assert!(writes <= 3, "{writes} writes");
    h.dump_writes();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_forbidden_and_quota_refusals_are_results() {
    let h = Harness::start().await;
    h.emu.admission().deny(
        WebhookDenial::new(
            "validation.gatekeeper.sh",
            "[team-label] you must provide labels: {\"team\"}",
        )
        .namespace(EXEC_NS)
        .kind("Job"),
    );
    h.emu.admission().quota(Quota {
        namespace: EXEC_NS.into(),
        name: "runs".into(),
        resource: "count/pipelineruns.tekton.dev".into(),
        hard: 0,
    });
    h.create(NS, wfe("denied", "team-a/Deployment/denied", "job", None))
        .await;
    h.create(NS, wfe("quota", "team-a/Deployment/quota", "tekton", None))
        .await;
    let denied = h.wait_phase(NS, "denied", "Failed", T).await;
    let d = denied.status.unwrap().failure_details.unwrap();
    assert_eq!(d.reason, "Forbidden");
    assert!(
        d.message
            .contains("admission webhook \"validation.gatekeeper.sh\" denied the request"),
        "{}",
        d.message
    );
    let quota = h.wait_phase(NS, "quota", "Failed", T).await;
    let d = quota.status.unwrap().failure_details.unwrap();
    assert_eq!(d.reason, "ResourceExhausted");
    assert!(!d.was_execution_failure);
    assert!(
        d.message
            .contains("exceeded quota: runs, requested: count/pipelineruns.tekton.dev=1"),
        "{}",
        d.message
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(create_attempts(&h, "Job"), 1);
    assert_eq!(create_attempts(&h, "PipelineRun"), 1);
    // The rules decide what comes next: the next WFE on the quota-bound
    // target waits out a backoff (a counted pre-execution failure).
    h.emu.admission().clear();
    h.create(
        NS,
        wfe("quota-2", "team-a/Deployment/quota", "tekton", None),
    )
    .await;
    eventually("quota-2 held or running", T, || async {
        let w = h.get(NS, "quota-2").await;
        w.status
            .as_ref()
            .and_then(|s| s.blocked_reason.clone())
            .is_some()
            || phase_of(&w) == "Running"
    })
    .await;
    let w = h.get(NS, "quota-2").await;
    let blocked = w.status.and_then(|s| s.blocked_reason).unwrap_or_default();
    assert!(
        ["BackoffActive", "CooldownActive"].contains(&blocked.as_str()),
        "{blocked}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_transient_create_errors_are_retried_with_backoff() {
    let h = Harness::start().await;
    let rule = FaultRule::new(Some(Verb::Create), Some("PipelineRun")).error_rate(1.0, 503);
    h.emu.faults().add_rule(rule);
    h.create(NS, wfe("flaky", "team-a/Deployment/flaky", "tekton", None))
        .await;
    eventually("three refused creates", T, || async {
        create_attempts(&h, "PipelineRun") >= 3
    })
    .await;
    let w = h.get(NS, "flaky").await;
    assert_ne!(phase_of(&w), "Failed", "a 503 must not fail the WFE");
    h.emu.faults().clear();
    h.wait_phase(NS, "flaky", "Completed", T).await;
    h.stop().await;
}

async fn readyz(h: &Harness) -> String {
    h.readiness.problems().join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_missing_execution_namespace_holds_every_wfe_until_it_appears() {
    let h = Harness::start_with(Options {
        execution_namespace: false,
        ..Default::default()
    })
    .await;
    let names: Vec<String> = (0..5).map(|i| format!("held-{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        let engine = if i % 2 == 0 { "tekton" } else { "job" };
        h.create(
            NS,
            wfe(n, &format!("team-a/Deployment/held-{i}"), engine, None),
        )
        .await;
    }
    for n in &names {
        eventually(&format!("{n} held"), T, || async {
            condition(&h.get(NS, n).await, "Blocked").is_some()
        })
        .await;
        let w = h.get(NS, n).await;
        assert_eq!(phase_of(&w), "Pending");
        let (status, reason, message) = condition(&w, "Blocked").unwrap();
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("True", "ExecutionNamespaceUnavailable")
        );
        assert!(
            message.contains(&format!(
                "Execution namespace {EXEC_NS} is unavailable (Missing)"
            )),
            "{message}"
        );
        assert!(w.status.unwrap().next_allowed_execution.is_none());
        let events = h.events(NS, n).await;
        assert_eq!(
            events
                .iter()
                .filter(|(r, _)| r == "ExecutionNamespaceUnavailable")
                .count(),
            1,
            "{events:?}"
        );
    }
    let why = readyz(&h).await;
    assert!(
        why.contains(&format!("execution namespace {EXEC_NS} does not exist")),
        "{why}"
    );
    // Held, not spinning: nothing created, nothing written meanwhile.
    assert_eq!(
        create_attempts(&h, "PipelineRun") + create_attempts(&h, "Job"),
        0
    );
    let before = h.controller_writes();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.controller_writes(), before, "writes while held");

    // The namespace appears: everything proceeds.
    let namespaces: Api<Namespace> = Api::all(h.client());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": EXEC_NS}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    for n in &names {
        let w = h.wait_phase(NS, n, "Completed", T).await;
        assert!(condition(&w, "Blocked").is_none(), "{n} still blocked");
    }
    assert_eq!(readyz(&h).await, "");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_terminating_execution_namespace_holds_new_wfes() {
    let h = Harness::start().await;
    // Something in the namespace keeps it terminating for a while.
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(h.client(), EXEC_NS);
    let cm = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/keep"]}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let namespaces: Api<Namespace> = Api::all(h.client());
    namespaces
        .delete(EXEC_NS, &DeleteParams::default())
        .await
        .unwrap();
    eventually("readiness reports it", T, || async {
        readyz(&h).await.contains("is being terminated")
    })
    .await;
    h.create(NS, wfe("late", "team-a/Deployment/late", "job", None))
        .await;
    eventually("late held", T, || async {
        condition(&h.get(NS, "late").await, "Blocked").is_some()
    })
    .await;
    let (_, reason, message) = condition(&h.get(NS, "late").await, "Blocked").unwrap();
    assert_eq!(reason, "ExecutionNamespaceUnavailable");
    assert!(message.contains("(Terminating)"), "{message}");
    // The namespace finishes terminating, then is created again.
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("namespace gone", T, || async {
        namespaces.get_opt(EXEC_NS).await.unwrap().is_none()
    })
    .await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": EXEC_NS}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    h.wait_phase(NS, "late", "Completed", T).await;
    assert_eq!(readyz(&h).await, "");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_event_names_stay_valid_for_the_longest_wfe_names() {
    let h = Harness::start().await;
    // 236 characters (the CRD's limit) with a '-' where the old code cut
    // the name (200): that cut ended in '-' and every event was refused.
    let mut name: Vec<char> = "e".repeat(236).chars().collect();
    name[199] = '-';
    let name: String = name.into_iter().collect();
    h.create(NS, wfe(&name, "team-a/Deployment/long", "tekton", None))
        .await;
    h.wait_phase(NS, &name, "Completed", T).await;
    let reasons = h.event_reasons(NS, &name).await;
    assert!(
        reasons.contains(&"WorkflowCompleted".to_string()),
        "{reasons:?}"
    );
    h.stop().await;
}
