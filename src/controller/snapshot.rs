//! One WFE as the controller sees it, read once from the API server
//! (`wfe-engine capture` and `explain`). The caches are filled from lists
//! with the watches' own selectors, trimming and indexes, then the
//! reconcile's own [`observe_wfe`] assembles the view, fresh reads included.
//! Nothing is written.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use kube::runtime::reflector::{self, store::Writer, ObjectRef};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::Value;

use super::cache_trim;
use super::config::ControllerConfig;
use super::discovery;
use super::error::ControllerError;
use super::gather::{observe_wfe, View};
use super::stores::{self, KeyIndex, KindStore, Stores};
use super::watches::{kind_watch_config, prepare_object};
use crate::api::WorkflowExecution;
use crate::execute;
use crate::observe::EnvFacts;

/// What the controller would decide on for one WFE.
#[derive(Debug, Clone)]
pub struct LiveView {
    /// The WFE as cached (trimmed).
    pub wfe: WorkflowExecution,
    /// The execution object at its lock name, if any.
    pub execution: Option<Value>,
    pub children: Vec<Value>,
    /// Other WFEs on the same target.
    pub others: Vec<WorkflowExecution>,
    pub env: EnvFacts,
    /// When the reads finished.
    pub captured_at: Timestamp,
}

/// Why a capture could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("WorkflowExecution {0}/{1} not found")]
    NotFound(String, String),
    #[error("namespace {0} is not among the watched namespaces ({1})")]
    NotWatched(String, String),
    #[error(transparent)]
    Api(#[from] ControllerError),
}

fn listed(kind: &str, e: kube::Error) -> ControllerError {
    ControllerError::api("list", kind.to_string(), e)
}

/// A kind of the execution namespace, listed as its watch would cache it.
async fn kind_store(
    client: &Client,
    namespace: &str,
    resource: ApiResource,
    children: Option<&KeyIndex>,
) -> Result<KindStore, ControllerError> {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource);
    let mut params = ListParams::default();
    if let Some(sel) = kind_watch_config().label_selector {
        params = params.labels(&sel);
    }
    let list = api
        .list(&params)
        .await
        .map_err(|e| listed(&resource.kind, e))?;
    let mut writer = Writer::new(resource.clone());
    for mut o in list.items {
        prepare_object(&resource, &mut o);
        let ev = watcher::Event::Apply(o);
        if let Some(idx) = children {
            stores::index_child_event(idx, &resource.kind, &ev);
        }
        writer.apply_watcher_event(&ev);
    }
    Ok(KindStore {
        store: writer.as_reader(),
        resource,
    })
}

/// The WFEs the controller watches, cached and indexed by target.
async fn wfe_store(
    client: &Client,
    config: &ControllerConfig,
    targets: &KeyIndex,
) -> Result<reflector::Store<WorkflowExecution>, ControllerError> {
    let mut items = Vec::new();
    if config.namespaces.is_empty() {
        let api = Api::<WorkflowExecution>::all(client.clone());
        items = api
            .list(&ListParams::default())
            .await
            .map_err(|e| listed("WorkflowExecution", e))?
            .items;
    } else {
        for ns in &config.namespaces {
            let api = Api::<WorkflowExecution>::namespaced(client.clone(), ns);
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| listed("WorkflowExecution", e))?;
            items.extend(list.items);
        }
    }
    let (reader, mut writer) = reflector::store::<WorkflowExecution>();
    for mut w in items {
        cache_trim::trim_wfe(&mut w);
        let ev = watcher::Event::Apply(w);
        stores::index_wfe_event(targets, &ev);
        writer.apply_watcher_event(&ev);
    }
    Ok(reader)
}

/// Read the cluster and assemble the view of `namespace/name`.
pub async fn capture(
    client: &Client,
    config: &ControllerConfig,
    rules: &crate::rules::RuleSet,
    namespace: &str,
    name: &str,
) -> Result<LiveView, SnapshotError> {
    if !config.namespaces.is_empty() && !config.namespaces.iter().any(|n| n == namespace) {
        return Err(SnapshotError::NotWatched(
            namespace.to_string(),
            config.namespaces.join(", "),
        ));
    }
    let engines = discovery::engines(client, config).await?;
    let tekton = engines.iter().any(|e| e == "tekton");
    let ns = config.execution_namespace.as_str();
    let targets = Arc::new(KeyIndex::default());
    let children = Arc::new(KeyIndex::default());
    let wfes = wfe_store(client, config, &targets).await?;
    let (pipeline_runs, task_runs) = if tekton {
        (
            Some(kind_store(client, ns, execute::pipeline_run_resource(), None).await?),
            Some(kind_store(client, ns, execute::task_run_resource(), Some(&children)).await?),
        )
    } else {
        (None, None)
    };
    let stores = Stores {
        wfes,
        targets,
        pipeline_runs,
        task_runs,
        jobs: kind_store(client, ns, ApiResource::erase::<Job>(&()), None).await?,
        pods: kind_store(client, ns, ApiResource::erase::<Pod>(&()), Some(&children)).await?,
        children,
        execution_namespace: ns.to_string(),
    };
    let wfe = stores
        .wfes
        .get(&ObjectRef::new(name).within(namespace))
        .ok_or_else(|| SnapshotError::NotFound(namespace.to_string(), name.to_string()))?;
    let view = View {
        client,
        config,
        stores: &stores,
        engines: &engines,
        namespace_phase: super::namespace::probe_phase(client, ns).await,
        rules: Arc::new(rules.clone()),
    };
    let observed = observe_wfe(&view, &wfe).await?;
    let captured_at = Timestamp::now();
    let others = observed
        .others
        .into_iter()
        .filter(|o| o.name_any() != wfe.name_any() || o.namespace() != wfe.namespace())
        .collect();
    Ok(LiveView {
        wfe: (*wfe).clone(),
        execution: observed.execution_json,
        children: observed.children,
        others,
        env: observed.env,
        captured_at,
    })
}
