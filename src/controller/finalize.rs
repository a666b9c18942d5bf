//! A WFE being deleted: owner-checked cleanup of its execution object, the
//! `WorkflowExecutionDeleted` event, then finalizer removal. No decision is
//! involved: deletion is the user's, and the cleanup is the same whatever
//! the rules say.

use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use serde_json::json;

use super::context::Context;
use super::error::{is_not_found, ControllerError};
use super::stores::FoundExecution;
use super::writes::{delete_object, execution_api, owned_by, publish, wfe_api};
use crate::api::{WorkflowExecution, FINALIZER};
use crate::engine::EventRecord;
use crate::execute::{lock_name, ExecutionEngine};

/// Clean up after `wfe` and let it go. A failed cleanup keeps the finalizer
/// (the error is retried with backoff) and is reported as a
/// `CleanupFailed` event.
pub(crate) async fn finalize(
    ctx: &Context,
    wfe: &WorkflowExecution,
) -> Result<Action, ControllerError> {
    if !wfe.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let phase = ctx
        .rules
        .load()
        .lifecycle
        .phase_or_initial(
            wfe.status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or(""),
        )
        .to_string();
    if let Err(e) = cleanup(ctx, wfe).await {
        let ev = EventRecord {
            type_: "Warning".into(),
            reason: "CleanupFailed".into(),
            message: format!("Cleanup failed during finalization: {e}"),
        };
        publish(
            ctx,
            wfe,
            &ev,
            &wfe.resource_version().unwrap_or_default(),
            0,
        )
        .await;
        return Err(e);
    }
    let ev = EventRecord {
        type_: "Normal".into(),
        reason: "WorkflowExecutionDeleted".into(),
        message: format!("WorkflowExecution cleanup completed (phase: {phase})"),
    };
    publish(ctx, wfe, &ev, "deleted", 0).await;
    ctx.audit_conditions.written(wfe);

    let remaining: Vec<&String> = wfe
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .collect();
    let body = json!({"metadata": {
        "resourceVersion": wfe.resource_version(),
        "finalizers": remaining,
    }});
    match wfe_api(ctx, wfe)
        .patch(
            &wfe.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&body),
        )
        .await
    {
        Ok(_) => {
            ctx.hooks.api_write("patch", "WorkflowExecution");
            Ok(Action::await_change())
        }
        Err(e) if is_not_found(&e) => Ok(Action::await_change()),
        Err(e) => Err(ControllerError::api("remove-finalizer", wfe.name_any(), e)),
    }
}

/// Delete the execution object at the WFE's lock name, of either engine,
/// when it is labelled as this WFE's.
async fn cleanup(ctx: &Context, wfe: &WorkflowExecution) -> Result<(), ControllerError> {
    let lock = lock_name(&wfe.spec.target_resource);
    let cleanup_failed = |source: ControllerError| ControllerError::Cleanup {
        object: lock.clone(),
        source: Box::new(source),
    };
    let mut engines = vec![ExecutionEngine::Job];
    if ctx.engines.iter().any(|e| e == "tekton") {
        engines.insert(0, ExecutionEngine::Tekton);
    }
    for engine in engines {
        let obj = execution_api(ctx, engine)
            .get_opt(&lock)
            .await
            .map_err(|e| cleanup_failed(ControllerError::api("get", lock.clone(), e)))?;
        if let Some(obj) = obj {
            if owned_by(&obj, wfe) {
                let found = FoundExecution {
                    engine,
                    object: Arc::new(obj),
                };
                delete_object(ctx, &found).await.map_err(cleanup_failed)?;
            }
        }
    }
    Ok(())
}
