//! Target history end to end: backoff across consecutive pre-execution
//! failures and its reset, `PreviousExecutionFailed` and the clear-block
//! annotation, `ExhaustedRetries`, the cooldown hold, and `AuditRecorded`
//! when the audit sink refuses records.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::harness;

use std::sync::Arc;
use std::time::Duration;

use harness::*;
use jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use wfe_engine::api::{find_condition, WorkflowExecution, COND_AUDIT_RECORDED};
use wfe_engine::controller::{AuditError, AuditSink, InMemoryAuditSink};
use wfe_engine::engine::AuditRecord;

use support::Verb;

const T: Duration = Duration::from_secs(20);

fn status(w: &WorkflowExecution) -> wfe_engine::api::WorkflowExecutionStatus {
    w.status.clone().unwrap_or_default()
}

fn ts(t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Timestamp {
    t.as_ref().expect("timestamp set").0
}

fn secs_between(a: Timestamp, b: Timestamp) -> f64 {
    (b - a).total(jiff::Unit::Second).unwrap()
}

/// Wait until `f` holds for the WFE (and return it).
async fn wait_for(
    h: &Harness,
    name: &str,
    what: &str,
    f: impl Fn(&WorkflowExecution) -> bool,
) -> WorkflowExecution {
    let end = tokio::time::Instant::now() + T;
    let mut last = None;
    while tokio::time::Instant::now() < end {
        if let Ok(w) = h.wfes(NS).get(name).await {
            if f(&w) {
                return w;
            }
            last = Some(w);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{name}: {what} not reached; last status: {:?}",
        last.map(|w| w.status)
    );
}

fn held_by(w: &WorkflowExecution, reason: &str) -> bool {
    let st = status(w);
    phase_of(w) == "Pending"
        && st.blocked_reason.as_deref() == Some(reason)
        && st.next_allowed_execution.is_some()
}

async fn clear_block(h: &Harness, name: &str) {
    h.wfes(NS)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "kubernaut.ai/clear-block": "fixed the deployment by hand"}}})),
        )
        .await
        .expect("annotate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_holds_across_consecutive_pre_execution_failures_and_resets_on_success() {
    let h = Harness::start_with(Options {
        times: RuleTimes {
            cooldown: "500ms",
            backoff_base: "2s",
            backoff_max: "8s",
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let target = "team-a/Deployment/flaky";

    // A Tekton parameter error is a pre-execution failure (safe to retry).
    h.create(NS, wfe("b1", target, "tekton", Some("validation")))
        .await;
    let b1 = h.wait_phase(NS, "b1", "Failed", T).await;
    let d = status(&b1).failure_details.unwrap();
    assert_eq!(
        (d.reason.as_str(), d.was_execution_failure),
        ("ConfigurationError", false)
    );

    // One failure: held base (2 s ± 10 %) after it.
    h.create(NS, wfe("b2", target, "tekton", Some("validation")))
        .await;
    let held = wait_for(&h, "b2", "backoff hold", |w| held_by(w, "BackoffActive")).await;
    let st = status(&held);
    assert_eq!(st.consecutive_failures, Some(1), "{st:?}");
    let wait = secs_between(
        ts(&status(&b1).completion_time),
        ts(&st.next_allowed_execution),
    );
    // 2 s ± 10 %, written with second precision.
    assert!((0.8..=2.2).contains(&wait), "first backoff {wait}s");
    let b2 = h.wait_phase(NS, "b2", "Failed", T).await;
    assert!(ts(&status(&b2).start_time) >= ts(&st.next_allowed_execution));

    // Two failures: held base × 2 (4 s ± 10 %).
    h.create(NS, wfe("b3", target, "tekton", None)).await;
    let held = wait_for(&h, "b3", "backoff hold", |w| held_by(w, "BackoffActive")).await;
    let st = status(&held);
    assert_eq!(st.consecutive_failures, Some(2), "{st:?}");
    let wait = secs_between(
        ts(&status(&b2).completion_time),
        ts(&st.next_allowed_execution),
    );
    assert!((2.6..=4.4).contains(&wait), "second backoff {wait}s");
    let b3 = h.wait_phase(NS, "b3", "Completed", T).await;
    assert!(ts(&status(&b3).start_time) >= ts(&st.next_allowed_execution));

    // The success reset the count: only the short cooldown can hold b4
    // (without the reset it would wait 8 s).
    h.create(NS, wfe("b4", target, "tekton", None)).await;
    let b4 = h.wait_phase(NS, "b4", "Completed", T).await;
    let gap = secs_between(
        ts(&status(&b3).completion_time),
        ts(&status(&b4).start_time),
    );
    assert!(gap < 3.0, "b4 started {gap}s after the success");
    let reasons = h.event_reasons(NS, "b4").await;
    assert!(!reasons.iter().any(|r| r == "BackoffActive"), "{reasons:?}");
    for name in ["b2", "b3"] {
        let reasons = h.event_reasons(NS, name).await;
        assert_eq!(
            reasons.iter().filter(|r| *r == "BackoffActive").count(),
            1,
            "{name}: {reasons:?}"
        );
    }
    assert_eq!(h.creates_of("PipelineRun"), 4);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_execution_failed_blocks_until_the_failed_wfe_is_cleared() {
    let h = Harness::start_with(Options {
        times: RuleTimes {
            cooldown: "1s",
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let target = "team-a/Deployment/broken";
    h.create(NS, wfe("p1", target, "tekton", Some("failed:2")))
        .await;
    let p1 = h.wait_phase(NS, "p1", "Failed", T).await;
    let d = status(&p1).failure_details.unwrap();
    assert_eq!(
        (d.reason.as_str(), d.was_execution_failure),
        ("TaskFailed", true)
    );

    // Refused without an execution, however long we wait (no cooldown
    // expiry lifts a manual-review block).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    h.create(NS, wfe("p2", target, "tekton", None)).await;
    let p2 = h.wait_phase(NS, "p2", "Failed", T).await;
    let d = status(&p2).failure_details.unwrap();
    assert_eq!(d.reason, "PreviousExecutionFailed");
    assert!(!d.was_execution_failure);
    assert!(
        d.message.contains("p1") && d.message.contains("kubernaut.ai/clear-block"),
        "{}",
        d.message
    );
    // A refused WFE is not an attempt: it does not hide p1's failure.
    h.create(NS, wfe("p3", target, "tekton", None)).await;
    let p3 = h.wait_phase(NS, "p3", "Failed", T).await;
    assert_eq!(
        status(&p3).failure_details.unwrap().reason,
        "PreviousExecutionFailed"
    );
    assert_eq!(h.creates_of("PipelineRun"), 1);

    // Clearing the failed WFE lets the next one start.
    clear_block(&h, "p1").await;
    h.create(NS, wfe("p4", target, "tekton", None)).await;
    h.wait_phase(NS, "p4", "Completed", T).await;
    assert_eq!(h.creates_of("PipelineRun"), 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_refuses_until_a_failure_is_cleared() {
    let h = Harness::start_with(Options {
        times: RuleTimes {
            cooldown: "300ms",
            backoff_base: "300ms",
            backoff_max: "300ms",
            history_edits: vec![("maxConsecutiveFailures: 5", "maxConsecutiveFailures: 2")],
        },
        ..Default::default()
    })
    .await;
    let target = "team-a/Deployment/hopeless";
    // Pre-execution failures that prove nothing ran: a PipelineRun refused
    // by validation. (The simulator's Job ends at its deadline with its pod
    // already deleted: with the evidence gone, that is an execution failure,
    // failure-classification §3.)
    for name in ["e1", "e2"] {
        h.create(NS, wfe(name, target, "tekton", Some("validation")))
            .await;
        let w = h.wait_phase(NS, name, "Failed", T).await;
        let d = status(&w).failure_details.unwrap();
        assert!(!d.was_execution_failure, "{name}: {d:?}");
    }
    assert_eq!(h.creates_of("PipelineRun"), 2);
    for name in ["e3", "e4"] {
        h.create(NS, wfe(name, target, "tekton", None)).await;
        let w = h.wait_phase(NS, name, "Failed", T).await;
        let d = status(&w).failure_details.unwrap();
        assert_eq!(d.reason, "ExhaustedRetries", "{name}");
        assert!(
            d.message.contains("2 consecutive pre-execution failures"),
            "{}",
            d.message
        );
    }
    assert_eq!(
        h.creates_of("PipelineRun"),
        2,
        "refused WFEs create nothing"
    );

    clear_block(&h, "e2").await;
    h.create(NS, wfe("e5", target, "tekton", None)).await;
    h.wait_phase(NS, "e5", "Completed", T).await;
    assert_eq!(h.creates_of("PipelineRun"), 3);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooldown_hold_is_shortened_by_nothing_else_and_ends_at_next_allowed_execution() {
    let h = Harness::start_with(Options {
        times: RuleTimes {
            cooldown: "4s",
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let target = "team-a/Deployment/calm";
    h.create(NS, wfe("c1", target, "tekton", None)).await;
    let c1 = h.wait_phase(NS, "c1", "Completed", T).await;
    h.create(NS, wfe("c2", target, "tekton", None)).await;
    let held = wait_for(&h, "c2", "cooldown hold", |w| held_by(w, "CooldownActive")).await;
    let until = ts(&status(&held).next_allowed_execution);
    assert_eq!(
        secs_between(ts(&status(&c1).completion_time), until),
        4.0,
        "the hold ends exactly one cooldown after c1 finished"
    );
    let writes_while_held = || {
        h.emu.log().count(|e| {
            e.kind == "WorkflowExecution"
                && e.name.as_deref() == Some("c2")
                && e.verb == Verb::Patch
                && e.subresource.as_deref() == Some("status")
                && e.status < 300
        })
    };
    let writes_at_hold = writes_while_held();

    // Everything that could wake c2 early: its lock disappears, it is
    // touched, every WFE is reconciled, another target gets busy.
    h.pipeline_runs()
        .delete(&lock(target), &DeleteParams::default())
        .await
        .expect("delete c1's PipelineRun");
    h.wfes(NS)
        .patch(
            "c2",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"touched": "yes"}}})),
        )
        .await
        .expect("touch c2");
    h.controller.as_ref().unwrap().reconcile_all();
    h.create(
        NS,
        wfe("elsewhere", "team-a/Deployment/other", "tekton", None),
    )
    .await;
    h.wait_phase(NS, "elsewhere", "Completed", T).await;

    // Still held until the cooldown ends, then it starts at once.
    let mut started_seen = None;
    let end = tokio::time::Instant::now() + T;
    while tokio::time::Instant::now() < end {
        // The write count is sampled before the read, and only judged when
        // sampled before the hold ends: the write that ends the hold may land
        // between a read that still says Pending and a later count.
        let sampled_at = Timestamp::now();
        let writes = writes_while_held();
        let w = h.get(NS, "c2").await;
        let now = Timestamp::now();
        if phase_of(&w) != "Pending" {
            started_seen = Some((now, w));
            break;
        }
        assert!(
            now < until + jiff::SignedDuration::from_millis(1500),
            "still held at {now}"
        );
        // Every extra reconcile while held computes the same hold: no write.
        if sampled_at < until {
            assert_eq!(writes, writes_at_hold, "status written while held");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (seen, c2) = started_seen.expect("c2 started");
    assert!(seen >= until, "c2 left Pending at {seen}, before {until}");
    let start = ts(&status(&c2).start_time);
    assert!(start >= until, "startTime {start} before {until}");
    assert!(secs_between(until, seen) < 1.5, "started late: {seen}");
    h.wait_phase(NS, "c2", "Completed", T).await;
    let reasons = h.event_reasons(NS, "c2").await;
    assert_eq!(
        reasons.iter().filter(|r| *r == "CooldownActive").count(),
        1,
        "{reasons:?}"
    );
    h.stop().await;
}

/// Refuses every record of the WFEs whose name starts with `refuse-`, and
/// the `execution.started` record of those starting with `flip-`.
#[derive(Default)]
struct PickySink {
    inner: InMemoryAuditSink,
}

impl AuditSink for PickySink {
    fn record(&self, wfe: &WorkflowExecution, record: &AuditRecord) -> Result<(), AuditError> {
        let name = wfe.metadata.name.as_deref().unwrap_or_default();
        if name.starts_with("refuse-")
            || (name.starts_with("flip-") && record.event_type.ends_with("execution.started"))
        {
            return Err(AuditError::BufferFull(record.idempotency_key.clone()));
        }
        self.inner.record(wfe, record)
    }
}

fn audit_condition(w: &WorkflowExecution) -> Option<(String, String, String)> {
    let st = w.status.as_ref()?;
    find_condition(&st.conditions, COND_AUDIT_RECORDED)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_audit_records_set_audit_recorded_false_and_never_block() {
    let sink = Arc::new(PickySink::default());
    let h = Harness::start_with(Options {
        audit: Some(sink.clone()),
        ..Default::default()
    })
    .await;

    // Every record refused: the WFE still runs to the end.
    h.create(
        NS,
        wfe("refuse-all", "team-a/Deployment/r1", "tekton", None),
    )
    .await;
    h.wait_phase(NS, "refuse-all", "Completed", T).await;
    let w = wait_for(&h, "refuse-all", "AuditRecorded=False", |w| {
        audit_condition(w).is_some_and(|(s, _, _)| s == "False")
    })
    .await;
    let (_, reason, message) = audit_condition(&w).unwrap();
    assert_eq!(reason, "AuditFailed");
    assert!(
        message.starts_with("Failed to record audit event"),
        "{message}"
    );

    // Only the start record refused: False while Running, True again once
    // the completion record is accepted.
    h.create(
        NS,
        wfe(
            "flip-1",
            "team-a/Deployment/r2",
            "tekton",
            Some("slow:3000"),
        ),
    )
    .await;
    let w = wait_for(&h, "flip-1", "AuditRecorded=False", |w| {
        audit_condition(w).is_some_and(|(s, _, _)| s == "False")
    })
    .await;
    assert_eq!(phase_of(&w), "Running");
    assert!(audit_condition(&w).unwrap().2.contains("execution.started"));
    h.wait_phase(NS, "flip-1", "Completed", T).await;
    wait_for(&h, "flip-1", "AuditRecorded=True", |w| {
        audit_condition(w).is_some_and(|(s, r, _)| s == "True" && r == "AuditSucceeded")
    })
    .await;

    // A condition change costs at most one status write of its own (flip-1:
    // Running, False, Completed, True), and nothing loops.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status_writes = |name: &str| {
        h.emu.log().count(|e| {
            e.kind == "WorkflowExecution"
                && e.name.as_deref() == Some(name)
                && e.subresource.as_deref() == Some("status")
                && e.status < 300
        })
    };
    assert_eq!(status_writes("flip-1"), 4);
    // Running, then False rides on the Completed write unless a reconcile
    // came between them.
    let n = status_writes("refuse-all");
    assert!((2..=3).contains(&n), "{n} status writes");
    assert_eq!(sink.inner.duplicates(), 0);
    assert!(sink
        .inner
        .records()
        .iter()
        .any(|r| r.event_type.ends_with("workflow.completed")));
    h.stop().await;
}
