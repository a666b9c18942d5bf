//! What a reconcile observes around one WFE before it decides: the execution
//! object at the lock name and its children (from the caches, confirmed or
//! refreshed from the API server where a stale cache would decide wrongly
//! for good), the other WFEs on the target, and the environment. The one
//! place that assembles this view: the reconcile and `wfe-engine capture`
//! both call [`observe_wfe`], so a capture holds exactly what the controller
//! decides on.

use std::sync::Arc;

use kube::Client;
use serde_json::Value;

use super::config::ControllerConfig;
use super::discovery;
use super::error::ControllerError;
use super::stores::{FoundExecution, Stores};
use crate::api::WorkflowExecution;
use crate::execute::{lock_name, ExecutionEngine};
use crate::observe::EnvFacts;

/// What the reconcile saw around one WFE (the input of `observe`).
pub(crate) struct Observed {
    pub execution: Option<FoundExecution>,
    pub execution_json: Option<Value>,
    pub children: Vec<Value>,
    pub others: Vec<WorkflowExecution>,
    pub env: EnvFacts,
}

/// The read side of a controller: client, configuration, caches, engines.
pub struct View<'a> {
    pub client: &'a Client,
    pub config: &'a ControllerConfig,
    pub stores: &'a Stores,
    /// `job`, plus `tekton` when its CRDs were discovered.
    pub engines: &'a [String],
    /// `env.executionNamespacePhase`: what is known of the execution namespace.
    pub namespace_phase: String,
    /// The rule set, asked which phases are initial and terminal.
    pub rules: std::sync::Arc<crate::rules::RuleSet>,
}

/// The engine named by the WFE, if it is one we can build.
pub(crate) fn engine_of(wfe: &WorkflowExecution) -> Option<ExecutionEngine> {
    ExecutionEngine::parse(
        wfe.spec
            .workflow_ref
            .execution_engine
            .as_deref()
            .unwrap_or(""),
    )
    .ok()
}

fn phase(wfe: &WorkflowExecution) -> &str {
    wfe.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Past the initial phase and not finished: its execution runs.
fn is_running(wfe: &WorkflowExecution, rules: &crate::rules::RuleSet) -> bool {
    let p = phase(wfe);
    !rules.lifecycle.is_initial(p) && !rules.lifecycle.is_terminal(p)
}

fn is_pending(wfe: &WorkflowExecution, rules: &crate::rules::RuleSet) -> bool {
    rules.lifecycle.is_initial(phase(wfe))
}

/// Everything observed for one WFE, as the reconcile decides on it.
pub(crate) async fn observe_wfe(
    view: &View<'_>,
    wfe: &WorkflowExecution,
) -> Result<Observed, ControllerError> {
    let mut observed = gather(view, wfe).await?;
    if observed.execution.is_none() && is_running(wfe, &view.rules) {
        // The execution watch may lag behind the WFE watch (a reconnect, a
        // relist): "deleted externally" is final, so confirm it with a read.
        if let Some(found) = fetch_execution(view, wfe).await? {
            set_execution(view.stores, &mut observed, found);
        }
    }
    if is_running(wfe, &view.rules) && observed.execution.as_ref().is_some_and(finished) {
        // The run just ended and will be classified once, for good (a wrong
        // "pre-execution" verdict would let the next WFE retry a workflow
        // that already changed the target). The child watches may lag behind
        // the parent's (a reconnect, a relist): read the children fresh.
        if let Some(found) = observed.execution.clone() {
            observed.children = fresh_children(view, &found).await?;
        }
    }
    Ok(observed)
}

/// Collect the observe inputs from the stores (and, for the optional
/// dependency check of a Pending WFE, from the API).
async fn gather(view: &View<'_>, wfe: &WorkflowExecution) -> Result<Observed, ControllerError> {
    let lock = lock_name(&wfe.spec.target_resource);
    let execution = view.stores.execution(&lock, engine_of(wfe));
    let mut missing = Vec::new();
    if view.config.dependency_check && is_pending(wfe, &view.rules) {
        missing =
            discovery::missing_dependencies(view.client, &view.config.execution_namespace, wfe)
                .await?;
    }
    let mut observed = Observed {
        execution: None,
        execution_json: None,
        children: Vec::new(),
        others: view.stores.same_target(wfe),
        env: EnvFacts {
            engines: view.engines.to_vec(),
            execution_namespace: view.config.execution_namespace.clone(),
            execution_namespace_phase: view.namespace_phase.clone(),
            dependency_check: view.config.dependency_check,
            missing_dependencies: missing,
            create_rejection: None,
        },
    };
    if let Some(found) = execution {
        set_execution(view.stores, &mut observed, found);
    }
    Ok(observed)
}

/// Put an execution object (from the cache or a fresh GET) into `observed`.
pub(crate) fn set_execution(stores: &Stores, observed: &mut Observed, found: FoundExecution) {
    observed.children = stores.children_of(&found);
    observed.execution_json = serde_json::to_value(&*found.object).ok();
    observed.execution = Some(found);
}

/// Whether an execution object has reached a terminal condition.
fn finished(found: &FoundExecution) -> bool {
    let Some(conditions) = found
        .object
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
    else {
        return false;
    };
    conditions.iter().any(|c| {
        let ty = c.get("type").and_then(Value::as_str).unwrap_or("");
        let status = c.get("status").and_then(Value::as_str).unwrap_or("");
        match found.engine {
            ExecutionEngine::Tekton => ty == "Succeeded" && (status == "True" || status == "False"),
            ExecutionEngine::Job => {
                matches!(ty, "Complete" | "Failed" | "FailureTarget") && status == "True"
            }
        }
    })
}

/// The execution object at the WFE's lock name, read from the API server.
pub(crate) async fn fetch_execution(
    view: &View<'_>,
    wfe: &WorkflowExecution,
) -> Result<Option<FoundExecution>, ControllerError> {
    use kube::api::{Api, DynamicObject};

    let lock = lock_name(&wfe.spec.target_resource);
    let mut engines = vec![engine_of(wfe).unwrap_or(ExecutionEngine::Job)];
    for e in [ExecutionEngine::Tekton, ExecutionEngine::Job] {
        if !engines.contains(&e) {
            engines.push(e);
        }
    }
    for engine in engines {
        if engine == ExecutionEngine::Tekton && !view.engines.iter().any(|e| e == "tekton") {
            continue;
        }
        let api: Api<DynamicObject> = Api::namespaced_with(
            view.client.clone(),
            &view.config.execution_namespace,
            &engine.api_resource(),
        );
        match api.get_opt(&lock).await {
            Ok(Some(obj)) => {
                return Ok(Some(FoundExecution {
                    engine,
                    object: Arc::new(obj),
                }))
            }
            Ok(None) => {}
            Err(e) => return Err(ControllerError::api("get", lock, e)),
        }
    }
    Ok(None)
}

/// The children of an execution object, listed from the API server.
async fn fresh_children(
    view: &View<'_>,
    found: &FoundExecution,
) -> Result<Vec<Value>, ControllerError> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, DynamicObject, ListParams};
    use kube::discovery::ApiResource;

    let name = found.object.metadata.name.clone().unwrap_or_default();
    let ns = &view.config.execution_namespace;
    let (selector, kinds) = match found.engine {
        ExecutionEngine::Tekton => (
            format!("tekton.dev/pipelineRun={name}"),
            vec![
                crate::execute::task_run_resource(),
                ApiResource::erase::<Pod>(&()),
            ],
        ),
        ExecutionEngine::Job => (
            format!("batch.kubernetes.io/job-name={name}"),
            vec![ApiResource::erase::<Pod>(&())],
        ),
    };
    let mut out = Vec::new();
    for resource in kinds {
        let api = Api::<DynamicObject>::namespaced_with(view.client.clone(), ns, &resource);
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| ControllerError::api("list", format!("{} of {name}", resource.kind), e))?;
        for mut o in list.items {
            o.types = Some(kube::api::TypeMeta {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            });
            if let Ok(v) = serde_json::to_value(&o) {
                out.push(v);
            }
        }
    }
    // The name label also matches a previous run's lingering children.
    let uid = found.object.metadata.uid.as_deref().unwrap_or("");
    crate::observe::retain_own_children(&found.engine.api_resource().kind, uid, &mut out);
    Ok(out)
}
