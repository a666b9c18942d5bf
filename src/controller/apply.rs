//! Carrying out a `Decision`: its effects in order (the finalizer before
//! any execution object exists, the guarded create, lock release), at most
//! one status write, then events and audit records.
//!
//! Apply never decides. What the API server answers that the decision did
//! not foresee (the lock name already taken, the create refused, the cache
//! behind the API server) is reported as an [`ApplyOutcome`]; the reconcile
//! turns it into facts and owns the one re-decide.

use kube::api::{Patch, PatchParams};
use kube::ResourceExt;

use super::context::Context;
use super::create::{create_execution, Created};
use super::error::ControllerError;
use super::gather::{fetch_execution, Observed};
use super::hooks;
use super::status_patch::status_patch;
use super::stores::FoundExecution;
use super::writes::{delete_object, ensure_finalizer, owned_by, publish, wfe_api};
use crate::api::WorkflowExecution;
use crate::engine::{Decision, EventRecord};
use crate::observe::CreateRejection;
use crate::rules::EffectKind;

/// What became of a decision.
#[derive(Debug)]
pub(crate) enum ApplyOutcome {
    /// Carried out: effects, the status write when one was needed, events
    /// and audit records.
    Applied,
    /// Creating the execution object found its lock name taken by this
    /// object (AlreadyExists). Nothing after the create was carried out.
    Collision(FoundExecution),
    /// The API server refused the execution object (invalid, forbidden,
    /// over quota, no namespace): a fact for the rules, not an error.
    /// Nothing after the create was carried out.
    Refused(CreateRejection),
    /// The fresh read before the create showed the cache behind the API
    /// server: nothing was created.
    Stale,
    /// A stale execution object was deleted to make room for a new one;
    /// nothing else was carried out.
    Replaced,
}

/// Carry out `decision` on `current` (which becomes the WFE as last
/// written or freshly read).
pub(crate) async fn apply(
    ctx: &Context,
    current: &mut WorkflowExecution,
    observed: &Observed,
    decision: &mut Decision,
) -> Result<ApplyOutcome, ControllerError> {
    let mut effect_events: Vec<(EventRecord, &'static str)> = Vec::new();
    for effect in &decision.effects {
        match effect.kind {
            EffectKind::CreateExecution => match create_execution(ctx, current).await? {
                Created::Done => {}
                Created::Stale => return Ok(ApplyOutcome::Stale),
                Created::Exists(found) => return Ok(ApplyOutcome::Collision(found)),
                Created::Refused(rejection) => return Ok(ApplyOutcome::Refused(rejection)),
            },
            EffectKind::AdoptExecution => ensure_finalizer(ctx, current).await?,
            EffectKind::ReplaceStaleExecution => {
                if let Some(found) = &observed.execution {
                    delete_object(ctx, found).await?;
                }
                return Ok(ApplyOutcome::Replaced);
            }
            EffectKind::DeleteExecution => {
                if release_lock(ctx, current, observed.execution.as_ref()).await? {
                    if let Some(ev) = &effect.event {
                        effect_events.push((ev.clone(), "lock-release"));
                    }
                }
            }
            // The desired status already carries completionTime.
            EffectKind::RecordCompletion => {}
        }
    }

    let written = write_status(ctx, current, decision).await?;

    // Events and audit only after the status write succeeded; the event
    // name is keyed on the written resourceVersion, so a retry of the
    // same transition cannot duplicate them.
    let transition = current.resource_version().unwrap_or_default();
    for (i, ev) in decision.events.iter().enumerate() {
        publish(ctx, current, ev, &transition, i).await;
    }
    for (i, (ev, tag)) in effect_events.iter().enumerate() {
        publish(ctx, current, ev, tag, i).await;
    }
    if written || !decision.status_changed {
        for rec in &decision.audit {
            let result = ctx.audit.record(current, rec);
            if let Err(e) = &result {
                tracing::warn!(key = %rec.idempotency_key, error = %e, "audit record not enqueued");
            }
            ctx.audit_conditions.offered(current, rec, &result);
        }
    }
    if written && decision.finishes {
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
    hooks::applied(ctx.hooks.as_ref(), current, decision, written);
    Ok(ApplyOutcome::Applied)
}

/// At most one status write, guarded by the resourceVersion decided on.
/// An `AuditRecorded` condition owed by an earlier reconcile rides on it
/// (or makes one). Returns whether the status was written.
async fn write_status(
    ctx: &Context,
    current: &mut WorkflowExecution,
    decision: &mut Decision,
) -> Result<bool, ControllerError> {
    let owes_audit = ctx.audit_conditions.is_pending(current);
    if owes_audit {
        if ctx
            .audit_conditions
            .merge_into(current, &mut decision.status)
        {
            decision.status_changed = true;
        } else {
            ctx.audit_conditions.written(current);
        }
    }
    if !decision.status_changed {
        return Ok(false);
    }
    let body = status_patch(
        current.status.as_ref(),
        &decision.status,
        current.resource_version().as_deref(),
    )
    .map_err(|source| ControllerError::Encode {
        what: "status patch",
        source,
    })?;
    let Some(body) = body else {
        return Ok(false);
    };
    tracing::debug!(wfe = %current.name_any(), rule = ?decision.rule.as_ref().map(|r| r.to_string()), patch = %body, "status write");
    let updated = wfe_api(ctx, current)
        .patch_status(
            &current.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&body),
        )
        .await
        .map_err(|e| ControllerError::api("patch-status", current.name_any(), e))?;
    ctx.hooks.api_write("patch-status", "WorkflowExecution");
    if owes_audit {
        ctx.audit_conditions.written(current);
    }
    *current = updated;
    Ok(true)
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
