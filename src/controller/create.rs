//! Creating the execution object, guarded (DESIGN.md invariant 5): a fresh
//! read of the WFE from the API server (not the cache) that must still be
//! Pending without an execution, the finalizer, then the create under the
//! deterministic lock name. What the API server answers is reported as it
//! is; deciding what it means is the reconcile's business.

use std::sync::Arc;

use jiff::Timestamp;
use kube::api::PostParams;
use kube::ResourceExt;

use super::context::Context;
use super::error::{is_already_exists, ControllerError};
use super::rejection::{namespace_signal, rejection};
use super::stores::FoundExecution;
use super::writes::{ensure_finalizer, execution_api, wfe_api};
use crate::api::WorkflowExecution;
use crate::execute::{self, lock_name, BuildInput, ExecutionEngine};
use crate::observe::CreateRejection;
use crate::rules::Lifecycle;

/// What became of one create.
pub(crate) enum Created {
    Done,
    /// The fresh read shows the WFE is no longer a Pending WFE without an
    /// execution (the cache was stale), or the object holding the lock name
    /// went away in between: nothing was created.
    Stale,
    /// The lock name is taken by this object.
    Exists(FoundExecution),
    /// The API server refused the object (invalid, forbidden, over quota,
    /// no namespace).
    Refused(CreateRejection),
}

/// Whether the fresh copy is still the WFE in the initial phase, without an
/// execution, that the decision was made on.
fn still_pending(
    fresh: &WorkflowExecution,
    current: &WorkflowExecution,
    lifecycle: &Lifecycle,
) -> bool {
    let status = fresh.status.as_ref();
    fresh.uid() == current.uid()
        && fresh.metadata.deletion_timestamp.is_none()
        && lifecycle.is_initial(status.and_then(|s| s.phase.as_deref()).unwrap_or(""))
        && status.and_then(|s| s.execution_ref.as_ref()).is_none()
}

/// Fresh read, finalizer, then create the execution object. `current`
/// becomes the fresh copy (with the finalizer) when the read confirms it.
pub(crate) async fn create_execution(
    ctx: &Context,
    current: &mut WorkflowExecution,
) -> Result<Created, ControllerError> {
    let api = wfe_api(ctx, current);
    let name = current.name_any();
    let Some(fresh) = api
        .get_opt(&name)
        .await
        .map_err(|e| ControllerError::api("get", name.clone(), e))?
    else {
        return Ok(Created::Stale);
    };
    if !still_pending(&fresh, current, &ctx.rules.load().lifecycle) {
        return Ok(Created::Stale);
    }
    *current = fresh;
    ensure_finalizer(ctx, current).await?;

    let engine_name = current
        .spec
        .workflow_ref
        .execution_engine
        .clone()
        .unwrap_or_default();
    let engine = ExecutionEngine::parse(&engine_name)?;
    let object = execute::build(
        engine,
        &BuildInput {
            wfe: current,
            namespace: &ctx.config.execution_namespace,
            now: Timestamp::now(),
        },
    )?;
    let exec_api = execution_api(ctx, engine);
    let kind = engine.api_resource().kind;
    match exec_api.create(&PostParams::default(), &object).await {
        Ok(_) => {
            ctx.hooks.api_write("create", &kind);
            ctx.namespace.learned_active();
            Ok(Created::Done)
        }
        Err(e) if is_already_exists(&e) => {
            let lock = lock_name(&current.spec.target_resource);
            match exec_api.get_opt(&lock).await {
                Ok(Some(obj)) => Ok(Created::Exists(FoundExecution {
                    engine,
                    object: Arc::new(obj),
                })),
                // Deleted in between: the next reconcile creates it.
                Ok(None) => Ok(Created::Stale),
                Err(e) => Err(ControllerError::api("get", format!("{kind} {lock}"), e)),
            }
        }
        Err(e) => {
            if let Some(signal) = namespace_signal(&e, &ctx.config.execution_namespace) {
                ctx.namespace.learned(signal);
            }
            match rejection(&e) {
                Some(r) => {
                    tracing::info!(
                        wfe = %current.name_any(), kind = %kind, code = r.code, reason = %r.reason,
                        message = %r.message, "execution object refused by the API server"
                    );
                    Ok(Created::Refused(r))
                }
                None => Err(ControllerError::api("create", kind, e)),
            }
        }
    }
}
