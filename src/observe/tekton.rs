//! PipelineRun (tekton.dev/v1 and v1beta1) → execution facts.
//! See failure-classification §1, §3–§6 and docs/facts.md.

use std::collections::HashSet;

use serde_json::Value;

use super::containers::{
    condition_item, container_started, is_synthetic, pod_evidence, step_evidence, step_started,
};
use super::facts::{ExecutionFacts, FailedTask};
use super::json::{arr_at, at, condition, int_at, label, name, str_at, time_at};
use super::tekton_runs::{declared_tasks, entries, Children, Entry, RefKind, Run, IGNORED};

fn run_evidence(run: &Run<'_>, children: &Children<'_>, out: &mut ExecutionFacts) {
    if let Some(c) = run.succeeded {
        out.evidence.push(condition_item(
            "taskRun", c.ty, c.reason, c.message, run.name,
        ));
    }
    let reason = run.reason();
    for s in run.steps() {
        step_evidence(s, "step", reason, &mut out.evidence);
    }
    for s in run.sidecars() {
        step_evidence(s, "sidecar", reason, &mut out.evidence);
    }
    for pod in children.pods_of(run) {
        pod_evidence(pod, true, &mut out.evidence);
    }
}

/// First real non-zero exit code in `steps[]` order.
fn first_exit_code(run: &Run<'_>) -> Option<i64> {
    let reason = run.reason();
    run.steps().iter().find_map(|s| {
        let t = at(s, &["terminated"]).filter(|t| t.is_object())?;
        let code = int_at(t, &["exitCode"])?;
        let skipped = str_at(s, &["terminationReason"]).eq_ignore_ascii_case("Skipped");
        (code != 0 && !skipped && !is_synthetic(t, reason)).then_some(code)
    })
}

fn oom_code(t: Option<&Value>) -> Option<i64> {
    let t = t.filter(|t| str_at(t, &["reason"]).eq_ignore_ascii_case("OOMKilled"))?;
    int_at(t, &["exitCode"])
}

/// Exit code of the first OOM-killed container of a run: its steps, then
/// its sidecars (TaskRun status), then its pods' init containers and
/// containers (kubelet view, also before a restart).
fn oom_exit_code(run: &Run<'_>, children: &Children<'_>) -> Option<i64> {
    let in_status = run
        .steps()
        .iter()
        .chain(run.sidecars())
        .find_map(|s| oom_code(at(s, &["terminated"])));
    in_status.or_else(|| {
        children.pods_of(run).into_iter().find_map(|p| {
            arr_at(p, &["status", "initContainerStatuses"])
                .iter()
                .chain(arr_at(p, &["status", "containerStatuses"]))
                .find_map(|cs| {
                    oom_code(at(cs, &["state", "terminated"]))
                        .or_else(|| oom_code(at(cs, &["lastState", "terminated"])))
                })
        })
    })
}

fn outcome(pr: &Value, out: &mut ExecutionFacts) {
    let status = at(pr, &["status"]).filter(|s| s.is_object());
    let cond = condition(status, "Succeeded");
    out.outcome = match cond.map(|c| c.status) {
        Some("True") => "Completed",
        Some("False") => "Failed",
        _ => "Running",
    }
    .to_owned();
    if let Some(c) = cond {
        out.reason = c.reason.to_owned();
        out.message = c.message.to_owned();
        out.evidence.push(condition_item(
            "pipelineRun",
            c.ty,
            c.reason,
            c.message,
            name(pr),
        ));
    }
    if let Some(s) = status {
        out.start_time = time_at(s, &["startTime"]);
        out.completion_time = time_at(s, &["completionTime"]);
    }
}

/// The failed TaskRun (§4): the first present one that is `False` (not
/// `FailureIgnored`); when the run failed and none is `False` yet (Tekton
/// asked them to stop through `spec.status` but has not written their
/// condition), the first present one still in flight.
fn failed_entry<'e, 'a>(
    entries: &'e [Entry<'a>],
    run_failed: bool,
) -> Option<(usize, &'e Entry<'a>, Run<'a>)> {
    let task_runs = || {
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == RefKind::TaskRun)
            .filter_map(|(i, e)| e.run.map(|r| (i, e, r)))
    };
    task_runs().find(|(_, _, r)| r.stopped()).or_else(|| {
        if run_failed {
            task_runs().find(|(_, _, r)| r.in_flight())
        } else {
            None
        }
    })
}

pub(crate) fn tekton_facts(pr: &Value, children: &[&Value], out: &mut ExecutionFacts) {
    outcome(pr, out);
    let status = at(pr, &["status"]).filter(|s| s.is_object());
    let view = Children::index(children);
    let declared = declared_tasks(status);
    let (entries, missing) = entries(status, &view, &declared);
    out.children_missing = missing;

    match failed_entry(&entries, out.outcome == "Failed") {
        Some((i, e, run)) => {
            let pipeline_task = match e.pipeline_task {
                "" => run
                    .obj
                    .and_then(|o| label(o, "tekton.dev/pipelineTask"))
                    .unwrap_or(""),
                pt => pt,
            };
            out.failed_task = Some(FailedTask {
                name: run.name.to_owned(),
                pipeline_task: Some(pipeline_task.to_owned()),
                index: i as i64,
            });
            run_evidence(&run, &view, out);
            out.exit_code = first_exit_code(&run);
            out.oom_exit_code = oom_exit_code(&run, &view);
            let msg = run.succeeded.map(|c| c.message).unwrap_or("");
            if !msg.is_empty() {
                out.failure_message = msg.to_owned();
            }
        }
        None => {
            // No failed TaskRun: keep what the unfinished ones say (quota
            // stalls, unschedulable pods, image pulls in progress).
            for e in entries.iter().filter(|e| e.kind == RefKind::TaskRun) {
                if let Some(run) = e.run {
                    let unfinished = run.succeeded.is_some_and(|c| c.status != "True")
                        && !run.reason().eq_ignore_ascii_case(IGNORED);
                    if unfinished {
                        run_evidence(&run, &view, out);
                    }
                }
            }
        }
    }
    if out.failure_message.is_empty() {
        out.failure_message = out.message.clone();
    }

    execution_evidence(&entries, &view, out);

    out.total_tasks = if declared.is_empty() {
        entries.len() as i64
    } else {
        declared.len() as i64
    };
    out.completed_tasks = entries
        .iter()
        .filter(|e| e.kind == RefKind::TaskRun && e.run.is_some_and(|r| r.status_is("True")))
        .count() as i64;
}

/// `started`, `taskStopped`, `tasksSucceeded` and `evidenceComplete`
/// (failure-classification §3), over every run of the view, referenced or
/// not.
fn execution_evidence(entries: &[Entry<'_>], view: &Children<'_>, out: &mut ExecutionFacts) {
    let referenced = entries
        .iter()
        .filter(|e| matches!(e.kind, RefKind::TaskRun | RefKind::CustomRun))
        .filter_map(|e| e.run);
    let unreferenced = view.task_runs.iter().map(|c| Run::of_object(c));
    let mut seen: HashSet<&str> = HashSet::new();
    let (mut started, mut stopped, mut succeeded) = (false, false, 0);
    for run in referenced.chain(unreferenced) {
        if !seen.insert(run.name) {
            continue;
        }
        stopped |= run.stopped();
        succeeded += i64::from(run.status_is("True"));
        if !started {
            let (reason, created) = (run.reason(), run.created());
            started = run
                .steps()
                .iter()
                .chain(run.retried_steps())
                .any(|s| step_started(s, reason, created));
        }
    }
    // Only steps are workflow code: sidecars and Tekton's own init
    // containers (prepare, place-scripts, ...) running prove nothing.
    started = started
        || view.pods.iter().any(|p| {
            arr_at(p, &["status", "containerStatuses"])
                .iter()
                .any(|cs| str_at(cs, &["name"]).starts_with("step-") && container_started(cs))
        });
    out.started = started;
    out.task_stopped = stopped;
    out.tasks_succeeded = succeeded;
    // Code we cannot see (a custom task's controller, a nested pipeline)
    // may have run: such a child leaves the evidence incomplete.
    let opaque = entries
        .iter()
        .any(|e| matches!(e.kind, RefKind::CustomRun | RefKind::PipelineRun));
    out.evidence_complete = out.children_missing == 0 && !opaque;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn embedded_map_is_ordered_by_pipeline_spec() {
        let pr = json!({
            "kind": "PipelineRun", "metadata": {"name": "r"},
            "status": {
                "conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}],
                "pipelineSpec": {"tasks": [{"name": "zeta"}, {"name": "alpha"}], "finally": [{"name": "cleanup"}]},
                "taskRuns": {
                    "r-alpha": {"pipelineTaskName": "alpha", "status": {"conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}]}},
                    "r-cleanup": {"pipelineTaskName": "cleanup", "status": {"conditions": [{"type": "Succeeded", "status": "True"}]}},
                    "r-zeta": {"pipelineTaskName": "zeta", "status": {"conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}]}}
                }
            }
        });
        let mut f = ExecutionFacts::default();
        tekton_facts(&pr, &[], &mut f);
        let t = f.failed_task.unwrap();
        assert_eq!((t.name.as_str(), t.index), ("r-zeta", 0));
        assert_eq!(f.total_tasks, 3);
        assert_eq!(f.completed_tasks, 1);
        assert_eq!(f.tasks_succeeded, 1);
        assert_eq!(f.children_missing, 0);
        assert!(f.evidence_complete);
    }

    #[test]
    fn a_custom_run_leaves_the_evidence_incomplete() {
        let pr = json!({
            "kind": "PipelineRun", "metadata": {"name": "r"},
            "status": {
                "conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}],
                "childReferences": [{"kind": "CustomRun", "name": "r-wait", "pipelineTaskName": "wait"}]
            }
        });
        let mut f = ExecutionFacts::default();
        tekton_facts(&pr, &[], &mut f);
        assert_eq!(f.children_missing, 0);
        assert!(!f.evidence_complete);
    }
    #[test]
    fn v070_waiting_steps_did_not_start_and_in_flight_runs_can_be_the_failed_task() {
        let pr = json!({
            "kind": "PipelineRun", "metadata": {"name": "r", "uid": "pr"},
            "status": {
                "conditions": [{"type": "Succeeded", "status": "False", "reason": "PipelineRunTimeout"}],
                "childReferences": [{"kind": "TaskRun", "name": "r-a", "pipelineTaskName": "a"}]
            }
        });
        // Tekton asked it to stop; its condition is not False yet.
        let tr = json!({"kind": "TaskRun", "metadata": {"name": "r-a", "uid": "tr",
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "ownerReferences": [{"kind": "PipelineRun", "uid": "pr"}]},
            "spec": {"status": "TaskRunCancelled"},
            "status": {"conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}],
                "steps": [{"name": "s", "terminated": {"exitCode": 1, "reason": "TaskRunCancelled",
                    "startedAt": "2025-01-01T00:00:00Z"}}]}});
        let mut f = ExecutionFacts::default();
        tekton_facts(&pr, &[&tr], &mut f);
        assert_eq!(f.failed_task.as_ref().map(|t| t.name.as_str()), Some("r-a"));
        assert!(!f.started, "startedAt is the TaskRun's creation time");
        assert!(f.evidence_complete);
        assert_eq!(f.tasks_succeeded, 0);
        assert!(f
            .evidence
            .iter()
            .any(|e| e.source == "taskRun" && e.condition_type == "Succeeded"));
    }
}
