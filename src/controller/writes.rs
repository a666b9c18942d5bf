//! The writes that carrying out a decision and finalizing a deletion share:
//! the API handles, the finalizer, deleting one exact execution object,
//! and publishing an event (whose failure never fails a reconcile).

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::ResourceExt;
use serde_json::json;

use super::context::Context;
use super::error::{is_conflict, is_not_found, ControllerError};
use super::stores::FoundExecution;
use crate::api::{WorkflowExecution, FINALIZER};
use crate::engine::EventRecord;
use crate::execute::{labelled_as, ExecutionEngine};

pub(crate) fn wfe_api(ctx: &Context, wfe: &WorkflowExecution) -> Api<WorkflowExecution> {
    Api::namespaced(ctx.client.clone(), &wfe.namespace().unwrap_or_default())
}

pub(crate) fn execution_api(ctx: &Context, engine: ExecutionEngine) -> Api<DynamicObject> {
    Api::namespaced_with(
        ctx.client.clone(),
        &ctx.config.execution_namespace,
        &engine.api_resource(),
    )
}

/// Publish an event; a failure is logged, never returned (events are
/// best effort, the status is the record).
pub(crate) async fn publish(
    ctx: &Context,
    wfe: &WorkflowExecution,
    ev: &EventRecord,
    transition: &str,
    i: usize,
) {
    if let Err(e) = ctx.events.publish(wfe, ev, transition, i).await {
        tracing::warn!(reason = %ev.reason, error = %e, "event not published");
    }
}

/// Add the finalizer if missing (merge patch guarded by resourceVersion).
pub(crate) async fn ensure_finalizer(
    ctx: &Context,
    current: &mut WorkflowExecution,
) -> Result<(), ControllerError> {
    if current.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let mut finalizers = current.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let body = json!({"metadata": {
        "resourceVersion": current.resource_version(),
        "finalizers": finalizers,
    }});
    let updated = wfe_api(ctx, current)
        .patch(
            &current.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&body),
        )
        .await
        .map_err(|e| ControllerError::api("add-finalizer", current.name_any(), e))?;
    ctx.hooks.api_write("patch", "WorkflowExecution");
    *current = updated;
    Ok(())
}

/// Delete an execution object (Background propagation, only this exact
/// object by uid). Returns whether something was deleted.
pub(crate) async fn delete_object(
    ctx: &Context,
    found: &FoundExecution,
) -> Result<bool, ControllerError> {
    let name = found.object.name_any();
    let params = DeleteParams {
        propagation_policy: Some(kube::api::PropagationPolicy::Background),
        preconditions: found.object.uid().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    let kind = found.engine.api_resource().kind;
    match execution_api(ctx, found.engine)
        .delete(&name, &params)
        .await
    {
        Ok(_) => {
            ctx.hooks.api_write("delete", &kind);
            Ok(true)
        }
        // Gone already, or replaced by another object of that name.
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(false),
        Err(e) => Err(ControllerError::api("delete", format!("{kind} {name}"), e)),
    }
}

/// Whether an execution object is labelled as `wfe`'s.
pub(crate) fn owned_by(obj: &DynamicObject, wfe: &WorkflowExecution) -> bool {
    let labels = obj.metadata.labels.clone().unwrap_or_default();
    labelled_as(
        &labels,
        &wfe.name_any(),
        &wfe.namespace().unwrap_or_default(),
    )
}
