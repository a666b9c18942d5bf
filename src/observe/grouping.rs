//! Splitting the objects of a capture file into one [`Capture`] per
//! PipelineRun or Job. Every object is indexed once (by uid and by kind,
//! namespace and name), so a `List` of thousands of runs is grouped in time
//! linear in its size.

use std::collections::HashMap;

use serde_json::Value;

use super::attach::{parent_uids, pod_task_run, retain_own_children};
use super::capture_info::{capture_info, CaptureInfo, CAPTURE_KIND};
use super::capture_model::{Capture, CaptureError, CHILD_KINDS, PRIMARY_KINDS};
use super::execution::{OWNER_LABEL, OWNER_NAMESPACE_LABEL};
use super::json::{arr_at, kind, label, name, namespace, str_at, uid};

fn same_ns(a: &str, b: &str) -> bool {
    a.is_empty() || b.is_empty() || a == b
}

/// The objects of one kind by uid and by name.
#[derive(Default)]
struct Index<'a> {
    by_uid: HashMap<&'a str, usize>,
    by_name: HashMap<(&'a str, &'a str), Vec<usize>>,
}

impl<'a> Index<'a> {
    fn new(objs: &'a [Value]) -> Index<'a> {
        let mut ix = Index::default();
        for (i, o) in objs.iter().enumerate() {
            if !uid(o).is_empty() {
                ix.by_uid.entry(uid(o)).or_insert(i);
            }
            ix.by_name.entry((kind(o), name(o))).or_default().push(i);
        }
        ix
    }

    /// The first object of `k` named `n` in namespace `ns` (either side
    /// may leave the namespace out).
    fn named(&self, objs: &[Value], k: &str, ns: &str, n: &str) -> Option<usize> {
        self.by_name
            .get(&(k, n))?
            .iter()
            .copied()
            .find(|i| same_ns(namespace(&objs[*i]), ns))
    }
}

/// The parents a child names by name: its owner references, then Tekton's
/// and the Job controller's name labels.
fn named_parents(c: &Value) -> impl Iterator<Item = (&str, &str)> {
    let refs = arr_at(c, &["metadata", "ownerReferences"])
        .iter()
        .map(|r| (str_at(r, &["kind"]), str_at(r, &["name"])));
    let labels = [
        ("PipelineRun", label(c, "tekton.dev/pipelineRun")),
        ("Job", label(c, "batch.kubernetes.io/job-name")),
        ("Job", label(c, "job-name")),
    ]
    .into_iter()
    .filter_map(|(k, n)| Some((k, n?)));
    refs.chain(labels)
}

/// The primary a child belongs to: the one whose uid it names, else the
/// one it names by name. (Objects of an earlier run under the same name
/// are dropped afterwards by `retain_own_children`.)
fn owner_of(c: &Value, primaries: &[Value], ix: &Index<'_>) -> Option<usize> {
    let by_uid = PRIMARY_KINDS
        .iter()
        .flat_map(|k| parent_uids(c, k))
        .find_map(|u| ix.by_uid.get(u).copied());
    by_uid.or_else(|| {
        named_parents(c)
            .filter(|(k, _)| PRIMARY_KINDS.contains(k))
            .find_map(|(k, n)| ix.named(primaries, k, namespace(c), n))
    })
}

/// Splits objects into captures: one per primary, children attached by the
/// uid they name for their parent, else by owner reference or Tekton/Job
/// name labels; unattached children go to the only primary when there is
/// exactly one. Children of another object of the same name are left out.
pub(super) fn group(file: &str, docs: Vec<Value>) -> Result<Vec<Capture>, CaptureError> {
    let mut primaries: Vec<Value> = Vec::new();
    let mut children: Vec<Value> = Vec::new();
    let mut wfes: Vec<Value> = Vec::new();
    let mut info: Option<CaptureInfo> = None;
    for d in docs {
        match kind(&d) {
            k if PRIMARY_KINDS.contains(&k) => primaries.push(d),
            k if CHILD_KINDS.contains(&k) => children.push(d),
            "WorkflowExecution" => wfes.push(d),
            k if k == CAPTURE_KIND => {
                if info.is_some() {
                    return Err(CaptureError::TwoHeaders { file: file.into() });
                }
                info = Some(capture_info(&d).map_err(|source| CaptureError::BadHeader {
                    file: file.into(),
                    source,
                })?);
            }
            _ => {} // Events
        }
    }
    separate_nested(&mut primaries, &mut children);
    if primaries.is_empty() && info.is_some() {
        // A live capture of a WFE with no execution object (e.g. held).
        primaries.push(Value::Null);
    }
    if primaries.is_empty() {
        let mut found: Vec<&str> = children.iter().chain(&wfes).map(kind).collect();
        found.sort_unstable();
        found.dedup();
        return Err(CaptureError::NoPrimary {
            file: file.into(),
            found: if found.is_empty() {
                "nothing".into()
            } else {
                found.join(", ")
            },
        });
    }

    let owners = attach_children(&primaries, &children);
    let mut out: Vec<Capture> = primaries
        .into_iter()
        .map(|p| Capture {
            file: file.into(),
            primary: p,
            children: Vec::new(),
            wfes: Vec::new(),
            info: info.clone(),
        })
        .collect();
    for (c, o) in children.into_iter().zip(owners) {
        if let Some(o) = o {
            out[o].children.push(c);
        }
    }
    for cap in &mut out {
        let (k, u) = (kind(&cap.primary).to_owned(), uid(&cap.primary).to_owned());
        retain_own_children(&k, &u, &mut cap.children);
    }
    attach_wfes(&mut out, wfes);
    Ok(out)
}

/// A PipelineRun owned by another PipelineRun of the file is a child
/// (pipelines in pipelines).
fn separate_nested(primaries: &mut Vec<Value>, children: &mut Vec<Value>) {
    let nested: Vec<bool> = {
        let ix = Index::new(primaries);
        primaries
            .iter()
            .enumerate()
            .map(|(i, p)| {
                kind(p) == "PipelineRun"
                    && arr_at(p, &["metadata", "ownerReferences"])
                        .iter()
                        .filter(|r| str_at(r, &["kind"]) == "PipelineRun")
                        .any(|r| {
                            let owner = match str_at(r, &["uid"]) {
                                "" => ix.named(
                                    primaries,
                                    "PipelineRun",
                                    namespace(p),
                                    str_at(r, &["name"]),
                                ),
                                u => ix.by_uid.get(u).copied(),
                            };
                            owner.is_some_and(|o| o != i)
                        })
            })
            .collect()
    };
    if !nested.contains(&true) {
        return;
    }
    let mut kept = Vec::new();
    for (p, n) in std::mem::take(primaries).into_iter().zip(nested) {
        if n {
            children.push(p);
        } else {
            kept.push(p);
        }
    }
    *primaries = kept;
}

/// The primary of every child (`None`: dropped). Runs first, so a Pod can
/// follow the TaskRun it belongs to.
fn attach_children(primaries: &[Value], children: &[Value]) -> Vec<Option<usize>> {
    let ix = Index::new(primaries);
    let sole = (primaries.len() == 1).then_some(0);
    let mut owners: Vec<Option<usize>> = vec![None; children.len()];
    for (i, c) in children.iter().enumerate() {
        if kind(c) != "Pod" {
            owners[i] = owner_of(c, primaries, &ix).or(sole);
        }
    }
    let runs = Index::new(children);
    for (i, c) in children.iter().enumerate() {
        if kind(c) != "Pod" {
            continue;
        }
        let (tr_uid, tr_name) = pod_task_run(c);
        let task_run = runs
            .by_uid
            .get(tr_uid)
            .copied()
            .filter(|t| kind(&children[*t]) == "TaskRun")
            .or_else(|| runs.named(children, "TaskRun", namespace(c), tr_name));
        owners[i] = task_run
            .and_then(|t| owners[t])
            .or_else(|| owner_of(c, primaries, &ix))
            .or(sole);
    }
    owners
}

/// A WFE goes to the capture whose object it labels; otherwise to all.
fn attach_wfes(out: &mut [Capture], wfes: Vec<Value>) {
    let mut by_owner: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, cap) in out.iter().enumerate() {
        if let Some(owner) = label(&cap.primary, OWNER_LABEL) {
            by_owner.entry(owner.to_owned()).or_default().push(i);
        }
    }
    for w in wfes {
        let target = by_owner.get(name(&w)).and_then(|idx| {
            idx.iter()
                .copied()
                .find(|i| same_ns_label(&out[*i].primary, &w))
        });
        match target {
            Some(i) => out[i].wfes.push(w),
            None => out.iter_mut().for_each(|cap| cap.wfes.push(w.clone())),
        }
    }
}

fn same_ns_label(primary: &Value, wfe: &Value) -> bool {
    match label(primary, OWNER_NAMESPACE_LABEL) {
        Some(ns) => namespace(wfe).is_empty() || ns == namespace(wfe),
        None => true,
    }
}
