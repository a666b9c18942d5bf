//! The reflector stores the controller reads from (never an API list per
//! reconcile), and two small indexes over them: WFEs by target, and the
//! children (TaskRuns, Pods) of each execution object by its name. Index
//! entries are hints: every lookup re-checks them against the store, so an
//! entry missed during a re-list can never produce a wrong answer.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use kube::api::DynamicObject;
use kube::discovery::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::Value;

use crate::api::WorkflowExecution;
use crate::execute::{self, ExecutionEngine};

/// Label Tekton puts on TaskRuns and Pods of a PipelineRun.
pub const TEKTON_PIPELINE_RUN_LABEL: &str = "tekton.dev/pipelineRun";
/// Labels the Job controller puts on a Job's Pods.
pub const JOB_NAME_LABELS: [&str; 2] = ["batch.kubernetes.io/job-name", "job-name"];

/// A multimap `key → {(namespace, name)}` behind a mutex.
#[derive(Debug, Default)]
pub struct KeyIndex {
    map: Mutex<HashMap<String, BTreeSet<(String, String)>>>,
}

impl KeyIndex {
    pub fn insert(&self, key: &str, ns: &str, name: &str) {
        let mut m = self.lock();
        let set = m.entry(key.to_string()).or_default();
        let item = (ns.to_string(), name.to_string());
        if !set.contains(&item) {
            set.insert(item);
        }
    }

    pub fn remove(&self, key: &str, ns: &str, name: &str) {
        let mut m = self.lock();
        if let Some(set) = m.get_mut(key) {
            set.remove(&(ns.to_string(), name.to_string()));
            if set.is_empty() {
                m.remove(key);
            }
        }
    }

    /// Entries under `key`, in (namespace, name) order.
    pub fn get(&self, key: &str) -> Vec<(String, String)> {
        self.lock()
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, BTreeSet<(String, String)>>> {
        // Each update is one map operation; a poisoned map is still consistent.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A reflector store of one kind in the execution namespace.
#[derive(Clone)]
pub struct KindStore {
    pub resource: ApiResource,
    pub store: Store<DynamicObject>,
}

impl KindStore {
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<DynamicObject>> {
        self.store
            .get(&ObjectRef::new_with(name, self.resource.clone()).within(namespace))
    }
}

/// Every store the reconcile reads.
#[derive(Clone)]
pub struct Stores {
    pub wfes: Store<WorkflowExecution>,
    pub targets: Arc<KeyIndex>,
    /// `None` when Tekton is not installed.
    pub pipeline_runs: Option<KindStore>,
    pub task_runs: Option<KindStore>,
    pub jobs: KindStore,
    pub pods: KindStore,
    /// Execution object name → its TaskRuns and Pods (namespace field holds the kind).
    pub children: Arc<KeyIndex>,
    pub execution_namespace: String,
}

/// The execution object found at a WFE's lock name.
#[derive(Debug, Clone)]
pub struct FoundExecution {
    pub engine: ExecutionEngine,
    pub object: Arc<DynamicObject>,
}

impl Stores {
    /// Wait until every store holds its initial list. A reconcile that ran
    /// earlier (e.g. just after a restart) would see executions, children or
    /// other WFEs missing, and decide wrongly for good: a Running WFE's
    /// execution "deleted externally", a failed execution's evidence absent,
    /// a blocking failure on the target unseen.
    pub async fn wait_ready(&self) {
        store_ready(&self.wfes).await;
        let kinds = [
            self.pipeline_runs.as_ref(),
            self.task_runs.as_ref(),
            Some(&self.jobs),
            Some(&self.pods),
        ];
        for kind in kinds.into_iter().flatten() {
            store_ready(&kind.store).await;
        }
    }

    /// The execution object at `lock` in the cache: the kind of the WFE's own
    /// engine first, else the other kind (a WFE on the same target with the
    /// other engine holds the lock just as well).
    pub fn execution(
        &self,
        lock: &str,
        preferred: Option<ExecutionEngine>,
    ) -> Option<FoundExecution> {
        let order = match preferred {
            Some(ExecutionEngine::Job) => [ExecutionEngine::Job, ExecutionEngine::Tekton],
            _ => [ExecutionEngine::Tekton, ExecutionEngine::Job],
        };
        order.into_iter().find_map(|engine| {
            let store = match engine {
                ExecutionEngine::Tekton => self.pipeline_runs.as_ref()?,
                ExecutionEngine::Job => &self.jobs,
            };
            let object = store.get(&self.execution_namespace, lock)?;
            Some(FoundExecution { engine, object })
        })
    }

    /// The TaskRuns and Pods of the execution object, as JSON, in a stable
    /// order (TaskRuns first, then Pods, each by name). Listed by the name
    /// labels, then kept only when they do not name another object's uid:
    /// after the lock name is reused, the previous run's children can
    /// linger with the same labels (asynchronous garbage collection).
    pub fn children_of(&self, found: &FoundExecution) -> Vec<Value> {
        let engine = found.engine;
        let name = found.object.metadata.name.as_deref().unwrap_or("");
        let mut out = Vec::new();
        for (kind, child) in self.children.get(name) {
            let store = match kind.as_str() {
                "TaskRun" => self.task_runs.as_ref(),
                "Pod" => Some(&self.pods),
                _ => None,
            };
            let Some(obj) = store.and_then(|s| s.get(&self.execution_namespace, &child)) else {
                self.children.remove(name, &kind, &child);
                continue;
            };
            if parent_of(&obj).as_deref() != Some(name) {
                self.children.remove(name, &kind, &child);
                continue;
            }
            let belongs = match engine {
                ExecutionEngine::Tekton => true,
                ExecutionEngine::Job => kind == "Pod",
            };
            if belongs {
                if let Ok(v) = serde_json::to_value(&*obj) {
                    out.push(v);
                }
            }
        }
        let uid = found.object.metadata.uid.as_deref().unwrap_or("");
        crate::observe::retain_own_children(&engine.api_resource().kind, uid, &mut out);
        out
    }

    /// Other WFEs with the same target (any watched namespace), `wfe` excluded.
    pub fn same_target(&self, wfe: &WorkflowExecution) -> Vec<WorkflowExecution> {
        let target = &wfe.spec.target_resource;
        let me = (wfe.namespace(), wfe.metadata.name.clone());
        let mut out = Vec::new();
        for (ns, name) in self.targets.get(target) {
            if (Some(ns.clone()), Some(name.clone())) == me {
                continue;
            }
            match self.wfes.get(&ObjectRef::new(&name).within(&ns)) {
                Some(o) if &o.spec.target_resource == target => out.push((*o).clone()),
                _ => self.targets.remove(target, &ns, &name),
            }
        }
        out
    }
}

/// The execution object a TaskRun or Pod belongs to (by Tekton's or the Job
/// controller's label).
pub fn parent_of(obj: &DynamicObject) -> Option<String> {
    let labels = obj.metadata.labels.as_ref()?;
    labels
        .get(TEKTON_PIPELINE_RUN_LABEL)
        .or_else(|| JOB_NAME_LABELS.iter().find_map(|l| labels.get(*l)))
        .cloned()
}

/// Keep the target index in step with the WFE watch.
pub fn index_wfe_event(index: &KeyIndex, ev: &watcher::Event<WorkflowExecution>) {
    match ev {
        watcher::Event::Apply(w) | watcher::Event::InitApply(w) => {
            index.insert(
                &w.spec.target_resource,
                &w.namespace().unwrap_or_default(),
                &w.name_any(),
            );
        }
        watcher::Event::Delete(w) => index.remove(
            &w.spec.target_resource,
            &w.namespace().unwrap_or_default(),
            &w.name_any(),
        ),
        watcher::Event::Init | watcher::Event::InitDone => {}
    }
}

/// Keep the children index in step with a TaskRun or Pod watch.
pub fn index_child_event(index: &KeyIndex, kind: &str, ev: &watcher::Event<DynamicObject>) {
    match ev {
        watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
            if let Some(parent) = parent_of(o) {
                index.insert(&parent, kind, &o.name_any());
            }
        }
        watcher::Event::Delete(o) => {
            if let Some(parent) = parent_of(o) {
                index.remove(&parent, kind, &o.name_any());
            }
        }
        watcher::Event::Init | watcher::Event::InitDone => {}
    }
}

/// The WFE name an execution object (or a child carrying its labels) points
/// back to: the raw-name annotation if present, else the label.
pub fn owner_ref(obj: &DynamicObject) -> Option<ObjectRef<WorkflowExecution>> {
    let labels = obj.metadata.labels.as_ref()?;
    let ns = labels.get(execute::labels::LABEL_SOURCE_NAMESPACE)?;
    let name = obj
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(execute::labels::ANNOTATION_WORKFLOW_EXECUTION))
        .or_else(|| labels.get(execute::labels::LABEL_WORKFLOW_EXECUTION))?;
    if name.is_empty() || ns.is_empty() {
        return None;
    }
    Some(ObjectRef::new(name).within(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_index_insert_remove() {
        let idx = KeyIndex::default();
        idx.insert("t", "ns", "b");
        idx.insert("t", "ns", "a");
        idx.insert("t", "ns", "a");
        assert_eq!(
            idx.get("t"),
            vec![("ns".into(), "a".into()), ("ns".into(), "b".into())]
        );
        idx.remove("t", "ns", "a");
        idx.remove("t", "ns", "b");
        assert!(idx.is_empty());
        assert!(idx.get("missing").is_empty());
    }

    #[test]
    fn owner_ref_prefers_the_raw_name_annotation() {
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"name": "wfe-1", "namespace": "x",
                "labels": {"kubernaut.ai/workflow-execution": "short-abc", "kubernaut.ai/source-namespace": "team"},
                "annotations": {"kubernaut.ai/workflow-execution": "the-full-long-name"}}
        }))
        .unwrap();
        let r = owner_ref(&obj).unwrap();
        assert_eq!(r.name, "the-full-long-name");
        assert_eq!(r.namespace.as_deref(), Some("team"));
    }
}

/// Wait until a reflector store has its initial list.
///
/// kube-runtime's `Store::wait_until_ready` keeps a single waker: with several
/// tasks waiting at once (every reconcile at start-up), all but the last one
/// to poll are never woken. Asking again every few milliseconds re-registers
/// this task, and a store that is already ready answers at once. Returns when
/// the store is ready or its writer is gone (the controller is stopping).
pub async fn store_ready<K>(store: &Store<K>)
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    const POLL: std::time::Duration = std::time::Duration::from_millis(20);
    loop {
        if let Ok(_ready_or_gone) = tokio::time::timeout(POLL, store.wait_until_ready()).await {
            return;
        }
    }
}

#[cfg(test)]
mod ready_tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::store;

    /// Every concurrent waiter returns once the store is initialised (the
    /// plain `wait_until_ready` wakes only one of them).
    #[tokio::test]
    async fn all_concurrent_waiters_see_readiness() {
        let (reader, mut writer) = store::<ConfigMap>();
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let r = reader.clone();
                tokio::spawn(async move { store_ready(&r).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        for w in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(2), w)
                .await
                .expect("waiter woke up")
                .expect("waiter task");
        }
    }
}
