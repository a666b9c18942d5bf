//! `reconcile = observe → decide → apply`, nothing else (what is observed:
//! `gather`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::ResourceExt;

use super::apply;
use super::context::Context;
use super::error::ControllerError;
use super::gather::{observe_wfe, Observed};
use super::hooks::ReconcileOutcome;
use crate::api::WorkflowExecution;
use crate::engine::{self, Decision};
use crate::observe::{self, ObserveInput};

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
    let observed = observe_wfe(&ctx.view(), wfe).await?;
    let decision = decide(ctx, wfe, &observed);
    apply::apply(ctx, wfe, observed, decision).await
}

/// observe + decide with the current rule set (and, when configured, the
/// candidate in shadow, compared and never applied).
pub(crate) fn decide(ctx: &Context, wfe: &WorkflowExecution, observed: &Observed) -> Decision {
    let facts = observe::observe(&ObserveInput {
        wfe,
        execution: observed.execution_json.as_ref(),
        children: &observed.children,
        others: &observed.others,
        env: observed.env.clone(),
    });
    let rules = ctx.rules.load();
    let now = Timestamp::now();
    let started = Instant::now();
    let decision = engine::decide(&facts, &rules, now);
    ctx.hooks.decided(&decision, started.elapsed());
    if let Some(shadow) = &ctx.shadow {
        // The same facts and instant: only the rule set differs.
        let execution = observed.execution_json.as_ref();
        shadow.evaluate(ctx.hooks.as_ref(), execution, &facts, now, &decision);
    }
    if let Some(err) = &decision.rules_error {
        tracing::warn!(
            wfe = %format!("{}/{}", wfe.namespace().unwrap_or_default(), wfe.name_any()),
            revision = %decision.revision,
            error = %err,
            "rules failed for this object"
        );
    }
    decision
}

/// Requeue delay used when nothing else is scheduled for a non-terminal WFE:
/// a safety net in case a watch event is lost.
pub(crate) const SAFETY_REQUEUE: Duration = Duration::from_secs(300);
