//! The watches: WorkflowExecutions (all namespaces, or several merged), and
//! PipelineRuns, TaskRuns, Jobs and Pods in the execution namespace mapped
//! back to their WFE by label. Every stream feeds a trimmed reflector store.

use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DynamicObject, TypeMeta};
use kube::discovery::ApiResource;
use kube::runtime::reflector::{self, store::Writer, ObjectRef};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::Client;

use super::cache_trim;
use super::config::ControllerConfig;
use super::hooks::ReconcileHooks;
use super::namespace_merge;
use super::stores::{self, KeyIndex, KindStore, Stores};
use crate::api::{WorkflowExecution, WorkflowExecutionSpec, WorkflowRef};
use crate::execute::{self, labels::LABEL_WORKFLOW_EXECUTION};

type ObjStream = BoxStream<'static, Result<DynamicObject, watcher::Error>>;

/// A WFE carrying only a name and namespace (the store key of a delete).
fn tombstone(namespace: &str, name: &str) -> WorkflowExecution {
    let mut w = WorkflowExecution::new(
        name,
        WorkflowExecutionSpec {
            remediation_request_ref: ObjectReference::default(),
            workflow_ref: WorkflowRef::default(),
            target_resource: String::new(),
            parameters: None,
            confidence: None,
            rationale: None,
            times_out_at: None,
        },
    );
    w.metadata.namespace = Some(namespace.to_string());
    w
}

/// Watch one kind in the execution namespace (only objects carrying our
/// label), trimmed into a store; returns the store and the trigger stream.
fn kind_watch(
    client: &Client,
    namespace: &str,
    resource: ApiResource,
    children: Option<Arc<KeyIndex>>,
    hooks: &Arc<dyn ReconcileHooks>,
) -> (KindStore, ObjStream) {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource);
    let writer = Writer::new(resource.clone());
    let store = writer.as_reader();
    let kind = resource.kind.clone();
    let cached = resource.clone();
    let stream = watcher(api, kind_watch_config())
        .inspect_err(restart_reporter(hooks.clone(), kind.clone()))
        .default_backoff()
        .modify(move |o: &mut DynamicObject| prepare_object(&cached, o))
        .map_ok(move |ev| {
            if let Some(idx) = &children {
                stores::index_child_event(idx, &kind, &ev);
            }
            ev
        })
        .reflect(writer)
        .touched_objects()
        .filter_map(drop_errors)
        .boxed();
    (KindStore { resource, store }, stream)
}

/// Which objects of the execution namespace are cached: only those carrying
/// our owner label.
pub(crate) fn kind_watch_config() -> watcher::Config {
    watcher::Config::default().labels(LABEL_WORKFLOW_EXECUTION)
}

/// An object as the cache keeps it: typed and trimmed.
pub(crate) fn prepare_object(resource: &ApiResource, o: &mut DynamicObject) {
    if o.types.is_none() {
        o.types = Some(TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        });
    }
    cache_trim::trim_object_as(&resource.kind, o);
}

/// Keep watch errors out of the controller's trigger streams. Each watch
/// already backs off and re-lists on its own (and the error was reported);
/// an error that reached the controller would also trip its shared trigger
/// backoff, which stalls *every* watch: after a round of `410 Gone` on five
/// watches, new WorkflowExecutions went unnoticed for tens of seconds.
fn drop_errors<T>(
    r: Result<T, watcher::Error>,
) -> futures::future::Ready<Option<Result<T, watcher::Error>>> {
    futures::future::ready(r.ok().map(Ok))
}

/// Report a watch error: the watcher re-lists or resumes after a backoff.
fn restart_reporter(
    hooks: Arc<dyn ReconcileHooks>,
    kind: String,
) -> impl FnMut(&watcher::Error) + Send + 'static {
    move |e| {
        tracing::warn!(kind = %kind, error = %e, "watch failed; restarting");
        hooks.watch_restarted(&kind);
    }
}

/// Map an execution object to its owner and to every other WFE on the same
/// target: when a lock is released (or replaced), a WFE waiting for the
/// target is decided again at once instead of at its next requeue.
fn execution_mapper(
    targets: Arc<KeyIndex>,
) -> impl Fn(DynamicObject) -> Vec<ObjectRef<WorkflowExecution>> + Send + Sync + 'static {
    move |o: DynamicObject| {
        let mut refs: Vec<ObjectRef<WorkflowExecution>> =
            stores::owner_ref(&o).into_iter().collect();
        let target = o
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(execute::labels::ANNOTATION_TARGET_RESOURCE));
        if let Some(t) = target {
            for (ns, name) in targets.get(t) {
                let r = ObjectRef::new(&name).within(&ns);
                if !refs.contains(&r) {
                    refs.push(r);
                }
            }
        }
        refs
    }
}

/// Map a TaskRun or Pod to its WFE through its parent's labels (Tekton and
/// the Job controller copy them, but the parent is authoritative), falling
/// back to its own labels.
fn child_mapper(
    parents: Vec<KindStore>,
    namespace: String,
) -> impl Fn(DynamicObject) -> Option<ObjectRef<WorkflowExecution>> + Send + Sync + 'static {
    move |o: DynamicObject| {
        stores::parent_of(&o)
            .and_then(|p| parents.iter().find_map(|s| s.get(&namespace, &p)))
            .and_then(|p| stores::owner_ref(&p))
            .or_else(|| stores::owner_ref(&o))
    }
}

/// Build the stores and the controller with all its watches.
pub(crate) fn build(
    client: &Client,
    config: &ControllerConfig,
    tekton: bool,
    hooks: &Arc<dyn ReconcileHooks>,
) -> (Stores, Controller<WorkflowExecution>) {
    let targets = Arc::new(KeyIndex::default());
    let children = Arc::new(KeyIndex::default());

    let wc = watcher::Config::default();
    let wfe_events = if config.namespaces.is_empty() {
        watcher(Api::<WorkflowExecution>::all(client.clone()), wc)
            .default_backoff()
            .boxed()
    } else {
        let streams = config
            .namespaces
            .iter()
            .map(|ns| {
                watcher(
                    Api::<WorkflowExecution>::namespaced(client.clone(), ns),
                    wc.clone(),
                )
                .default_backoff()
                .boxed()
            })
            .collect();
        namespace_merge::merge_namespaces(streams, tombstone).boxed()
    };
    let (wfe_reader, wfe_writer) = reflector::store::<WorkflowExecution>();
    let idx = targets.clone();
    let wfe_stream = wfe_events
        .inspect_err(restart_reporter(hooks.clone(), "WorkflowExecution".into()))
        .modify(cache_trim::trim_wfe)
        .map_ok(move |ev| {
            stores::index_wfe_event(&idx, &ev);
            ev
        })
        .reflect(wfe_writer)
        .applied_objects()
        .filter_map(drop_errors);
    let mut controller = Controller::for_stream(wfe_stream, wfe_reader.clone());

    let ns = config.execution_namespace.clone();
    let (jobs, job_stream) = kind_watch(client, &ns, ApiResource::erase::<Job>(&()), None, hooks);
    let (pods, pod_stream) = kind_watch(
        client,
        &ns,
        ApiResource::erase::<Pod>(&()),
        Some(children.clone()),
        hooks,
    );
    let mut parents = vec![jobs.clone()];
    let (mut pipeline_runs, mut task_runs) = (None, None);
    if tekton {
        let (prs, pr_stream) =
            kind_watch(client, &ns, execute::pipeline_run_resource(), None, hooks);
        let (trs, tr_stream) = kind_watch(
            client,
            &ns,
            execute::task_run_resource(),
            Some(children.clone()),
            hooks,
        );
        parents.insert(0, prs.clone());
        controller = controller
            .watches_stream_with(
                pr_stream,
                execution_mapper(targets.clone()),
                prs.resource.clone(),
            )
            .watches_stream_with(
                tr_stream,
                child_mapper(parents.clone(), ns.clone()),
                trs.resource.clone(),
            );
        pipeline_runs = Some(prs);
        task_runs = Some(trs);
    }
    controller = controller
        .watches_stream_with(
            job_stream,
            execution_mapper(targets.clone()),
            jobs.resource.clone(),
        )
        .watches_stream_with(
            pod_stream,
            child_mapper(parents, ns.clone()),
            pods.resource.clone(),
        );

    let stores = Stores {
        wfes: wfe_reader,
        targets,
        pipeline_runs,
        task_runs,
        jobs,
        pods,
        children,
        execution_namespace: ns,
    };
    (stores, controller)
}
