//! Container, step and pod states: evidence items and "did it really run".
//! Shared by the Tekton and Job readers.

use serde_json::Value;

use super::facts::Evidence;
use super::json::{arr_at, at, conditions, int_at, name, str_at};

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// A step termination Tekton wrote itself when it stopped the TaskRun
/// (`terminateStepsInPod`: exit 1, reason = the TaskRun reason, message
/// "Step X terminated as pod Y is terminated").
pub(crate) fn is_synthetic(terminated: &Value, owner_reason: &str) -> bool {
    let reason = str_at(terminated, &["reason"]);
    (!reason.is_empty() && !owner_reason.is_empty() && reason.eq_ignore_ascii_case(owner_reason))
        || starts_with_ci(reason, "TaskRun")
        || str_at(terminated, &["message"]).contains("terminated as pod")
}

/// Whether a real (kubelet or entrypoint) termination shows that the
/// process ran: every one does (failure-classification §3.2), except a step
/// the entrypoint skipped because an earlier step failed (that earlier step
/// is the evidence).
pub(crate) fn termination_ran(termination_reason: &str) -> bool {
    !termination_reason.eq_ignore_ascii_case("Skipped")
}

fn is_obj(v: Option<&Value>) -> bool {
    v.is_some_and(Value::is_object)
}

/// Two RFC 3339 instants are the same instant (text equality when either
/// does not parse).
fn same_instant(a: &str, b: &str) -> bool {
    match (a.parse::<jiff::Timestamp>(), b.parse::<jiff::Timestamp>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// A TaskRun `steps[]` entry shows that its step really started.
///
/// When Tekton stops a TaskRun (`terminateStepsInPod`,
/// `pkg/reconciler/taskrun/taskrun.go`) a step that was running keeps its
/// real `startedAt`; one still waiting gets none before v0.70 and, from
/// v0.70 on, the TaskRun's own `metadata.creationTimestamp` ("startedAt
/// cannot be null due to CRD schema validation"). So a synthetic
/// termination counts only with a `startedAt` that is not `created`.
pub(crate) fn step_started(step: &Value, owner_reason: &str, created: &str) -> bool {
    if is_obj(at(step, &["running"])) {
        return true;
    }
    match at(step, &["terminated"]).filter(|t| t.is_object()) {
        Some(t) if is_synthetic(t, owner_reason) => {
            let started_at = str_at(t, &["startedAt"]);
            !started_at.is_empty() && (created.is_empty() || !same_instant(started_at, created))
        }
        Some(_) => termination_ran(str_at(step, &["terminationReason"])),
        None => false,
    }
}

/// A pod container status shows a process that ran: running, or terminated
/// by the kubelet now or before a restart.
pub(crate) fn container_started(cs: &Value) -> bool {
    is_obj(at(cs, &["state", "running"]))
        || is_obj(at(cs, &["state", "terminated"]))
        || is_obj(at(cs, &["lastState", "terminated"]))
}

pub(crate) fn item(
    source: &str,
    state: &str,
    reason: &str,
    message: &str,
    exit_code: Option<i64>,
    synthetic: bool,
    name: &str,
) -> Evidence {
    Evidence {
        source: source.to_owned(),
        state: state.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        exit_code,
        synthetic,
        name: name.to_owned(),
        ..Evidence::default()
    }
}

/// Evidence of a condition of type `ty`.
pub(crate) fn condition_item(
    source: &str,
    ty: &str,
    reason: &str,
    message: &str,
    name: &str,
) -> Evidence {
    Evidence {
        condition_type: ty.to_owned(),
        ..item(source, "condition", reason, message, None, false, name)
    }
}

/// Evidence of one TaskRun `steps[]` or `sidecars[]` entry.
pub(crate) fn step_evidence(
    step: &Value,
    source: &str,
    owner_reason: &str,
    out: &mut Vec<Evidence>,
) {
    let mut step_name = str_at(step, &["name"]);
    if step_name.is_empty() {
        step_name = str_at(step, &["container"]);
    }
    if let Some(t) = at(step, &["terminated"]).filter(|t| t.is_object()) {
        let synthetic = is_synthetic(t, owner_reason);
        let reason = str_at(t, &["reason"]);
        let exit = int_at(t, &["exitCode"]);
        out.push(item(
            source,
            "terminated",
            reason,
            str_at(t, &["message"]),
            exit,
            synthetic,
            step_name,
        ));
        let tr = str_at(step, &["terminationReason"]);
        if !tr.is_empty() && tr != reason {
            out.push(item(
                source,
                "terminationReason",
                tr,
                "",
                exit,
                synthetic,
                step_name,
            ));
        }
    }
    if let Some(w) = at(step, &["waiting"]).filter(|w| w.is_object()) {
        let reason = str_at(w, &["reason"]);
        let message = str_at(w, &["message"]);
        if !reason.is_empty() || !message.is_empty() {
            out.push(item(
                source, "waiting", reason, message, None, false, step_name,
            ));
        }
    }
}

/// Evidence of one pod container status (kubelet view, never synthetic).
pub(crate) fn container_evidence(cs: &Value, source: &str, out: &mut Vec<Evidence>) {
    let cname = str_at(cs, &["name"]);
    if let Some(t) = at(cs, &["state", "terminated"]).filter(|t| t.is_object()) {
        out.push(terminated_item(t, source, "terminated", cname));
    }
    if let Some(w) = at(cs, &["state", "waiting"]).filter(|w| w.is_object()) {
        let reason = str_at(w, &["reason"]);
        let message = str_at(w, &["message"]);
        if !reason.is_empty() || !message.is_empty() {
            out.push(item(source, "waiting", reason, message, None, false, cname));
        }
    }
    if let Some(t) = at(cs, &["lastState", "terminated"]).filter(|t| t.is_object()) {
        out.push(terminated_item(t, source, "lastTerminated", cname));
    }
}

fn terminated_item(t: &Value, source: &str, state: &str, cname: &str) -> Evidence {
    item(
        source,
        state,
        str_at(t, &["reason"]),
        str_at(t, &["message"]),
        int_at(t, &["exitCode"]),
        false,
        cname,
    )
}

/// Evidence of a pod: its status reason, failed conditions and every
/// container. `tekton` names containers by Tekton's `step-`/`sidecar-` prefixes.
pub(crate) fn pod_evidence(pod: &Value, tekton: bool, out: &mut Vec<Evidence>) {
    let pod_name = name(pod);
    let status = at(pod, &["status"]);
    if let Some(s) = status {
        let reason = str_at(s, &["reason"]);
        let message = str_at(s, &["message"]);
        if !reason.is_empty() || !message.is_empty() {
            out.push(item(
                "pod", "status", reason, message, None, false, pod_name,
            ));
        }
    }
    // Conditions that report trouble: a positive condition that is False
    // (PodScheduled/Unschedulable, ...), or `DisruptionTarget=True` (the pod
    // is being preempted, evicted or deleted by the taint manager or pod GC).
    for c in conditions(status) {
        let trouble = (c.status == "False" && !c.reason.is_empty())
            || (c.ty == "DisruptionTarget" && c.status == "True");
        if trouble {
            out.push(condition_item(
                "podCondition",
                c.ty,
                c.reason,
                c.message,
                pod_name,
            ));
        }
    }
    for cs in arr_at(pod, &["status", "initContainerStatuses"]) {
        container_evidence(cs, "initContainer", out);
    }
    for cs in arr_at(pod, &["status", "containerStatuses"]) {
        let source = if !tekton {
            "container"
        } else {
            container_source(str_at(cs, &["name"]))
        };
        container_evidence(cs, source, out);
    }
}

/// Evidence source of a container of a Tekton pod.
pub(crate) fn container_source(container: &str) -> &'static str {
    if container.starts_with("step-") {
        "step"
    } else if container.starts_with("sidecar-") {
        "sidecar"
    } else {
        "container"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn synthetic_terminations_are_recognised() {
        let t = json!({"exitCode": 1, "reason": "TaskRunTimeout", "message": "Step build terminated as pod p is terminated"});
        assert!(is_synthetic(&t, "TaskRunTimeout"));
        assert!(is_synthetic(&json!({"reason": "TaskRunCancelled"}), ""));
        assert!(is_synthetic(
            &json!({"reason": "PullImageFailed"}),
            "PullImageFailed"
        ));
        assert!(!is_synthetic(
            &json!({"reason": "Error", "exitCode": 1}),
            "Failed"
        ));
        assert!(!is_synthetic(&json!({"reason": "OOMKilled"}), "StepOOM"));
    }

    #[test]
    fn started_follows_what_tekton_keeps() {
        let created = "2024-01-01T00:00:00Z";
        // A running step stopped by a timeout keeps its startedAt.
        let ran = json!({"name": "a", "terminated": {"exitCode": 1, "reason": "TaskRunTimeout", "startedAt": "2024-01-01T00:00:30Z"}});
        assert!(step_started(&ran, "TaskRunTimeout", created));
        // A waiting step gets none before v0.70 ...
        let waited = json!({"name": "a", "terminated": {"exitCode": 1, "reason": "TaskRunTimeout", "startedAt": null}});
        assert!(!step_started(&waited, "TaskRunTimeout", created));
        // ... and the TaskRun's creationTimestamp from v0.70 on.
        let waited_v070 = json!({"name": "a", "terminated": {"exitCode": 1, "reason": "TaskRunImagePullFailed", "startedAt": "2024-01-01T00:00:00.000Z"}});
        assert!(!step_started(
            &waited_v070,
            "TaskRunImagePullFailed",
            created
        ));
        // Without the TaskRun's creation time a start time is evidence.
        assert!(step_started(&waited_v070, "TaskRunImagePullFailed", ""));
        let skipped = json!({"name": "b", "terminated": {"exitCode": 1, "reason": "Error", "startedAt": created}, "terminationReason": "Skipped"});
        assert!(!step_started(&skipped, "Failed", created));
        // Any kubelet termination is evidence, even one that never started a process.
        let start_error =
            json!({"name": "c", "terminated": {"exitCode": 128, "reason": "StartError"}});
        assert!(step_started(&start_error, "Failed", created));
        assert!(step_started(
            &json!({"running": {"startedAt": "x"}}),
            "",
            created
        ));
        assert!(!step_started(
            &json!({"waiting": {"reason": "ImagePullBackOff"}}),
            "",
            created
        ));
        assert!(container_started(
            &json!({"state": {"terminated": {"reason": "StartError", "exitCode": 128}}})
        ));
        assert!(!container_started(
            &json!({"state": {"waiting": {"reason": "CreateContainerConfigError"}}})
        ));
        assert!(container_started(
            &json!({"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}})
        ));
    }
}
