//! Applying a `Decision`: the finalizer before any execution object exists,
//! a fresh read before creating one, create (AlreadyExists → re-observe and
//! decide once more), lock release, at most one status write, then events
//! and audit records. Deletion: owner-checked cleanup and finalizer removal.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use serde_json::json;

use super::context::Context;
use super::error::{is_already_exists, is_conflict, is_not_found, ControllerError};
use super::gather::{fetch_execution, set_execution, Observed};
use super::hooks::ReconcileOutcome;
use super::reconcile::{decide, SAFETY_REQUEUE};
use super::rejection::{namespace_signal, rejection};
use super::status_patch::status_patch;
use super::stores::FoundExecution;
use crate::api::{WorkflowExecution, FINALIZER};
use crate::engine::{Decision, EventRecord};
use crate::execute::{self, labelled_as, lock_name, BuildInput, Engine};
use crate::observe::CreateRejection;
use crate::rules::EffectKind;

/// Requeue after the fresh read showed the cache was behind.
const STALE_CACHE_REQUEUE: Duration = Duration::from_millis(200);
/// Requeue after deleting a stale execution object (background GC).
const REPLACE_REQUEUE: Duration = Duration::from_millis(500);
/// Requeue when a second AlreadyExists follows the re-decision.
const COLLISION_REQUEUE: Duration = Duration::from_secs(1);
/// Requeue to write an `AuditRecorded` condition owed after a refused record.
const AUDIT_CONDITION_REQUEUE: Duration = Duration::from_millis(100);

enum CreateOutcome {
    Done,
    /// The fresh read shows the WFE is no longer a Pending WFE without an
    /// execution (the cache was stale): nothing was created.
    NotPending,
    /// The lock name is taken by this object.
    Exists(FoundExecution),
    /// The API server refused the object (invalid, forbidden, over quota,
    /// no namespace): a fact for the rules, not an error to retry.
    Rejected(CreateRejection),
}

fn wfe_api(ctx: &Context, wfe: &WorkflowExecution) -> Api<WorkflowExecution> {
    Api::namespaced(ctx.client.clone(), &wfe.namespace().unwrap_or_default())
}

fn execution_api(ctx: &Context, engine: Engine) -> Api<DynamicObject> {
    Api::namespaced_with(
        ctx.client.clone(),
        &ctx.config.execution_namespace,
        &engine.api_resource(),
    )
}

fn is_terminal(phase: &str) -> bool {
    phase == "Completed" || phase == "Failed"
}

/// Apply `decision` to `wfe`.
pub(crate) async fn apply(
    ctx: &Context,
    wfe: &Arc<WorkflowExecution>,
    mut observed: Observed,
    mut decision: Decision,
) -> Result<(Action, ReconcileOutcome), ControllerError> {
    let mut current: WorkflowExecution = (**wfe).clone();
    let mut redecided = false;
    'decision: loop {
        let mut effect_events: Vec<(EventRecord, &'static str)> = Vec::new();
        let effects = decision.effects.clone();
        for effect in &effects {
            match effect.kind {
                EffectKind::CreateExecution => match create_execution(ctx, &mut current).await? {
                    CreateOutcome::Done => {}
                    CreateOutcome::NotPending => {
                        return Ok((
                            Action::requeue(STALE_CACHE_REQUEUE),
                            ReconcileOutcome::Applied,
                        ))
                    }
                    CreateOutcome::Exists(found) => {
                        if redecided {
                            return Ok((
                                Action::requeue(COLLISION_REQUEUE),
                                ReconcileOutcome::Applied,
                            ));
                        }
                        redecided = true;
                        set_execution(&ctx.stores, &mut observed, found);
                        decision = decide(ctx, &current, &observed).await?;
                        continue 'decision;
                    }
                    CreateOutcome::Rejected(rejection) => {
                        if redecided {
                            return Err(ControllerError::Rejected(rejection.message));
                        }
                        redecided = true;
                        observed.env.execution_namespace_phase = ctx.namespace.phase();
                        observed.env.create_rejection = Some(rejection.clone());
                        decision = decide(ctx, &current, &observed).await?;
                        if creates(&decision) {
                            // No rule takes the refusal: retry it with
                            // backoff rather than loop on it.
                            return Err(ControllerError::Rejected(rejection.message));
                        }
                        continue 'decision;
                    }
                },
                EffectKind::AdoptExecution => ensure_finalizer(ctx, &mut current).await?,
                EffectKind::ReplaceStaleExecution => {
                    if let Some(found) = &observed.execution {
                        delete_object(ctx, found).await?;
                    }
                    return Ok((Action::requeue(REPLACE_REQUEUE), ReconcileOutcome::Applied));
                }
                EffectKind::DeleteExecution => {
                    if release_lock(ctx, &current, observed.execution.as_ref()).await? {
                        if let Some(ev) = &effect.event {
                            effect_events.push((ev.clone(), "lock-release"));
                        }
                    }
                }
                // The desired status already carries completionTime.
                EffectKind::RecordCompletion => {}
            }
        }

        // An AuditRecorded condition owed by an earlier reconcile rides on
        // this reconcile's status write (or makes one).
        let owes_audit = ctx.audit_conditions.is_pending(&current);
        if owes_audit {
            if ctx
                .audit_conditions
                .merge_into(&current, &mut decision.status)
            {
                decision.status_changed = true;
            } else {
                ctx.audit_conditions.written(&current);
            }
        }

        // At most one status write, guarded by the resourceVersion decided on.
        let mut written = false;
        if decision.status_changed {
            let body = status_patch(
                current.status.as_ref(),
                &decision.status,
                current.resource_version().as_deref(),
            )
            .map_err(|source| ControllerError::Encode {
                what: "status patch",
                source,
            })?;
            if let Some(body) = body {
                tracing::debug!(wfe = %current.name_any(), rule = ?decision.rule.as_ref().map(|r| r.to_string()), patch = %body, "status write");
                let updated = wfe_api(ctx, &current)
                    .patch_status(
                        &current.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&body),
                    )
                    .await
                    .map_err(|e| ControllerError::api("patch-status", current.name_any(), e))?;
                ctx.hooks.api_write("patch-status", "WorkflowExecution");
                if owes_audit {
                    ctx.audit_conditions.written(&current);
                }
                current = updated;
                written = true;
            }
        }

        // Events and audit only after the status write succeeded; the event
        // name is keyed on the written resourceVersion, so a retry of the
        // same transition cannot duplicate them.
        let transition = current.resource_version().unwrap_or_default();
        for (i, ev) in decision.events.iter().enumerate() {
            publish(ctx, &current, ev, &transition, i).await;
        }
        for (i, (ev, tag)) in effect_events.iter().enumerate() {
            publish(ctx, &current, ev, tag, i).await;
        }
        if written || !decision.status_changed {
            for rec in &decision.audit {
                let result = ctx.audit.record(&current, rec);
                if let Err(e) = &result {
                    tracing::warn!(key = %rec.idempotency_key, error = %e, "audit record not enqueued");
                }
                ctx.audit_conditions.offered(&current, rec, &result);
            }
        }
        if written && is_terminal(&decision.phase) && !is_terminal(&decision.from_phase) {
            let secs = match (
                &decision.status.start_time,
                &decision.status.completion_time,
            ) {
                (Some(s), Some(c)) => (c.0 - s.0).total(jiff::Unit::Second).unwrap_or(0.0),
                _ => 0.0,
            };
            let reason = decision.failure.as_ref().map(|f| f.reason.as_str());
            ctx.hooks.terminal(&decision.phase, reason, secs.max(0.0));
        }
        super::hooks::applied(ctx.hooks.as_ref(), &current, &decision, written);

        let requeue = match decision.requeue_after {
            Some(d) => Some(d.max(Duration::from_millis(10))),
            None if is_terminal(&decision.phase) => None,
            None => Some(SAFETY_REQUEUE),
        };
        // A condition is now owed (a record was refused): write it soon.
        let requeue = if ctx.audit_conditions.is_pending(&current) {
            Some(requeue.map_or(AUDIT_CONDITION_REQUEUE, |d| d.min(AUDIT_CONDITION_REQUEUE)))
        } else {
            requeue
        };
        let action = requeue.map_or_else(Action::await_change, Action::requeue);
        let outcome = if decision.rules_error.is_some() {
            ReconcileOutcome::RulesError
        } else {
            ReconcileOutcome::Applied
        };
        return Ok((action, outcome));
    }
}

async fn publish(
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
async fn ensure_finalizer(
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

/// Fresh read, finalizer, then create the execution object.
async fn create_execution(
    ctx: &Context,
    current: &mut WorkflowExecution,
) -> Result<CreateOutcome, ControllerError> {
    let api = wfe_api(ctx, current);
    let name = current.name_any();
    let Some(fresh) = api
        .get_opt(&name)
        .await
        .map_err(|e| ControllerError::api("get", name.clone(), e))?
    else {
        return Ok(CreateOutcome::NotPending);
    };
    let status = fresh.status.as_ref();
    let still_pending = fresh.uid() == current.uid()
        && fresh.metadata.deletion_timestamp.is_none()
        && matches!(
            status.and_then(|s| s.phase.as_deref()),
            None | Some("") | Some("Pending")
        )
        && status.and_then(|s| s.execution_ref.as_ref()).is_none();
    if !still_pending {
        return Ok(CreateOutcome::NotPending);
    }
    *current = fresh;
    ensure_finalizer(ctx, current).await?;

    let engine_name = current
        .spec
        .workflow_ref
        .execution_engine
        .clone()
        .unwrap_or_default();
    let engine = Engine::parse(&engine_name)?;
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
            Ok(CreateOutcome::Done)
        }
        Err(e) if is_already_exists(&e) => {
            let lock = lock_name(&current.spec.target_resource);
            match exec_api.get_opt(&lock).await {
                Ok(Some(obj)) => Ok(CreateOutcome::Exists(FoundExecution {
                    engine,
                    object: Arc::new(obj),
                })),
                // Deleted in between: the next reconcile creates it.
                Ok(None) => Ok(CreateOutcome::NotPending),
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
                    Ok(CreateOutcome::Rejected(r))
                }
                None => Err(ControllerError::api("create", kind, e)),
            }
        }
    }
}

/// Whether a decision still asks to create the execution object.
fn creates(decision: &Decision) -> bool {
    decision
        .effects
        .iter()
        .any(|e| e.kind == EffectKind::CreateExecution)
}

/// Delete an execution object (Background propagation, only this exact
/// object by uid). Returns whether something was deleted.
async fn delete_object(ctx: &Context, found: &FoundExecution) -> Result<bool, ControllerError> {
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

/// Delete the execution object at the WFE's lock name if it is labelled as
/// this WFE's. Uses the cached object, else a fresh read (the cache may lag).
async fn release_lock(
    ctx: &Context,
    wfe: &WorkflowExecution,
    cached: Option<&FoundExecution>,
) -> Result<bool, ControllerError> {
    let found = match cached {
        Some(f) => Some(f.clone()),
        None => fetch_execution(&ctx.view(), wfe).await?,
    };
    let Some(found) = found else {
        return Ok(false);
    };
    if !owned_by(&found.object, wfe) {
        return Ok(false);
    }
    delete_object(ctx, &found).await
}

fn owned_by(obj: &DynamicObject, wfe: &WorkflowExecution) -> bool {
    let labels = obj.metadata.labels.clone().unwrap_or_default();
    labelled_as(
        &labels,
        &wfe.name_any(),
        &wfe.namespace().unwrap_or_default(),
    )
}

/// A WFE being deleted: owner-checked cleanup of its execution object, the
/// `WorkflowExecutionDeleted` event, then finalizer removal. A failed
/// cleanup keeps the finalizer (the error is retried with backoff).
pub(crate) async fn finalize(
    ctx: &Context,
    wfe: &WorkflowExecution,
) -> Result<Action, ControllerError> {
    if !wfe.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let phase = wfe
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".into());
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

async fn cleanup(ctx: &Context, wfe: &WorkflowExecution) -> Result<(), ControllerError> {
    let lock = lock_name(&wfe.spec.target_resource);
    let mut engines = vec![Engine::Job];
    if ctx.engines.iter().any(|e| e == "tekton") {
        engines.insert(0, Engine::Tekton);
    }
    for engine in engines {
        let obj = execution_api(ctx, engine)
            .get_opt(&lock)
            .await
            .map_err(|e| ControllerError::Cleanup(lock.clone(), e.to_string()))?;
        if let Some(obj) = obj {
            if owned_by(&obj, wfe) {
                let found = FoundExecution {
                    engine,
                    object: Arc::new(obj),
                };
                delete_object(ctx, &found)
                    .await
                    .map_err(|e| ControllerError::Cleanup(lock.clone(), e.to_string()))?;
            }
        }
    }
    Ok(())
}
