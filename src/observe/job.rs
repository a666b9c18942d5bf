//! batch/v1 Job and its pods → execution facts.
//! See failure-classification §1, §3–§6 and docs/facts.md.

use serde_json::Value;

use super::containers::{condition_item, container_started, pod_evidence};
use super::facts::{ExecutionFacts, FailedTask};
use super::json::{arr_at, at, conditions, int_at, kind, label, name, str_at, time_at};

/// Waiting reasons of a container that is simply on its way up.
const BENIGN_WAITING: &[&str] = &["ContainerCreating", "PodInitializing", ""];

fn terminated<'a>(cs: &'a Value, state: &str) -> Option<&'a Value> {
    at(cs, &[state, "terminated"]).filter(|t| t.is_object())
}

fn failed_termination(t: &Value) -> bool {
    int_at(t, &["exitCode"]).is_some_and(|c| c != 0) || is_oom(t)
}

fn is_oom(t: &Value) -> bool {
    str_at(t, &["reason"]).eq_ignore_ascii_case("OOMKilled")
}

fn waiting(cs: &Value) -> Option<&Value> {
    at(cs, &["state", "waiting"]).filter(|w| w.is_object())
}

fn failing(cs: &Value) -> bool {
    terminated(cs, "state").is_some_and(failed_termination)
        || terminated(cs, "lastState").is_some_and(failed_termination)
        || waiting(cs).is_some_and(|w| {
            let r = str_at(w, &["reason"]);
            !BENIGN_WAITING.contains(&r)
        })
}

fn oom_killed(cs: &Value) -> bool {
    terminated(cs, "state").is_some_and(is_oom) || terminated(cs, "lastState").is_some_and(is_oom)
}

/// Exit code of the newest OOM kill among the pods (newest first): init
/// containers and containers, now or before a restart.
fn oom_exit_code(pods_newest_first: &[&Value]) -> Option<i64> {
    pods_newest_first.iter().find_map(|p| {
        arr_at(p, &["status", "initContainerStatuses"])
            .iter()
            .chain(arr_at(p, &["status", "containerStatuses"]))
            .find_map(|cs| {
                [terminated(cs, "state"), terminated(cs, "lastState")]
                    .into_iter()
                    .flatten()
                    .find(|t| is_oom(t))
                    .and_then(|t| int_at(t, &["exitCode"]))
            })
    })
}

/// Does this pod belong to `job`? Pods labelled for another Job are not.
fn pod_of_job(pod: &Value, job: &str) -> bool {
    if kind(pod) != "Pod" {
        return false;
    }
    let named = label(pod, "batch.kubernetes.io/job-name").or_else(|| label(pod, "job-name"));
    named.is_none_or(|n| n == job)
}

/// Position of a container in the Job's pod template (else in the pod spec),
/// counted in its own list: `containers` or `initContainers`.
fn template_index(job: &Value, pod: &Value, list: &str, cs: &Value, status_pos: usize) -> i64 {
    let cname = str_at(cs, &["name"]);
    let by_name = |list: &[Value]| list.iter().position(|c| str_at(c, &["name"]) == cname);
    by_name(arr_at(job, &["spec", "template", "spec", list]))
        .or_else(|| by_name(arr_at(pod, &["spec", list])))
        .unwrap_or(status_pos) as i64
}

struct Failing<'a> {
    cs: &'a Value,
    index: i64,
}

/// Container status lists of a pod, in the order a failure is looked for:
/// the workflow containers first, then init containers (a failed init
/// container keeps the others waiting, so both never fail together; a
/// native sidecar stopped after the workflow failed must not win).
const STATUS_LISTS: [(&str, &str); 2] = [
    ("containerStatuses", "containers"),
    ("initContainerStatuses", "initContainers"),
];

/// The failing container: the newest pod with an OOM kill if there is one
/// (a deadline after repeated OOM kills is still an OOM), else the newest
/// pod with any failing container, else (the Job failed, say by its
/// deadline, while its container still ran) the newest pod with a running
/// container; in that pod the first such container in template order.
fn failing_container<'a>(
    job: &Value,
    pods_newest_first: &[&'a Value],
    job_failed: bool,
) -> Option<Failing<'a>> {
    let pick = |pred: &dyn Fn(&Value) -> bool| {
        pods_newest_first.iter().find_map(|pod| {
            STATUS_LISTS.iter().find_map(|(statuses, list)| {
                arr_at(pod, &["status", statuses])
                    .iter()
                    .enumerate()
                    .filter(|(_, cs)| pred(cs))
                    .map(|(i, cs)| Failing {
                        cs,
                        index: template_index(job, pod, list, cs, i),
                    })
                    .min_by_key(|f| f.index)
            })
        })
    };
    pick(&oom_killed)
        .or_else(|| pick(&failing))
        .or_else(|| job_failed.then(|| pick(&running)).flatten())
}

fn running(cs: &Value) -> bool {
    at(cs, &["state", "running"]).is_some_and(Value::is_object)
}

fn failing_exit_code(f: &Failing<'_>) -> Option<i64> {
    let now = terminated(f.cs, "state");
    let last = terminated(f.cs, "lastState");
    if oom_killed(f.cs) {
        let t = now.filter(|t| is_oom(t)).or(last.filter(|t| is_oom(t)));
        return t.and_then(|t| int_at(t, &["exitCode"]));
    }
    now.or(last).and_then(|t| int_at(t, &["exitCode"]))
}

fn failing_message(f: &Failing<'_>) -> String {
    let cname = str_at(f.cs, &["name"]);
    let now = terminated(f.cs, "state");
    let last = terminated(f.cs, "lastState");
    let term = now.or(last);
    if let Some(m) = term
        .map(|t| str_at(t, &["message"]))
        .filter(|m| !m.is_empty())
    {
        return m.to_owned();
    }
    let wait = waiting(f.cs);
    let wait_reason = wait.map(|w| str_at(w, &["reason"])).unwrap_or("");
    let wait_msg = wait.map(|w| str_at(w, &["message"])).unwrap_or("");
    // A crash-loop back-off message says less than the termination it follows.
    if !wait_msg.is_empty() && !wait_reason.eq_ignore_ascii_case("CrashLoopBackOff") {
        return wait_msg.to_owned();
    }
    if let Some(t) = term {
        let code = int_at(t, &["exitCode"]).unwrap_or(0);
        let reason = str_at(t, &["reason"]);
        return if reason.is_empty() {
            format!("container \"{cname}\" terminated with exit code {code}")
        } else {
            format!("container \"{cname}\" terminated with exit code {code} ({reason})")
        };
    }
    if !wait_msg.is_empty() {
        return wait_msg.to_owned();
    }
    String::new()
}

pub(crate) fn job_facts(job: &Value, children: &[&Value], out: &mut ExecutionFacts) {
    let job_name = name(job);
    let status = at(job, &["status"]).filter(|s| s.is_object());

    let mut complete = None;
    let mut failed = None;
    let mut failure_target = None;
    for c in conditions(status) {
        if c.status != "True" {
            continue;
        }
        match c.ty {
            "Complete" => complete = complete.or(Some(c)),
            "Failed" => failed = failed.or(Some(c)),
            "FailureTarget" => failure_target = failure_target.or(Some(c)),
            _ => {}
        }
    }
    let deciding = failed.or(failure_target);
    let (outcome, deciding) = match (deciding, complete) {
        (Some(c), _) => ("Failed", Some(c)),
        (None, Some(c)) => ("Completed", Some(c)),
        (None, None) => ("Running", None),
    };
    out.outcome = outcome.to_owned();
    if let Some(c) = deciding {
        out.reason = c.reason.to_owned();
        out.message = c.message.to_owned();
        out.evidence
            .push(condition_item("job", c.ty, c.reason, c.message, job_name));
    }
    for c in conditions(status) {
        let is_deciding = deciding.is_some_and(|d| d.ty == c.ty);
        if c.status == "True" && !is_deciding {
            out.evidence.push(condition_item(
                "jobCondition",
                c.ty,
                c.reason,
                c.message,
                job_name,
            ));
        }
    }
    if let Some(s) = status {
        out.start_time = time_at(s, &["startTime"]);
        out.completion_time = time_at(s, &["completionTime"]);
    }

    let mut pods: Vec<&Value> = children
        .iter()
        .copied()
        .filter(|c| pod_of_job(c, job_name))
        .collect();
    // Newest first; ties keep capture order.
    pods.sort_by(|a, b| {
        let ka = str_at(a, &["metadata", "creationTimestamp"]);
        let kb = str_at(b, &["metadata", "creationTimestamp"]);
        kb.cmp(ka)
    });
    for pod in pods.iter().rev() {
        pod_evidence(pod, false, &mut out.evidence);
    }

    if let Some(f) = failing_container(job, &pods, outcome == "Failed") {
        out.failed_task = Some(FailedTask {
            name: str_at(f.cs, &["name"]).to_owned(),
            pipeline_task: None,
            index: f.index,
        });
        out.exit_code = failing_exit_code(&f);
        out.failure_message = failing_message(&f);
    }
    if out.failure_message.is_empty() {
        out.failure_message = out.message.clone();
    }

    // Every container and init container of a Job's pod is workflow code.
    out.started = pods.iter().any(|p| {
        arr_at(p, &["status", "initContainerStatuses"])
            .iter()
            .chain(arr_at(p, &["status", "containerStatuses"]))
            .any(container_started)
    });
    out.oom_exit_code = oom_exit_code(&pods);
    out.task_stopped = outcome == "Failed";

    let status_int = |k: &str| status.and_then(|s| int_at(s, &[k])).unwrap_or(0);
    out.total_tasks = int_at(job, &["spec", "completions"]).unwrap_or(1);
    out.completed_tasks = status_int("succeeded");
    out.tasks_succeeded = out.completed_tasks;
    // Every pod that did not succeed may hold evidence: those the Job
    // counts as failed (once finished, every pod not terminated is
    // considered failed, also while it is still terminating), those it saw
    // fail and has not counted yet, and the still active ones
    // (trackJobStatusAndRemoveFinalizers, pkg/controller/job). These three
    // sets are disjoint; `terminating` overlaps `failed` and is left out.
    let uncounted = status
        .map(|s| arr_at(s, &["uncountedTerminatedPods", "failed"]).len() as i64)
        .unwrap_or(0);
    let expected = status_int("failed") + uncounted + status_int("active");
    let present = pods
        .iter()
        .filter(|p| str_at(p, &["status", "phase"]) != "Succeeded")
        .count() as i64;
    out.evidence_complete = present >= expected;
    out.retry_count = if outcome == "Running" {
        status_int("failed")
    } else if pods.is_empty() {
        (status_int("failed") + status_int("succeeded") - 1).max(0)
    } else {
        (pods.len() as i64 - 1).max(0)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(status: Value) -> Value {
        json!({"kind": "Job", "metadata": {"name": "j", "uid": "u"},
            "spec": {"template": {"spec": {"containers": [{"name": "workflow"}]}}},
            "status": status})
    }

    fn pod(name: &str, phase: &str, statuses: Value) -> Value {
        json!({"kind": "Pod", "metadata": {"name": name, "labels": {"job-name": "j"}},
            "status": {"phase": phase, "initContainerStatuses": statuses["init"], "containerStatuses": statuses["main"]}})
    }

    fn facts(job: &Value, pods: &[Value]) -> ExecutionFacts {
        let refs: Vec<&Value> = pods.iter().collect();
        let mut out = ExecutionFacts::default();
        job_facts(job, &refs, &mut out);
        out
    }

    #[test]
    fn evidence_is_complete_when_every_counted_pod_is_present() {
        let failed = json!({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
            "failed": 2, "succeeded": 1});
        let waiting = json!({"main": [{"name": "workflow", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]});
        let one = pod("a", "Failed", waiting.clone());
        let two = pod("b", "Pending", waiting.clone());
        let done = pod("c", "Succeeded", json!({}));
        let f = facts(
            &job(failed.clone()),
            &[one.clone(), two.clone(), done.clone()],
        );
        assert!(f.evidence_complete);
        assert_eq!(f.tasks_succeeded, 1);
        // A succeeded pod does not stand for a failed one.
        assert!(!facts(&job(failed.clone()), &[one.clone(), done]).evidence_complete);
        // Active pods and failures not counted yet may hold evidence too.
        let mut more = failed;
        more["active"] = json!(1);
        more["uncountedTerminatedPods"] = json!({"failed": ["x"]});
        assert!(!facts(&job(more.clone()), &[one.clone(), two.clone()]).evidence_complete);
        let three = pod("d", "Running", waiting.clone());
        let four = pod("e", "Failed", waiting);
        assert!(facts(&job(more), &[one, two, three, four]).evidence_complete);
        // A Job that never created a pod proves itself.
        let none = json!({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]});
        assert!(facts(&job(none), &[]).evidence_complete);
    }

    #[test]
    fn init_containers_are_workflow_code_and_can_be_oom_killed() {
        let failed = json!({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], "failed": 1});
        let statuses = json!({
            "init": [{"name": "migrate", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}],
            "main": [{"name": "workflow", "state": {"waiting": {"reason": "PodInitializing"}}}]});
        let f = facts(&job(failed), &[pod("a", "Failed", statuses)]);
        assert!(f.started);
        assert_eq!(f.oom_exit_code, Some(137));
        assert!(f
            .evidence
            .iter()
            .any(|e| e.source == "initContainer" && e.reason == "OOMKilled"));
    }
}
