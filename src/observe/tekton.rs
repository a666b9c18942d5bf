//! PipelineRun (tekton.dev/v1 and v1beta1) → execution facts.
//! See failure-classification §1, §3–§6 and docs/facts.md.

use serde_json::Value;

use super::containers::{
    container_started, is_synthetic, pod_evidence, step_evidence, step_started,
};
use super::facts::{ExecutionFacts, FailedTask};
use super::json::{
    arr_at, at, condition, int_at, kind, label, name, obj_at, owner_name_of_kind, str_at, time_at,
    Cond,
};

const IGNORED: &str = "FailureIgnored";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RefKind {
    TaskRun,
    CustomRun,
    PipelineRun,
    Other,
}

impl RefKind {
    fn of(kind: &str) -> RefKind {
        match kind {
            "TaskRun" => RefKind::TaskRun,
            "CustomRun" | "Run" => RefKind::CustomRun,
            "PipelineRun" => RefKind::PipelineRun,
            _ => RefKind::Other,
        }
    }
}

/// The status of a child run, from its own object or the embedded map.
#[derive(Clone, Copy)]
struct Run<'a> {
    name: &'a str,
    /// The TaskRun object, when the view has it (not for embedded entries).
    obj: Option<&'a Value>,
    status: Option<&'a Value>,
    succeeded: Option<Cond<'a>>,
}

impl<'a> Run<'a> {
    fn new(name: &'a str, status: Option<&'a Value>) -> Run<'a> {
        Run {
            name,
            obj: None,
            status,
            succeeded: condition(status, "Succeeded"),
        }
    }

    fn reason(&self) -> &'a str {
        self.succeeded.map(|c| c.reason).unwrap_or("")
    }

    fn status_is(&self, s: &str) -> bool {
        self.succeeded.is_some_and(|c| c.status == s)
    }

    /// Failed, cancelled or timed out, but not an ignored failure.
    fn stopped(&self) -> bool {
        self.status_is("False") && !self.reason().eq_ignore_ascii_case(IGNORED)
    }

    fn of_object(name: &'a str, obj: &'a Value) -> Run<'a> {
        Run {
            obj: Some(obj),
            ..Run::new(name, at(obj, &["status"]))
        }
    }

    /// Steps of earlier attempts (`retries`), which also ran.
    fn retried_steps(&self) -> impl Iterator<Item = &'a Value> {
        self.status
            .map(|s| arr_at(s, &["retriesStatus"]))
            .unwrap_or(&[])
            .iter()
            .flat_map(|r| arr_at(r, &["steps"]))
    }

    fn steps(&self) -> &'a [Value] {
        self.status.map(|s| arr_at(s, &["steps"])).unwrap_or(&[])
    }

    fn sidecars(&self) -> &'a [Value] {
        self.status.map(|s| arr_at(s, &["sidecars"])).unwrap_or(&[])
    }
}

/// One child of the run in `childReferences` order (or the reconstructed
/// order for the embedded maps).
struct Entry<'a> {
    kind: RefKind,
    pipeline_task: &'a str,
    run: Option<Run<'a>>,
}

fn find_object<'a>(children: &'a [Value], kinds: &[&str], child_name: &str) -> Option<&'a Value> {
    children
        .iter()
        .find(|c| name(c) == child_name && kinds.contains(&kind(c)))
}

fn embedded<'a>(status: Option<&'a Value>, map: &str, child_name: &str) -> Option<&'a Value> {
    obj_at(status?, &[map])?.get(child_name)
}

fn object_kinds(k: RefKind) -> &'static [&'static str] {
    match k {
        RefKind::TaskRun => &["TaskRun"],
        RefKind::CustomRun => &["CustomRun", "Run"],
        RefKind::PipelineRun => &["PipelineRun"],
        RefKind::Other => &[],
    }
}

fn embedded_map(k: RefKind) -> Option<&'static str> {
    match k {
        RefKind::TaskRun => Some("taskRuns"),
        RefKind::CustomRun => Some("runs"),
        _ => None,
    }
}

/// Pipeline task names in declaration order: tasks, then finally.
fn declared_tasks(status: Option<&Value>) -> Vec<&str> {
    let Some(spec) = status.and_then(|s| at(s, &["pipelineSpec"])) else {
        return Vec::new();
    };
    arr_at(spec, &["tasks"])
        .iter()
        .chain(arr_at(spec, &["finally"]))
        .map(|t| str_at(t, &["name"]))
        .collect()
}

fn position(declared: &[&str], pipeline_task: &str) -> usize {
    declared
        .iter()
        .position(|t| *t == pipeline_task)
        .unwrap_or(usize::MAX)
}

/// The children in execution order and how many referenced TaskRuns are absent.
fn entries<'a>(
    status: Option<&'a Value>,
    children: &'a [Value],
    declared: &[&str],
) -> (Vec<Entry<'a>>, i64) {
    let refs = status
        .map(|s| arr_at(s, &["childReferences"]))
        .unwrap_or(&[]);
    let mut missing = 0;
    if !refs.is_empty() {
        let out = refs
            .iter()
            .map(|r| {
                let k = RefKind::of(str_at(r, &["kind"]));
                let child_name = str_at(r, &["name"]);
                let run = find_object(children, object_kinds(k), child_name)
                    .map(|o| Run::of_object(child_name, o))
                    .or_else(|| {
                        let map = embedded_map(k)?;
                        let e = embedded(status, map, child_name)?;
                        Some(Run::new(child_name, at(e, &["status"])))
                    });
                if k == RefKind::TaskRun && run.is_none() {
                    missing += 1;
                }
                Entry {
                    kind: k,
                    pipeline_task: str_at(r, &["pipelineTaskName"]),
                    run,
                }
            })
            .collect();
        return (out, missing);
    }

    // Old v1beta1 embedded status: maps keyed by TaskRun name, which come out
    // sorted by name, so pipeline order is rebuilt from the pipeline spec.
    let mut out: Vec<(usize, &str, Entry<'a>)> = Vec::new();
    for (map, k) in [("taskRuns", RefKind::TaskRun), ("runs", RefKind::CustomRun)] {
        let Some(m) = status.and_then(|s| obj_at(s, &[map])) else {
            continue;
        };
        for (child_name, e) in m {
            let pt = str_at(e, &["pipelineTaskName"]);
            let run = match find_object(children, object_kinds(k), child_name) {
                Some(o) => Run::of_object(child_name, o),
                None => Run::new(child_name, at(e, &["status"])),
            };
            out.push((
                position(declared, pt),
                child_name,
                Entry {
                    kind: k,
                    pipeline_task: pt,
                    run: Some(run),
                },
            ));
        }
    }
    if out.is_empty() {
        // No references at all (hand-made capture): the TaskRun objects
        // themselves, in pipeline order, then by creation time.
        for c in children.iter().filter(|c| kind(c) == "TaskRun") {
            let pt = label(c, "tekton.dev/pipelineTask").unwrap_or("");
            out.push((
                position(declared, pt),
                str_at(c, &["metadata", "creationTimestamp"]),
                Entry {
                    kind: RefKind::TaskRun,
                    pipeline_task: pt,
                    run: Some(Run::of_object(name(c), c)),
                },
            ));
        }
    }
    out.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    (out.into_iter().map(|(_, _, e)| e).collect(), missing)
}

/// Pods of a TaskRun present in the view.
fn pods_of<'a>(children: &'a [Value], run: &'a Run<'a>) -> impl Iterator<Item = &'a Value> + 'a {
    let pod_name = run.status.map(|s| str_at(s, &["podName"])).unwrap_or("");
    children.iter().filter(move |c| {
        kind(c) == "Pod"
            && (label(c, "tekton.dev/taskRun") == Some(run.name)
                || owner_name_of_kind(c, "TaskRun") == Some(run.name)
                || (!pod_name.is_empty() && name(c) == pod_name))
    })
}

fn run_evidence(run: &Run<'_>, children: &[Value], out: &mut ExecutionFacts) {
    if let Some(c) = run.succeeded {
        out.evidence.push(super::containers::item(
            "taskRun",
            "condition",
            c.reason,
            c.message,
            None,
            false,
            run.name,
        ));
    }
    let reason = run.reason();
    for s in run.steps() {
        step_evidence(s, "step", reason, &mut out.evidence);
    }
    for s in run.sidecars() {
        step_evidence(s, "sidecar", reason, &mut out.evidence);
    }
    for pod in pods_of(children, run) {
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

pub(crate) fn tekton_facts(pr: &Value, children: &[Value], out: &mut ExecutionFacts) {
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
        out.evidence.push(super::containers::item(
            "pipelineRun",
            "condition",
            c.reason,
            c.message,
            None,
            false,
            name(pr),
        ));
    }
    if let Some(s) = status {
        out.start_time = time_at(s, &["startTime"]);
        out.completion_time = time_at(s, &["completionTime"]);
    }

    let declared = declared_tasks(status);
    let (entries, missing) = entries(status, children, &declared);
    out.children_missing = missing;

    let failed = entries.iter().enumerate().find_map(|(i, e)| match e.run {
        Some(run) if e.kind == RefKind::TaskRun && run.stopped() => Some((i, e, run)),
        _ => None,
    });

    match failed {
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
            run_evidence(&run, children, out);
            out.exit_code = first_exit_code(&run);
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
                        run_evidence(&run, children, out);
                    }
                }
            }
        }
    }
    if out.failure_message.is_empty() {
        out.failure_message = out.message.clone();
    }

    // Started / stopped look at every TaskRun, referenced or not.
    let all_runs = entries
        .iter()
        .filter(|e| e.kind == RefKind::TaskRun)
        .filter_map(|e| e.run)
        .chain(
            children
                .iter()
                .filter(|c| kind(c) == "TaskRun")
                .map(|c| Run::of_object(name(c), c)),
        );
    let mut started = false;
    let mut stopped = false;
    for run in all_runs {
        stopped |= run.stopped();
        if !started {
            let reason = run.reason();
            started = run
                .steps()
                .iter()
                .chain(run.retried_steps())
                .any(|s| step_started(s, reason));
        }
    }
    if !started {
        started = children.iter().filter(|c| kind(c) == "Pod").any(|p| {
            arr_at(p, &["status", "containerStatuses"])
                .iter()
                .any(|cs| str_at(cs, &["name"]).starts_with("step-") && container_started(cs))
        });
    }
    out.started = started;
    out.task_stopped = stopped;

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
        assert_eq!(f.children_missing, 0);
    }
}
