//! `reconcile = observe → decide → apply`, nothing else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::ResourceExt;
use serde_json::Value;

use super::apply;
use super::context::Context;
use super::discovery;
use super::error::ControllerError;
use super::hooks::ReconcileOutcome;
use super::stores::FoundExecution;
use crate::api::WorkflowExecution;
use crate::engine::{self, Decision};
use crate::execute::{lock_name, Engine};
use crate::observe::{self, EnvFacts, ObserveInput};

/// What the reconcile saw around one WFE (the input of `observe`).
pub(crate) struct Observed {
    pub execution: Option<FoundExecution>,
    pub execution_json: Option<Value>,
    pub children: Vec<Value>,
    pub others: Vec<WorkflowExecution>,
    pub env: EnvFacts,
}

fn backoff_key(wfe: &WorkflowExecution) -> String {
    wfe.uid()
        .unwrap_or_else(|| format!("{}/{}", wfe.namespace().unwrap_or_default(), wfe.name_any()))
}

/// The kube-runtime reconciler.
pub(crate) async fn reconcile(
    wfe: Arc<WorkflowExecution>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let result = reconcile_one(&wfe, &ctx).await;
    let key = backoff_key(&wfe);
    match result {
        Ok((action, outcome)) => {
            ctx.hooks.reconciled(outcome, started.elapsed());
            if outcome == ReconcileOutcome::RulesError {
                // Not a reconcile error: the status says RulesError; retry
                // this one object later, with growing delays.
                return Ok(Action::requeue(ctx.backoff.next(&key)));
            }
            ctx.backoff.reset(&key);
            Ok(action)
        }
        Err(e) => {
            ctx.hooks
                .reconciled(ReconcileOutcome::Error, started.elapsed());
            ctx.hooks.reconcile_failed(e.category());
            Err(e)
        }
    }
}

/// The kube-runtime error policy: per-object exponential backoff.
pub(crate) fn error_policy(
    wfe: Arc<WorkflowExecution>,
    err: &ControllerError,
    ctx: Arc<Context>,
) -> Action {
    let key = backoff_key(&wfe);
    let delay = ctx.backoff.next(&key);
    tracing::warn!(
        wfe = %format!("{}/{}", wfe.namespace().unwrap_or_default(), wfe.name_any()),
        error = %err,
        category = err.category(),
        retry_in_ms = delay.as_millis() as u64,
        "reconcile failed"
    );
    Action::requeue(delay)
}

async fn reconcile_one(
    wfe: &Arc<WorkflowExecution>,
    ctx: &Context,
) -> Result<(Action, ReconcileOutcome), ControllerError> {
    if wfe.metadata.deletion_timestamp.is_some() {
        let action = apply::finalize(ctx, wfe).await?;
        return Ok((action, ReconcileOutcome::Deleted));
    }
    ctx.stores.wait_ready().await;
    let mut observed = gather(ctx, wfe).await?;
    if observed.execution.is_none() && is_running(wfe) {
        // The execution watch may lag behind the WFE watch (a reconnect, a
        // relist): "deleted externally" is final, so confirm it with a read.
        if let Some(found) = apply::fetch_execution(ctx, wfe).await? {
            set_execution(ctx, &mut observed, found);
        }
    }
    if is_running(wfe) && observed.execution.as_ref().is_some_and(finished) {
        // The run just ended and will be classified once, for good (a wrong
        // "pre-execution" verdict would let the next WFE retry a workflow
        // that already changed the target). The child watches may lag behind
        // the parent's (a reconnect, a relist): read the children fresh.
        if let Some(found) = observed.execution.clone() {
            observed.children = fresh_children(ctx, &found).await?;
        }
    }
    let decision = decide(ctx, wfe, &observed).await?;
    apply::apply(ctx, wfe, observed, decision).await
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
            Engine::Tekton => ty == "Succeeded" && (status == "True" || status == "False"),
            Engine::Job => {
                matches!(ty, "Complete" | "Failed" | "FailureTarget") && status == "True"
            }
        }
    })
}

/// The children of an execution object, listed from the API server.
async fn fresh_children(
    ctx: &Context,
    found: &FoundExecution,
) -> Result<Vec<Value>, ControllerError> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, DynamicObject, ListParams};
    use kube::discovery::ApiResource;

    let name = found.object.metadata.name.clone().unwrap_or_default();
    let ns = &ctx.config.execution_namespace;
    let (selector, kinds) = match found.engine {
        Engine::Tekton => (
            format!("tekton.dev/pipelineRun={name}"),
            vec![
                crate::execute::task_run_resource(),
                ApiResource::erase::<Pod>(&()),
            ],
        ),
        Engine::Job => (
            format!("batch.kubernetes.io/job-name={name}"),
            vec![ApiResource::erase::<Pod>(&())],
        ),
    };
    let mut out = Vec::new();
    for resource in kinds {
        let api = Api::<DynamicObject>::namespaced_with(ctx.client.clone(), ns, &resource);
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

/// The engine named by the WFE, if it is one we can build.
pub(crate) fn engine_of(wfe: &WorkflowExecution) -> Option<Engine> {
    Engine::parse(
        wfe.spec
            .workflow_ref
            .execution_engine
            .as_deref()
            .unwrap_or(""),
    )
    .ok()
}

fn is_running(wfe: &WorkflowExecution) -> bool {
    wfe.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

fn is_pending(wfe: &WorkflowExecution) -> bool {
    matches!(
        wfe.status.as_ref().and_then(|s| s.phase.as_deref()),
        None | Some("") | Some("Pending")
    )
}

/// Collect the observe inputs from the stores (and, for the optional
/// dependency check of a Pending WFE, from the API).
pub(crate) async fn gather(
    ctx: &Context,
    wfe: &WorkflowExecution,
) -> Result<Observed, ControllerError> {
    let lock = lock_name(&wfe.spec.target_resource);
    let execution = ctx.stores.execution(&lock, engine_of(wfe));
    let mut missing = Vec::new();
    if ctx.config.dependency_check && is_pending(wfe) {
        missing =
            discovery::missing_dependencies(&ctx.client, &ctx.config.execution_namespace, wfe)
                .await?;
    }
    let mut observed = Observed {
        execution: None,
        execution_json: None,
        children: Vec::new(),
        others: ctx.stores.same_target(wfe),
        env: EnvFacts {
            engines: ctx.engines.clone(),
            execution_namespace: ctx.config.execution_namespace.clone(),
            dependency_check: ctx.config.dependency_check,
            missing_dependencies: missing,
        },
    };
    if let Some(found) = execution {
        set_execution(ctx, &mut observed, found);
    }
    Ok(observed)
}

/// Put an execution object (from the cache or a fresh GET) into `observed`.
pub(crate) fn set_execution(ctx: &Context, observed: &mut Observed, found: FoundExecution) {
    observed.children = ctx.stores.children_of(&found);
    observed.execution_json = serde_json::to_value(&*found.object).ok();
    observed.execution = Some(found);
}

/// observe + decide with the current rule set.
///
/// `decide` runs untrusted rules: its worst case is bounded by the sandbox
/// (per evaluation and per decision), but even a bounded quarter second must
/// not hold an async worker that other reconciles and the watches need. So
/// the decision runs on tokio's blocking pool (at most `concurrency`
/// decisions at once, one per running reconcile); `observe` is plain data
/// shaping and stays here. The cost of the hop is measured by
/// `cargo bench --bench decide` ("placement").
pub(crate) async fn decide(
    ctx: &Context,
    wfe: &WorkflowExecution,
    observed: &Observed,
) -> Result<Decision, ControllerError> {
    let facts = observe::observe(&ObserveInput {
        wfe,
        execution: observed.execution_json.as_ref(),
        children: &observed.children,
        others: &observed.others,
        env: observed.env.clone(),
    });
    let rules = ctx.rules.load_full();
    let now = Timestamp::now();
    let (decision, elapsed) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        (engine::decide(&facts, &rules, now), started.elapsed())
    })
    .await
    .map_err(|e| ControllerError::Stopped(format!("the decision did not complete: {e}")))?;
    ctx.hooks.decided(&decision, elapsed);
    if let Some(err) = &decision.rules_error {
        tracing::warn!(
            wfe = %format!("{}/{}", wfe.namespace().unwrap_or_default(), wfe.name_any()),
            revision = %decision.revision,
            error = %err,
            "rules failed for this object"
        );
    }
    Ok(decision)
}

/// Requeue delay used when nothing else is scheduled for a non-terminal WFE:
/// a safety net in case a watch event is lost.
pub(crate) const SAFETY_REQUEUE: Duration = Duration::from_secs(300);
