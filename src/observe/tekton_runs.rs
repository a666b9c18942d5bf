//! The child runs of a PipelineRun in execution order, and an index of its
//! children built once so every lookup is a hash probe (a run with
//! thousands of TaskRuns and Pods is read in linear time).

use std::collections::HashMap;

use serde_json::Value;

use super::attach::pod_task_run;
use super::json::{arr_at, at, condition, kind, label, name, obj_at, str_at, uid, Cond};

pub(crate) const IGNORED: &str = "FailureIgnored";

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum RefKind {
    TaskRun,
    CustomRun,
    PipelineRun,
    Other,
}

impl RefKind {
    pub(crate) fn of(kind: &str) -> RefKind {
        match kind {
            "TaskRun" => RefKind::TaskRun,
            "CustomRun" | "Run" => RefKind::CustomRun,
            "PipelineRun" => RefKind::PipelineRun,
            _ => RefKind::Other,
        }
    }

    fn embedded_map(self) -> Option<&'static str> {
        match self {
            RefKind::TaskRun => Some("taskRuns"),
            RefKind::CustomRun => Some("runs"),
            _ => None,
        }
    }
}

/// The status of a child run, from its own object or the embedded map.
#[derive(Clone, Copy)]
pub(crate) struct Run<'a> {
    pub name: &'a str,
    /// The run object, when the view has it (not for embedded entries).
    pub obj: Option<&'a Value>,
    pub status: Option<&'a Value>,
    pub succeeded: Option<Cond<'a>>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(name: &'a str, status: Option<&'a Value>) -> Run<'a> {
        Run {
            name,
            obj: None,
            status,
            succeeded: condition(status, "Succeeded"),
        }
    }

    pub(crate) fn of_object(obj: &'a Value) -> Run<'a> {
        Run {
            obj: Some(obj),
            ..Run::new(name(obj), at(obj, &["status"]))
        }
    }

    pub(crate) fn reason(&self) -> &'a str {
        self.succeeded.map(|c| c.reason).unwrap_or("")
    }

    pub(crate) fn status_is(&self, s: &str) -> bool {
        self.succeeded.is_some_and(|c| c.status == s)
    }

    /// Failed, cancelled or timed out, but not an ignored failure.
    pub(crate) fn stopped(&self) -> bool {
        self.status_is("False") && !self.reason().eq_ignore_ascii_case(IGNORED)
    }

    /// Neither finished nor failed yet (`Unknown` or no condition): a run
    /// Tekton may have asked to stop through `spec.status`.
    pub(crate) fn in_flight(&self) -> bool {
        !self.status_is("True") && !self.status_is("False")
    }

    /// `metadata.creationTimestamp` of the object, `""` when unknown.
    pub(crate) fn created(&self) -> &'a str {
        self.obj
            .map(|o| str_at(o, &["metadata", "creationTimestamp"]))
            .unwrap_or("")
    }

    pub(crate) fn uid(&self) -> &'a str {
        self.obj.map(uid).unwrap_or("")
    }

    pub(crate) fn pod_name(&self) -> &'a str {
        self.status.map(|s| str_at(s, &["podName"])).unwrap_or("")
    }

    /// Steps of earlier attempts (`retriesStatus`), which also ran.
    pub(crate) fn retried_steps(&self) -> impl Iterator<Item = &'a Value> {
        self.status
            .map(|s| arr_at(s, &["retriesStatus"]))
            .unwrap_or(&[])
            .iter()
            .flat_map(|r| arr_at(r, &["steps"]))
    }

    pub(crate) fn steps(&self) -> &'a [Value] {
        self.status.map(|s| arr_at(s, &["steps"])).unwrap_or(&[])
    }

    pub(crate) fn sidecars(&self) -> &'a [Value] {
        self.status.map(|s| arr_at(s, &["sidecars"])).unwrap_or(&[])
    }
}

/// One child of the run in `childReferences` order (or the reconstructed
/// order for the embedded maps).
pub(crate) struct Entry<'a> {
    pub kind: RefKind,
    pub pipeline_task: &'a str,
    pub run: Option<Run<'a>>,
}

/// The children of one PipelineRun, indexed once.
pub(crate) struct Children<'a> {
    /// Run objects (TaskRun, CustomRun/Run, PipelineRun) by kind and name;
    /// the first of a name wins.
    runs: HashMap<(RefKind, &'a str), &'a Value>,
    /// Every TaskRun object, in view order.
    pub task_runs: Vec<&'a Value>,
    /// Every Pod, in view order.
    pub pods: Vec<&'a Value>,
    /// Pod positions by the TaskRun name they name, and by pod name.
    pods_by_task_run: HashMap<&'a str, Vec<usize>>,
    pods_by_name: HashMap<&'a str, usize>,
}

impl<'a> Children<'a> {
    pub(crate) fn index(children: &[&'a Value]) -> Children<'a> {
        let mut out = Children {
            runs: HashMap::new(),
            task_runs: Vec::new(),
            pods: Vec::new(),
            pods_by_task_run: HashMap::new(),
            pods_by_name: HashMap::new(),
        };
        for c in children {
            match RefKind::of(kind(c)) {
                RefKind::Other if kind(c) == "Pod" => {
                    let i = out.pods.len();
                    out.pods.push(c);
                    let (_, tr_name) = pod_task_run(c);
                    if !tr_name.is_empty() {
                        out.pods_by_task_run.entry(tr_name).or_default().push(i);
                    }
                    out.pods_by_name.entry(name(c)).or_insert(i);
                }
                RefKind::Other => {}
                k => {
                    if k == RefKind::TaskRun {
                        out.task_runs.push(c);
                    }
                    out.runs.entry((k, name(c))).or_insert(c);
                }
            }
        }
        out
    }

    pub(crate) fn run(&self, k: RefKind, child_name: &str) -> Option<&'a Value> {
        self.runs.get(&(k, child_name)).copied()
    }

    /// Pods of a run, in view order: named by the TaskRun's name (label or
    /// owner reference) or by its `status.podName`; when both the pod and
    /// the TaskRun carry uids they must agree.
    pub(crate) fn pods_of(&self, run: &Run<'a>) -> Vec<&'a Value> {
        let mut idx: Vec<usize> = self
            .pods_by_task_run
            .get(run.name)
            .cloned()
            .unwrap_or_default();
        let pod_name = run.pod_name();
        if let Some(i) = self
            .pods_by_name
            .get(pod_name)
            .filter(|_| !pod_name.is_empty())
        {
            idx.push(*i);
        }
        idx.sort_unstable();
        idx.dedup();
        let run_uid = run.uid();
        idx.into_iter()
            .map(|i| self.pods[i])
            .filter(|p| {
                let (pod_tr_uid, _) = pod_task_run(p);
                run_uid.is_empty() || pod_tr_uid.is_empty() || pod_tr_uid == run_uid
            })
            .collect()
    }
}

fn embedded<'a>(status: Option<&'a Value>, map: &str, child_name: &str) -> Option<&'a Value> {
    obj_at(status?, &[map])?.get(child_name)
}

/// Pipeline task names in declaration order: tasks, then finally.
pub(crate) fn declared_tasks(status: Option<&Value>) -> Vec<&str> {
    let Some(spec) = status.and_then(|s| at(s, &["pipelineSpec"])) else {
        return Vec::new();
    };
    arr_at(spec, &["tasks"])
        .iter()
        .chain(arr_at(spec, &["finally"]))
        .map(|t| str_at(t, &["name"]))
        .collect()
}

/// The children in execution order and how many referenced TaskRuns are
/// absent from both the view and the embedded status.
pub(crate) fn entries<'a>(
    status: Option<&'a Value>,
    children: &Children<'a>,
    declared: &[&str],
) -> (Vec<Entry<'a>>, i64) {
    let refs = status
        .map(|s| arr_at(s, &["childReferences"]))
        .unwrap_or(&[]);
    if !refs.is_empty() {
        let mut missing = 0;
        let out = refs
            .iter()
            .map(|r| {
                let k = RefKind::of(str_at(r, &["kind"]));
                let child_name = str_at(r, &["name"]);
                let run = children.run(k, child_name).map(Run::of_object).or_else(|| {
                    let e = embedded(status, k.embedded_map()?, child_name)?;
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

    // Pipeline order of a task name: its position in the spec, unknown last.
    let positions: HashMap<&str, usize> = declared
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| (*t, i))
        .collect();
    let position = |pt: &str| positions.get(pt).copied().unwrap_or(usize::MAX);

    // Old v1beta1 embedded status: maps keyed by TaskRun name, which come out
    // sorted by name, so pipeline order is rebuilt from the pipeline spec.
    let mut out: Vec<(usize, &str, Entry<'a>)> = Vec::new();
    for k in [RefKind::TaskRun, RefKind::CustomRun] {
        let map = k.embedded_map().unwrap_or("");
        let Some(m) = status.and_then(|s| obj_at(s, &[map])) else {
            continue;
        };
        for (child_name, e) in m {
            let pt = str_at(e, &["pipelineTaskName"]);
            let run = match children.run(k, child_name) {
                Some(o) => Run::of_object(o),
                None => Run::new(child_name, at(e, &["status"])),
            };
            let entry = Entry {
                kind: k,
                pipeline_task: pt,
                run: Some(run),
            };
            out.push((position(pt), child_name, entry));
        }
    }
    if out.is_empty() {
        // No references at all (hand-made capture): the TaskRun objects
        // themselves, in pipeline order, then by creation time.
        for c in &children.task_runs {
            let pt = label(c, "tekton.dev/pipelineTask").unwrap_or("");
            let entry = Entry {
                kind: RefKind::TaskRun,
                pipeline_task: pt,
                run: Some(Run::of_object(c)),
            };
            out.push((
                position(pt),
                str_at(c, &["metadata", "creationTimestamp"]),
                entry,
            ));
        }
    }
    out.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    (out.into_iter().map(|(_, _, e)| e).collect(), 0)
}
