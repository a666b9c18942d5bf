//! Observe: captures → Facts, checked against the sample captures in
//! tests/fixtures/captures (and their expected.yaml) and the bad inputs in
//! tests/fixtures/bad.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use wfe_engine::api::WorkflowExecution;
use wfe_engine::observe::{
    execution_facts, history_facts, lock_name, observe, parse_captures, read_captures, wfe_facts,
    Capture, CaptureError, EnvFacts, Evidence, ExecutionFacts, ObserveInput, ReadEverything,
};

/// The shipped rules, as observe asks them: which phase is initial and
/// which terminal.
fn lifecycle() -> &'static wfe_engine::rules::RuleSet {
    static RULES: std::sync::OnceLock<wfe_engine::rules::RuleSet> = std::sync::OnceLock::new();
    RULES.get_or_init(|| {
        wfe_engine::rules::load_sources(wfe_engine::rules::embedded::sources()).expect("rules")
    })
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn captures_dir() -> PathBuf {
    fixtures().join("captures")
}

fn one(file: &str) -> Capture {
    let mut caps = read_captures(&captures_dir().join(file)).expect("capture reads");
    assert_eq!(caps.len(), 1, "{file}: one primary expected");
    caps.remove(0)
}

fn facts_of(cap: &Capture) -> ExecutionFacts {
    let owner = cap.primary["metadata"]["labels"]["kubernaut.ai/workflow-execution"]
        .as_str()
        .unwrap_or("");
    execution_facts(
        Some(&cap.primary),
        &cap.children,
        owner,
        "default",
        &[],
        lifecycle(),
    )
}

fn facts(file: &str) -> ExecutionFacts {
    facts_of(&one(file))
}

fn has(ev: &[Evidence], source: &str, state: &str, reason: &str) -> bool {
    ev.iter()
        .any(|e| e.source == source && e.state == state && e.reason == reason)
}

fn wfe(name: &str, target: &str, extra: Value) -> WorkflowExecution {
    let mut v = json!({
        "apiVersion": "kubernaut.ai/v1alpha1",
        "kind": "WorkflowExecution",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                     "creationTimestamp": "2025-03-14T09:00:00Z"},
        "spec": {
            "remediationRequestRef": {"name": "rr-1"},
            "workflowRef": {"workflowId": "id", "workflowName": "restart", "actionType": "RestartDeployment",
                            "version": "1.0.0", "executionBundle": "quay.io/x@sha256:00", "executionEngine": "tekton"},
            "targetResource": target
        }
    });
    merge(&mut v, extra);
    serde_json::from_value(v).expect("valid WFE")
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

// ------------------------------------------------------------------ corpus

/// Every capture's observed facts agree with the corpus answers wherever
/// observe alone decides them (outcome, failed task, exit code of task
/// failures and OOM kills, and started/stopped behind wasExecutionFailure).
#[test]
fn corpus_facts_agree_with_expected_yaml() {
    let text = std::fs::read_to_string(captures_dir().join("expected.yaml")).unwrap();
    let expected: BTreeMap<String, Value> = serde_yaml::from_str(&text).unwrap();
    let caps = read_captures(&captures_dir()).unwrap();
    let mut seen = 0;
    for cap in &caps {
        let file = Path::new(&cap.file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let key_multi = format!(
            "{file}#{}",
            cap.primary["metadata"]["name"].as_str().unwrap()
        );
        let exp = expected
            .get(&file)
            .or_else(|| expected.get(&key_multi))
            .unwrap_or_else(|| panic!("no expectation for {file}"));
        seen += 1;
        let f = facts_of(cap);
        let ctx = format!("{file}: {f:#?}");
        assert_eq!(
            f.outcome,
            exp["outcome"].as_str().unwrap(),
            "outcome of {ctx}"
        );
        let failed = f.outcome == "Failed";
        // failure-classification §3: false only when the capture proves
        // that nothing ran.
        let wef = failed && (f.tasks_succeeded > 0 || f.started || !f.evidence_complete);
        assert_eq!(
            wef,
            // null in expected.yaml: the execution did not fail.
            exp["wasExecutionFailure"].as_bool().unwrap_or(false),
            "wasExecutionFailure of {ctx}"
        );
        if failed {
            let name = f.failed_task.as_ref().map(|t| t.name.clone());
            let pt = f.failed_task.as_ref().and_then(|t| t.pipeline_task.clone());
            let idx = f.failed_task.as_ref().map(|t| t.index);
            assert_eq!(
                name.as_deref(),
                exp["failedTaskName"].as_str(),
                "failedTaskName of {ctx}"
            );
            assert_eq!(
                pt.as_deref(),
                exp["failedPipelineTask"].as_str(),
                "failedPipelineTask of {ctx}"
            );
            assert_eq!(
                idx,
                exp["failedTaskIndex"].as_i64(),
                "failedTaskIndex of {ctx}"
            );
            let reason = exp["reason"].as_str().unwrap();
            // The shipped OOM rule reports the killed container's code
            // (`execution.oomExitCode`), which may be a sidecar's or an
            // init container's; other failures the failed task's.
            if reason == "OOMKilled" {
                let code = f.oom_exit_code;
                assert_eq!(code, exp["exitCode"].as_i64(), "oomExitCode of {ctx}");
            } else if reason == "TaskFailed" {
                assert_eq!(f.exit_code, exp["exitCode"].as_i64(), "exitCode of {ctx}");
            }
        } else {
            assert!(exp["reason"].is_null(), "{file}: reason only for failures");
        }
    }
    assert_eq!(seen, expected.len(), "every expectation has a capture");
    assert!(seen >= 40);
}

#[test]
fn every_failure_reason_is_in_the_corpus() {
    let text = std::fs::read_to_string(captures_dir().join("expected.yaml")).unwrap();
    let expected: BTreeMap<String, Value> = serde_yaml::from_str(&text).unwrap();
    for reason in [
        "OOMKilled",
        "ImagePullBackOff",
        "Forbidden",
        "ResourceExhausted",
        "DeadlineExceeded",
        "Cancelled",
        "ConfigurationError",
        "TaskFailed",
        "Unknown",
    ] {
        assert!(
            expected.values().any(|e| e["reason"] == reason),
            "no capture for {reason}"
        );
    }
}

// ------------------------------------------------------------------ Tekton

#[test]
fn step_oom_v1_12() {
    let f = facts("tekton-v1-oom-stepoom-v1.12.yaml");
    assert_eq!(f.kind, "PipelineRun");
    assert_eq!(f.api_version, "tekton.dev/v1");
    assert_eq!(f.reason, "Failed");
    assert_eq!(f.exit_code, Some(137));
    assert_eq!(
        f.failure_message,
        "\"step-scale\" exited with code 137: OOMKilled"
    );
    assert!(has(&f.evidence, "taskRun", "condition", "StepOOM"));
    assert!(has(&f.evidence, "step", "terminated", "OOMKilled"));
    // The pod's view of the same container.
    assert!(f
        .evidence
        .iter()
        .any(|e| e.source == "step" && e.name == "step-scale" && e.exit_code == Some(137)));
    assert_eq!((f.total_tasks, f.completed_tasks), (2, 1));
    assert!(f.started && f.task_stopped);
}

#[test]
fn old_oom_is_only_in_the_step() {
    let f = facts("tekton-v1beta1-oom-failed-v0.59.yaml");
    assert_eq!(f.api_version, "tekton.dev/v1beta1");
    assert!(!f
        .evidence
        .iter()
        .any(|e| e.source == "taskRun" && e.message.contains("OOM")));
    assert!(has(&f.evidence, "step", "terminated", "OOMKilled"));
    assert_eq!(f.exit_code, Some(137));
}

#[test]
fn skipped_steps_do_not_win_the_exit_code() {
    let f = facts("tekton-v1-taskfailed-stepfailed-v1.12.yaml");
    assert_eq!(f.exit_code, Some(2));
    let t = f.failed_task.unwrap();
    assert_eq!(t.pipeline_task.as_deref(), Some("apply"));
    assert!(has(&f.evidence, "step", "terminationReason", "Skipped"));
}

#[test]
fn zoom_timeout_has_only_synthetic_step_terminations() {
    let f = facts("tekton-v1-zoom-pipelinerun-timeout.yaml");
    assert_eq!(f.reason, "PipelineRunTimeout");
    assert_eq!(f.exit_code, None, "Tekton's exit 1 is synthetic");
    let step = f.evidence.iter().find(|e| e.source == "step").unwrap();
    assert!(step.synthetic);
    assert_eq!(step.reason, "TaskRunCancelled");
    assert!(!f
        .evidence
        .iter()
        .any(|e| e.reason.eq_ignore_ascii_case("OOMKilled")));
    // The first task really ran.
    assert!(f.started);
}

#[test]
fn taskrun_timeout_of_a_running_step_counts_as_started() {
    let f = facts("tekton-v1-taskrun-timeout.yaml");
    assert!(f.started, "synthetic termination keeps the real startedAt");
    assert_eq!(f.exit_code, None);
    assert!(has(&f.evidence, "taskRun", "condition", "TaskRunTimeout"));
}

#[test]
fn step_timeout_is_a_termination_reason() {
    let f = facts("tekton-v1-step-timeout-exceeded-v1.1.yaml");
    assert!(has(
        &f.evidence,
        "step",
        "terminationReason",
        "TimeoutExceeded"
    ));
    assert!(f.started);
}

#[test]
fn image_pull_of_the_first_task_did_not_start() {
    let f = facts("tekton-v1-imagepull-first-task-v1.12.yaml");
    assert!(!f.started);
    assert!(f.task_stopped);
    assert!(has(&f.evidence, "step", "waiting", "ImagePullBackOff"));
    assert!(f.failure_message.contains("failed to pull the image"));
    let f = facts("tekton-v1-imagepull-invalid-name-after-task-ran.yaml");
    assert!(f.started);
    assert!(has(&f.evidence, "step", "waiting", "InvalidImageName"));
}

#[test]
fn quota_stall_keeps_the_quota_text() {
    let f = facts("tekton-v1-quota-stall-pipelinerun-timeout-v1.13.yaml");
    assert!(!f.started);
    assert!(f.failure_message.contains("exceeded quota"));
    let running = facts("tekton-v1-quota-stall-running.yaml");
    assert_eq!(running.outcome, "Running");
    assert!(has(
        &running.evidence,
        "taskRun",
        "condition",
        "ExceededResourceQuota"
    ));
    assert!(!running.task_stopped);
}

#[test]
fn unschedulable_pod_is_evidence() {
    let f = facts("tekton-v1-unschedulable-insufficient-memory-timeout-v1.12.yaml");
    let c = f
        .evidence
        .iter()
        .find(|e| e.source == "podCondition")
        .expect("pod condition");
    assert_eq!(c.reason, "Unschedulable");
    assert!(c.message.contains("Insufficient memory"));
    assert!(!f.started);
}

#[test]
fn validation_failures_have_no_task() {
    for file in [
        "tekton-v1-parametermissing-user-error-v1.0.yaml",
        "tekton-v1-forbidden-rbac-couldntgetpipeline.yaml",
        "tekton-v1beta1-couldntgettask.yaml",
    ] {
        let f = facts(file);
        assert_eq!(f.outcome, "Failed");
        assert_eq!(f.failed_task, None, "{file}");
        assert!(!f.started && !f.task_stopped, "{file}");
        assert_eq!(f.failure_message, f.message);
        assert_eq!(f.children_missing, 0);
    }
}

#[test]
fn failure_ignored_is_skipped_and_custom_runs_are_counted() {
    let f = facts("tekton-v1-failureignored-before-failed-task.yaml");
    let t = f.failed_task.unwrap();
    assert_eq!(t.index, 2);
    assert_eq!(t.pipeline_task.as_deref(), Some("build"));
    assert_eq!(f.exit_code, Some(4));
    assert!(!f.evidence.iter().any(|e| e.reason == "FailureIgnored"));
}

#[test]
fn pruned_children_are_counted() {
    let f = facts("tekton-v1-pruned-children.yaml");
    assert_eq!(f.children_missing, 3);
    assert_eq!(f.failed_task, None);
    assert!(!f.started);
    assert_eq!(f.total_tasks, 3);
}

#[test]
fn embedded_v1beta1_map_follows_pipeline_order() {
    let f = facts("tekton-v1beta1-embedded-taskruns-v0.40.yaml");
    let t = f.failed_task.unwrap();
    assert!(t.name.ends_with("-validate"), "{t:?}");
    assert_eq!(t.index, 0);
    assert_eq!(f.exit_code, Some(2));
    assert_eq!((f.total_tasks, f.completed_tasks), (3, 1));
}

#[test]
fn create_container_config_error_is_waiting_evidence() {
    let f = facts("tekton-v1-createcontainerconfigerror-missing-secret.yaml");
    let w = f
        .evidence
        .iter()
        .find(|e| e.state == "waiting" && e.reason == "CreateContainerConfigError")
        .unwrap();
    assert!(w.message.contains("db-creds"));
    assert!(!f.started);
}

#[test]
fn cancelled_runs_started_or_not() {
    assert!(facts("tekton-v1-cancelled.yaml").started);
    let g = facts("tekton-v1-cancelled-graceful-before-start.yaml");
    assert!(!g.started);
    assert!(g.task_stopped);
    // CancelledRunFinally is only a spec.status value; the condition ends as Cancelled.
    assert_eq!(g.reason, "Cancelled");
}

#[test]
fn succeeded_and_running_runs() {
    let s = facts("tekton-v1-succeeded.yaml");
    assert_eq!(
        (s.outcome.as_str(), s.total_tasks, s.completed_tasks),
        ("Completed", 3, 3)
    );
    assert_eq!(s.failed_task, None);
    assert!(s.start_time.is_some() && s.completion_time.is_some());
    let r = facts("tekton-v1-running.yaml");
    assert_eq!(r.outcome, "Running");
    assert!(r.started);
    assert!(!r.task_stopped);
}

#[test]
fn no_status_is_running_and_no_object_is_empty() {
    let pr =
        json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": "x"}});
    let f = execution_facts(Some(&pr), &[], "w", "default", &[], lifecycle());
    assert_eq!(f.outcome, "Running");
    assert_eq!(f.owner, "none");
    let none = execution_facts(None, &[], "w", "default", &[], lifecycle());
    assert_eq!(none, ExecutionFacts::default());
    assert!(!none.exists);
    assert_eq!(none.outcome, "");
}

#[test]
fn succeeded_condition_is_found_anywhere_in_the_list() {
    let pr = json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": "x"},
        "status": {"conditions": [
            {"type": "TrustedResourcesVerified", "status": "False", "reason": "x"},
            {"type": "Succeeded", "status": "False", "reason": "ResourceVerificationFailed", "message": "m"}]}});
    let f = execution_facts(Some(&pr), &[], "w", "default", &[], lifecycle());
    assert_eq!(
        (f.outcome.as_str(), f.reason.as_str()),
        ("Failed", "ResourceVerificationFailed")
    );
}

// ------------------------------------------------------------------ owner

#[test]
fn owner_detection() {
    let cap = one("tekton-v1-succeeded.yaml");
    let me = execution_facts(
        Some(&cap.primary),
        &cap.children,
        "wfe-checkout-restart-7f3k2",
        "default",
        &[],
        lifecycle(),
    );
    assert_eq!(me.owner, "self");
    assert_eq!(me.owner_phase, "");
    let other_wfe = wfe(
        "wfe-checkout-restart-7f3k2",
        "default/deployment/checkout",
        json!({"status": {"phase": ""}}),
    );
    let them = execution_facts(
        Some(&cap.primary),
        &cap.children,
        "wfe-new",
        "default",
        &[other_wfe],
        lifecycle(),
    );
    assert_eq!(them.owner, "other");
    assert_eq!(them.owner_name, "wfe-checkout-restart-7f3k2");
    assert_eq!(them.owner_namespace, "default");
    assert_eq!(them.owner_phase, "Pending");
    let unknown = execution_facts(
        Some(&cap.primary),
        &cap.children,
        "wfe-new",
        "default",
        &[],
        lifecycle(),
    );
    assert_eq!(
        (unknown.owner.as_str(), unknown.owner_phase.as_str()),
        ("other", "")
    );
    let mut unlabelled = cap.primary.clone();
    unlabelled["metadata"]["labels"] = json!({});
    let none = execution_facts(
        Some(&unlabelled),
        &[],
        "wfe-new",
        "default",
        &[],
        lifecycle(),
    );
    assert_eq!(
        (none.owner.as_str(), none.owner_name.as_str()),
        ("none", "")
    );
}

// ------------------------------------------------------------------ Jobs

#[test]
fn job_exit_code_and_message() {
    let f = facts("job-backofflimit-exit-code.yaml");
    assert_eq!(f.kind, "Job");
    assert_eq!(f.reason, "BackoffLimitExceeded");
    assert_eq!(f.exit_code, Some(3));
    assert!(f.failure_message.contains("no revision 4"));
    assert!(has(&f.evidence, "job", "condition", "BackoffLimitExceeded"));
    assert!(has(&f.evidence, "container", "terminated", "Error"));
    assert_eq!(f.failed_task.unwrap().pipeline_task, None);
}

#[test]
fn job_oom_restart_uses_last_state_and_template_index() {
    let f = facts("job-oom-restarts-then-deadline.yaml");
    assert_eq!(f.reason, "DeadlineExceeded");
    let t = f.failed_task.unwrap();
    assert_eq!((t.name.as_str(), t.index), ("workflow", 1));
    assert_eq!(f.exit_code, Some(137));
    assert!(has(&f.evidence, "container", "lastTerminated", "OOMKilled"));
    // Kubernetes 1.31+: only FailureTarget while the deleted pod terminates.
    assert!(has(&f.evidence, "job", "condition", "DeadlineExceeded"));
    assert_eq!(
        f.failure_message,
        "container \"workflow\" terminated with exit code 137 (OOMKilled)"
    );
}

#[test]
fn job_image_pull_never_started() {
    let f = facts("job-imagepull-then-deadline.yaml");
    assert!(!f.started);
    assert!(f.task_stopped);
    assert_eq!(f.exit_code, None);
    assert!(f.failure_message.starts_with("Back-off pulling image"));
    let r = facts("job-imagepull-stuck-running.yaml");
    assert_eq!(r.outcome, "Running");
    assert!(has(&r.evidence, "container", "waiting", "ErrImagePull"));
}

#[test]
fn job_failure_target_is_failed() {
    let f = facts("job-podfailurepolicy-failuretarget.yaml");
    assert_eq!(
        (f.outcome.as_str(), f.reason.as_str()),
        ("Failed", "PodFailurePolicy")
    );
    assert_eq!(f.exit_code, Some(42));
}

#[test]
fn job_counts() {
    let f = facts("job-oom-backofflimit-two-pods.yaml");
    assert_eq!(f.retry_count, 1);
    assert_eq!((f.total_tasks, f.completed_tasks), (1, 0));
    let s = facts("job-succeeded.yaml");
    assert_eq!(
        (s.outcome.as_str(), s.completed_tasks, s.retry_count),
        ("Completed", 1, 0)
    );
    let p = facts("job-failed-pods-pruned.yaml");
    assert!(!p.started);
    assert_eq!(p.failed_task, None);
    assert_eq!(
        p.failure_message,
        "Job has reached the specified backoff limit"
    );
}

// ------------------------------------------------------------------ reading

#[test]
fn list_documents_are_flattened() {
    let cap = one("tekton-v1-list-stepfailed-v1.12.yaml");
    assert_eq!(cap.primary["kind"], "PipelineRun");
    assert_eq!(cap.children.len(), 1);
    assert_eq!(facts_of(&cap).exit_code, Some(127));
}

#[test]
fn primary_is_found_wherever_it_stands() {
    let cap = one("tekton-v1beta1-taskrun-before-pipelinerun-v0.59.yaml");
    assert_eq!(cap.primary["kind"], "PipelineRun");
    assert_eq!(cap.children[0]["kind"], "TaskRun");
}

#[test]
fn order_of_documents_does_not_matter() {
    let text =
        std::fs::read_to_string(captures_dir().join("tekton-v1-oom-stepoom-v1.12.yaml")).unwrap();
    let mut docs: Vec<&str> = text.split("\n---\n").collect();
    let forward = parse_captures("a.yaml", &docs.join("\n---\n")).unwrap();
    docs[1..].reverse();
    let reversed = parse_captures("b.yaml", &docs.join("\n---\n")).unwrap();
    assert_eq!(facts_of(&forward[0]), facts_of(&reversed[0]));
}

#[test]
fn several_primaries_are_several_captures() {
    let caps = read_captures(&captures_dir().join("tekton-two-primaries.yaml")).unwrap();
    assert_eq!(caps.len(), 2);
    for cap in &caps {
        let pr = cap.primary["metadata"]["name"].as_str().unwrap();
        assert_eq!(cap.children.len(), 1);
        assert_eq!(
            cap.children[0]["metadata"]["labels"]["tekton.dev/pipelineRun"],
            pr
        );
    }
    assert_eq!(facts_of(&caps[0]).outcome, "Completed");
    assert_eq!(facts_of(&caps[1]).exit_code, Some(137));
}

#[test]
fn stdin_style_text_and_json() {
    let yaml = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n---\napiVersion: v1\nkind: Event\nmetadata: {name: e}\n";
    let caps = parse_captures("-", yaml).unwrap();
    assert_eq!((caps.len(), caps[0].file.as_str()), (1, "-"));
    let json = r#"{"apiVersion":"v1","kind":"List","items":[
        {"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","uid":"u1"}},
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"j-1","labels":{"controller-uid":"u1"}}},
        {"apiVersion":"kubernaut.ai/v1alpha1","kind":"WorkflowExecution","metadata":{"name":"w"}}]}"#;
    let caps = parse_captures("cap.json", json).unwrap();
    assert_eq!(caps[0].children.len(), 1);
    assert_eq!(caps[0].wfes.len(), 1);
    // A typed list's items may omit their kind.
    let typed = r#"{"apiVersion":"tekton.dev/v1","kind":"PipelineRunList","items":[{"metadata":{"name":"p"}}]}"#;
    assert_eq!(
        parse_captures("t.json", typed).unwrap()[0].primary["kind"],
        "PipelineRun"
    );
}

#[test]
fn pods_attach_to_their_own_job() {
    let yaml = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: a, uid: ua}\n---\n\
                apiVersion: batch/v1\nkind: Job\nmetadata: {name: b, uid: ub}\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata: {name: b-1, labels: {batch.kubernetes.io/job-name: b}}\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata: {name: a-1, ownerReferences: [{kind: Job, name: a, uid: ua}]}\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata: {name: stray}\n";
    let caps = parse_captures("jobs.yaml", yaml).unwrap();
    assert_eq!(caps[0].children.len(), 1);
    assert_eq!(caps[0].children[0]["metadata"]["name"], "a-1");
    assert_eq!(caps[1].children[0]["metadata"]["name"], "b-1");
}

// ------------------------------------------------- evidence of this run only

fn child_names(cap: &Capture) -> Vec<(String, String)> {
    cap.children
        .iter()
        .map(|c| {
            (
                c["metadata"]["name"].as_str().unwrap().to_owned(),
                c["metadata"]["uid"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// A Job recreated under the same name while a pod of the previous Job
/// (old controller-uid, OOM-killed) lingers: the current pod decides.
#[test]
fn a_previous_jobs_lingering_pod_is_not_evidence() {
    let cap = one("job-recreated-lingering-oom-pod-of-previous-job.yaml");
    assert_eq!(
        child_names(&cap),
        [(
            "wfe-2b3c4d5e6f708192-m2p9d".to_owned(),
            "5d0c2e11-0000-4000-8000-0000000000b2".to_owned()
        )]
    );
    let f = facts_of(&cap);
    assert_eq!(f.exit_code, Some(3));
    assert_eq!(f.oom_exit_code, None);
    assert!(!has(&f.evidence, "container", "terminated", "OOMKilled"));
    assert!(f.evidence_complete, "one failed pod counted, one present");
    // The same objects handed to observe directly (as the controller does
    // with what it lists by name label) give the same answer.
    let doc = std::fs::read_to_string(
        captures_dir().join("job-recreated-lingering-oom-pod-of-previous-job.yaml"),
    )
    .unwrap();
    let all = wfe_engine::observe::parse_documents("f", &doc).unwrap();
    let g = execution_facts(Some(&all[0]), &all[1..], "", "", &[], lifecycle());
    assert_eq!(
        (g.exit_code, g.failure_message.as_str()),
        (Some(3), f.failure_message.as_str())
    );
}

/// A PipelineRun recreated under the same name while the previous run's
/// TaskRun and Pod (same names, old uids) linger: the current TaskRun decides.
#[test]
fn a_previous_runs_lingering_taskrun_is_not_evidence() {
    let cap = one("tekton-v1-recreated-lingering-taskrun-of-previous-run.yaml");
    assert_eq!(
        child_names(&cap),
        [(
            "wfe-9a8b7c6d5e4f3021-scale".to_owned(),
            "6e1d0c9b-2222-4b7c-9d00-000000000002".to_owned()
        )]
    );
    let f = facts_of(&cap);
    assert_eq!(f.exit_code, Some(2));
    assert_eq!(f.oom_exit_code, None);
    assert!(!f.evidence.iter().any(|e| e.reason.contains("OOM")));
    let doc = std::fs::read_to_string(
        captures_dir().join("tekton-v1-recreated-lingering-taskrun-of-previous-run.yaml"),
    )
    .unwrap();
    let all = wfe_engine::observe::parse_documents("f", &doc).unwrap();
    let g = execution_facts(Some(&all[0]), &all[1..], "", "", &[], lifecycle());
    assert_eq!(g.exit_code, Some(2));
    assert!(!g.evidence.iter().any(|e| e.reason.contains("OOM")));
}

/// Children that name their parent only by uid find it among many
/// primaries; objects without uids keep attaching by labels.
#[test]
fn children_attach_by_uid_then_by_labels() {
    let yaml = "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: p, uid: u1}\n---\n\
                apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: q, uid: u2}\n---\n\
                apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: q-a, uid: t1, ownerReferences: [{kind: PipelineRun, name: q, uid: u2}]}\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata: {name: q-a-pod, ownerReferences: [{kind: TaskRun, name: q-a, uid: t1}]}\n---\n\
                apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: p-a, labels: {tekton.dev/pipelineRun: p}}\n---\n\
                apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: p-old, labels: {tekton.dev/pipelineRun: p, tekton.dev/pipelineRunUID: u0}}\n";
    let caps = parse_captures("two.yaml", yaml).unwrap();
    let names =
        |i: usize| -> Vec<String> { child_names(&caps[i]).into_iter().map(|(n, _)| n).collect() };
    assert_eq!(names(0), ["p-a"]);
    assert_eq!(names(1), ["q-a", "q-a-pod"]);
}

#[test]
fn directory_reads_every_capture_sorted_and_skips_the_answers() {
    let caps = read_captures(&captures_dir()).unwrap();
    // Only capture files count (COVERAGE.md documents the directory).
    let files = std::fs::read_dir(captures_dir())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            [".yaml", ".yml", ".json"].iter().any(|x| name.ends_with(x))
        })
        .count();
    // expected.yaml is skipped; tekton-two-primaries.yaml holds two captures.
    assert_eq!(caps.len(), files - 1 + 1);
    let names: Vec<&str> = caps.iter().map(|c| c.file.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

// ------------------------------------------------------------------ bad input

fn bad(file: &str) -> String {
    let err = read_captures(&fixtures().join("bad").join(file)).expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains(file), "error names the file: {msg}");
    msg
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let msg = bad("malformed.yaml");
    assert!(msg.contains("malformed.yaml:10:"), "{msg}");
    assert!(msg.contains("malformed YAML"), "{msg}");
}

#[test]
fn binary_files_are_refused() {
    assert!(bad("binary.yaml").contains("binary file (NUL byte"));
    assert!(bad("invalid-utf8.yaml").contains("invalid UTF-8"));
}

#[test]
fn empty_files_are_refused() {
    assert!(bad("empty.yaml").contains("empty capture"));
    assert!(matches!(
        parse_captures("e.yaml", ""),
        Err(CaptureError::Empty { .. })
    ));
}

#[test]
fn non_kubernetes_documents_are_refused() {
    assert!(bad("not-kubernetes.yaml").contains("document 1 is not a Kubernetes object"));
    let err = parse_captures("s.yaml", "- a\n- b\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a Kubernetes object"), "{err}");
}

#[test]
fn unknown_kinds_name_the_kind_and_the_accepted_ones() {
    let msg = bad("unknown-kind.yaml");
    assert!(
        msg.contains("\"Deployment\"") && msg.contains("checkout"),
        "{msg}"
    );
    assert!(msg.contains("PipelineRun, Job, TaskRun"), "{msg}");
}

#[test]
fn a_capture_needs_a_primary() {
    let msg = bad("no-primary.yaml");
    assert!(
        msg.contains("no PipelineRun or Job") && msg.contains("TaskRun"),
        "{msg}"
    );
}

#[test]
fn malformed_json_names_line() {
    let err = parse_captures("x.json", "{\n \"kind\": \n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("x.json:"), "{err}");
    assert!(err.contains("malformed JSON"), "{err}");
}

#[test]
fn files_over_the_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.yaml");
    let mut text = String::from(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\n  annotations:\n    a: \"",
    );
    text.push_str(&"x".repeat(9 * 1024 * 1024));
    text.push_str("\"\n");
    std::fs::write(&p, text).unwrap();
    let msg = read_captures(&p).unwrap_err().to_string();
    assert!(msg.contains("huge.yaml") && msg.contains("8 MiB"), "{msg}");
}

#[test]
fn missing_paths_and_empty_directories() {
    let msg = read_captures(Path::new("/nonexistent/x.yaml"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("/nonexistent/x.yaml"), "{msg}");
    let dir = tempfile::tempdir().unwrap();
    let msg = read_captures(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("no *.yaml"), "{msg}");
}

#[test]
fn hostile_yaml_does_not_panic() {
    let deep = "a: ".repeat(2000) + "1";
    assert!(parse_captures("deep.yaml", &deep).is_err());
    let laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
                  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
                  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    assert!(parse_captures("laughs.yaml", laughs).is_err());
    assert!(parse_captures("tag.yaml", "!!binary aGVsbG8=").is_err());
}

// ------------------------------------------------------------------ WFE, history, observe

#[test]
fn wfe_facts_read_spec_status_and_annotation() {
    let w = wfe(
        "w1",
        "default//app",
        json!({"metadata": {"annotations": {"kubernaut.ai/clear-block": "fixed quota"}},
               "status": {"failureDetails": {"reason": "OOMKilled", "message": "m", "failedAt": "2025-03-14T09:10:00Z",
                                             "naturalLanguageSummary": "s", "wasExecutionFailure": true}}}),
    );
    let f = wfe_facts(&w, lifecycle());
    assert_eq!(f.phase, "Pending");
    assert_eq!((f.target_parts, f.target_empty_part), (3, 1));
    assert_eq!(f.clear_block, "fixed quota");
    assert_eq!(f.engine, "tekton");
    assert_eq!(f.failure_reason, "OOMKilled");
    assert!(f.was_execution_failure);
    assert_eq!(f.correlation_id, "rr-1");
    assert!(f.created_at.is_some());
}

#[test]
fn history_orders_terminal_by_completion_then_the_rest_by_creation() {
    let t = "default/deployment/app";
    let me = wfe("me", t, json!({}));
    let done = |n: &str, at: &str| {
        wfe(
            n,
            t,
            json!({"status": {"phase": "Failed", "completionTime": at}}),
        )
    };
    let live = |n: &str, at: &str| {
        wfe(
            n,
            t,
            json!({"metadata": {"creationTimestamp": at}, "status": {"phase": "Running"}}),
        )
    };
    let others = vec![
        done("old", "2025-03-14T08:00:00Z"),
        live("r-old", "2025-03-14T07:00:00Z"),
        me.clone(),
        done("new", "2025-03-14T09:00:00Z"),
        live("r-new", "2025-03-14T09:30:00Z"),
        wfe(
            "elsewhere",
            "default/deployment/other",
            json!({"status": {"phase": "Failed"}}),
        ),
    ];
    let h = history_facts(&me, &others, lifecycle());
    let names: Vec<&str> = h.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["new", "old", "r-new", "r-old"]);
}

#[test]
fn lock_name_matches_kubernaut() {
    assert_eq!(
        lock_name("default/deployment/my-app"),
        "wfe-c00449355dfb987a"
    );
}

#[test]
fn observe_puts_it_together() {
    let cap = one("tekton-v1-oom-stepoom-v1.12.yaml");
    let me = wfe(
        "wfe-checkout-restart-7f3k2",
        "default/deployment/checkout",
        json!({"status": {"phase": "Running"}}),
    );
    let prior = wfe(
        "prior",
        "default/deployment/checkout",
        json!({"status": {"phase": "Completed"}}),
    );
    let others = [prior];
    let f = observe(&ObserveInput {
        wfe: &me,
        execution: Some(&cap.primary),
        children: &cap.children,
        others: &others,
        env: EnvFacts::default(),
        rules: lifecycle(),
    });
    assert_eq!(f.wfe.phase, "Running");
    assert_eq!(f.execution.owner, "self");
    assert_eq!(f.execution.exit_code, Some(137));
    assert_eq!(f.history.len(), 1);
    assert_eq!(f.env, EnvFacts::default());
}

#[test]
fn hand_written_capture_with_unquoted_status_and_no_references() {
    let yaml = "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: p}\n\
                status:\n  conditions:\n  - {type: Succeeded, status: False, reason: Failed}\n---\n\
                apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: p-b, labels: {tekton.dev/pipelineTask: b}}\n\
                status:\n  conditions:\n  - {type: Succeeded, status: False, reason: Failed}\n  \
                steps:\n  - {name: s, terminated: {exitCode: \"3\", reason: Error}}\n";
    let caps = parse_captures("hand.yaml", yaml).unwrap();
    let f = facts_of(&caps[0]);
    assert_eq!(f.outcome, "Failed");
    let t = f.failed_task.unwrap();
    assert_eq!(
        (t.name.as_str(), t.pipeline_task.as_deref(), t.index),
        ("p-b", Some("b"), 0)
    );
    assert_eq!(f.exit_code, Some(3));
    assert!(f.started);
}

/// Truncated captures (a copy-paste cut short) either fail cleanly or yield
/// facts; nothing panics.
#[test]
fn truncated_captures_never_panic() {
    for entry in std::fs::read_dir(captures_dir()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for cut in (0..text.len())
            .step_by(397)
            .filter(|c| text.is_char_boundary(*c))
        {
            if let Ok(caps) = parse_captures("cut.yaml", &text[..cut]) {
                for cap in &caps {
                    let _ = facts_of(cap);
                }
            }
        }
    }
}

/// Observe names no phase: which phase a WFE without one is in, and which
/// phases end the history's "finished" group, are the lifecycle's.
#[test]
fn phases_are_the_lifecycles() {
    struct Custom;
    impl wfe_engine::observe::RuleView for Custom {
        fn initial_phase(&self) -> &str {
            "Queued"
        }
        fn is_terminal_phase(&self, phase: &str) -> bool {
            phase == "Done"
        }
        fn reads_metadata(&self) -> bool {
            false
        }
    }
    let t = "default/deployment/app";
    let me = wfe("me", t, json!({}));
    assert_eq!(wfe_facts(&me, &Custom).phase, "Queued");
    let others = vec![
        wfe(
            "done",
            t,
            json!({"status": {"phase": "Done", "completionTime": "2025-03-14T08:00:00Z"}}),
        ),
        wfe(
            "new",
            t,
            json!({"metadata": {"creationTimestamp": "2025-03-14T09:30:00Z"}}),
        ),
        // "Completed" means nothing to this lifecycle: not finished.
        wfe(
            "other",
            t,
            json!({"metadata": {"creationTimestamp": "2025-03-14T09:00:00Z"}, "status": {"phase": "Completed", "completionTime": "2025-03-14T09:10:00Z"}}),
        ),
    ];
    let h = history_facts(&me, &others, &Custom);
    let names: Vec<(&str, &str)> = h
        .iter()
        .map(|a| (a.name.as_str(), a.phase.as_str()))
        .collect();
    assert_eq!(
        names,
        [("done", "Done"), ("new", "Queued"), ("other", "Completed")]
    );
}

/// Labels and annotations are copied when the rules read them (or a person
/// asks for every fact), and not otherwise: they cost every decision.
#[test]
fn metadata_is_copied_only_when_read() {
    struct Reads(bool);
    impl wfe_engine::observe::RuleView for Reads {
        fn initial_phase(&self) -> &str {
            "Pending"
        }
        fn is_terminal_phase(&self, _: &str) -> bool {
            false
        }
        fn reads_metadata(&self) -> bool {
            self.0
        }
    }
    let me = wfe(
        "me",
        "default/deployment/app",
        json!({"metadata": {"labels": {"team": "a"}, "annotations": {"x.io/y": "z"}}}),
    );
    let cap = one("tekton-v1-oom-stepoom-v1.12.yaml");
    for (view, want) in [(Reads(true), true), (Reads(false), false)] {
        let w = wfe_facts(&me, &view);
        let x = execution_facts(
            Some(&cap.primary),
            &cap.children,
            "me",
            "default",
            &[],
            &view,
        );
        assert_eq!(w.labels.contains_key("team"), want);
        assert_eq!(w.annotations.contains_key("x.io/y"), want);
        assert_eq!(
            x.labels.contains_key("kubernaut.ai/workflow-execution"),
            want
        );
        assert_eq!(x.annotations.is_empty(), !want);
    }
    let all = ReadEverything(&Reads(false));
    assert_eq!(
        wfe_facts(&me, &all).labels.get("team").map(String::as_str),
        Some("a")
    );
}
