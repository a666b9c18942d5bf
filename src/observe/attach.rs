//! Which children belong to which execution object (DESIGN invariant 8).
//!
//! A lock name is reused, and garbage collection is asynchronous: after a
//! PipelineRun or Job is deleted and recreated under the same name, the
//! previous run's TaskRuns and Pods can still be listed for a while with the
//! same name labels. So a child attaches by the uid it names for its parent
//! (owner reference, Tekton's `tekton.dev/pipelineRunUID` /
//! `tekton.dev/taskRunUID` labels, the Job controller's `controller-uid`
//! labels) whenever both sides carry uids, and by name labels only when they
//! do not (hand-written captures).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::json::{arr_at, kind, label, name, str_at, uid};

/// Labels naming a parent's uid, by parent kind.
fn uid_labels(parent_kind: &str) -> &'static [&'static str] {
    match parent_kind {
        "PipelineRun" => &["tekton.dev/pipelineRunUID"],
        "TaskRun" => &["tekton.dev/taskRunUID"],
        "Job" => &["batch.kubernetes.io/controller-uid", "controller-uid"],
        _ => &[],
    }
}

/// Every uid `child` names for a parent of `parent_kind` (owner references
/// of that kind, then the uid labels), empty ones left out.
pub(crate) fn parent_uids<'a>(
    child: &'a Value,
    parent_kind: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    let refs = arr_at(child, &["metadata", "ownerReferences"])
        .iter()
        .filter(move |r| str_at(r, &["kind"]) == parent_kind)
        .map(|r| str_at(r, &["uid"]));
    let labels = uid_labels(parent_kind)
        .iter()
        .filter_map(move |l| label(child, l));
    refs.chain(labels).filter(|u| !u.is_empty())
}

/// What the uids say about `child` and a parent of `parent_kind` with
/// `parent_uid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// The child names this parent's uid.
    Same,
    /// The child names other uids only: it belongs to another object
    /// (typically an earlier one of the same name).
    Other,
    /// No uid on one side: only names can tell.
    Unknown,
}

pub(crate) fn link(child: &Value, parent_kind: &str, parent_uid: &str) -> Link {
    if parent_uid.is_empty() {
        return Link::Unknown;
    }
    let mut any = false;
    for u in parent_uids(child, parent_kind) {
        if u == parent_uid {
            return Link::Same;
        }
        any = true;
    }
    if any {
        Link::Other
    } else {
        Link::Unknown
    }
}

/// The TaskRun a Pod names: (uid, name), each `""` when absent.
pub(crate) fn pod_task_run(pod: &Value) -> (&str, &str) {
    let tr_uid = parent_uids(pod, "TaskRun").next().unwrap_or("");
    let tr_name = label(pod, "tekton.dev/taskRun")
        .or_else(|| super::json::owner_name_of_kind(pod, "TaskRun"))
        .unwrap_or("");
    (tr_uid, tr_name)
}

/// Kinds of a PipelineRun's run children.
const RUN_KINDS: &[&str] = &["TaskRun", "CustomRun", "Run", "PipelineRun"];

/// The children of the execution object (`primary_kind`, `primary_uid`)
/// among `children`: everything not proven to belong to another object,
/// in the given order. Linear in the number of children.
///
/// - Job: Pods whose Job uid (owner reference or `controller-uid` label)
///   is another Job's are dropped.
/// - PipelineRun: runs (TaskRuns, CustomRuns, nested PipelineRuns) naming
///   another PipelineRun's uid are dropped; so are Pods naming another
///   PipelineRun's uid, Pods of a dropped TaskRun, and Pods naming a TaskRun
///   uid other than that of the present TaskRun of the same name (the
///   TaskRun was recreated under its name).
pub fn own_children<'a>(
    primary_kind: &str,
    primary_uid: &str,
    children: &'a [Value],
) -> Vec<&'a Value> {
    children
        .iter()
        .zip(own_flags(primary_kind, primary_uid, children))
        .filter_map(|(c, k)| k.then_some(c))
        .collect()
}

/// [`own_children`] over an owned list (the controller's reads).
pub fn retain_own_children(primary_kind: &str, primary_uid: &str, children: &mut Vec<Value>) {
    let mut keep = own_flags(primary_kind, primary_uid, children).into_iter();
    children.retain(|_| keep.next().unwrap_or(false));
}

/// For each child: whether it may belong to the primary.
fn own_flags(primary_kind: &str, primary_uid: &str, children: &[Value]) -> Vec<bool> {
    if primary_uid.is_empty() {
        return vec![true; children.len()];
    }
    if primary_kind == "Job" {
        return children
            .iter()
            .map(|c| link(c, "Job", primary_uid) != Link::Other)
            .collect();
    }
    let mut dropped_runs: HashSet<&str> = HashSet::new();
    // TaskRun name → uid of the kept TaskRun of that name.
    let mut kept_runs: HashMap<&str, &str> = HashMap::new();
    let mut keep = vec![true; children.len()];
    for (i, c) in children.iter().enumerate() {
        if !RUN_KINDS.contains(&kind(c)) {
            continue;
        }
        if link(c, "PipelineRun", primary_uid) == Link::Other {
            keep[i] = false;
            if !uid(c).is_empty() {
                dropped_runs.insert(uid(c));
            }
        } else if kind(c) == "TaskRun" {
            kept_runs.entry(name(c)).or_insert(uid(c));
        }
    }
    for (i, c) in children.iter().enumerate() {
        if kind(c) != "Pod" {
            continue;
        }
        if link(c, "PipelineRun", primary_uid) == Link::Other {
            keep[i] = false;
            continue;
        }
        let (tr_uid, tr_name) = pod_task_run(c);
        if tr_uid.is_empty() {
            continue;
        }
        let replaced = kept_runs
            .get(tr_name)
            .is_some_and(|kept| !kept.is_empty() && *kept != tr_uid);
        if dropped_runs.contains(tr_uid) || replaced {
            keep[i] = false;
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tr(name: &str, uid: &str, pr_uid: &str) -> Value {
        json!({"kind": "TaskRun", "metadata": {"name": name, "uid": uid,
            "labels": {"tekton.dev/pipelineRun": "pr"},
            "ownerReferences": [{"kind": "PipelineRun", "name": "pr", "uid": pr_uid}]}})
    }

    fn pod(name: &str, tr_name: &str, tr_uid: &str) -> Value {
        json!({"kind": "Pod", "metadata": {"name": name,
            "labels": {"tekton.dev/pipelineRun": "pr", "tekton.dev/taskRun": tr_name},
            "ownerReferences": [{"kind": "TaskRun", "name": tr_name, "uid": tr_uid}]}})
    }

    fn names(v: &[&Value]) -> Vec<String> {
        v.iter().map(|c| name(c).to_owned()).collect()
    }

    #[test]
    fn previous_runs_children_are_dropped() {
        let children = vec![
            tr("pr-a", "tr-old", "pr-old"),
            pod("pr-a-pod-old", "pr-a", "tr-old"),
            tr("pr-a", "tr-new", "pr-new"),
            pod("pr-a-pod", "pr-a", "tr-new"),
            // The old TaskRun is already gone; its pod lingers.
            pod("pr-b-pod-old", "pr-b", "tr-b-old"),
            tr("pr-b", "tr-b-new", "pr-new"),
        ];
        let own = own_children("PipelineRun", "pr-new", &children);
        assert_eq!(names(&own), ["pr-a", "pr-a-pod", "pr-b"]);
    }

    #[test]
    fn objects_without_uids_attach_by_name() {
        let children = vec![
            json!({"kind": "TaskRun", "metadata": {"name": "a"}}),
            json!({"kind": "Pod", "metadata": {"name": "p"}}),
        ];
        assert_eq!(own_children("PipelineRun", "pr-new", &children).len(), 2);
        assert_eq!(own_children("PipelineRun", "", &children).len(), 2);
    }

    #[test]
    fn job_pods_attach_by_controller_uid() {
        let mut pods = vec![
            json!({"kind": "Pod", "metadata": {"name": "old", "labels": {"controller-uid": "j-old"}}}),
            json!({"kind": "Pod", "metadata": {"name": "new", "labels": {"batch.kubernetes.io/controller-uid": "j-new"}}}),
            json!({"kind": "Pod", "metadata": {"name": "owned", "ownerReferences": [{"kind": "Job", "uid": "j-new"}]}}),
            json!({"kind": "Pod", "metadata": {"name": "bare"}}),
        ];
        retain_own_children("Job", "j-new", &mut pods);
        let kept: Vec<&str> = pods.iter().map(name).collect();
        assert_eq!(kept, ["new", "owned", "bare"]);
    }
}
