//! `reconcile = observe → decide → apply`, nothing else (what is observed:
//! `gather`).

use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::ResourceExt;

use super::apply;
use super::context::Context;
use super::error::ControllerError;
use super::gather::{observe_wfe, Observed};
use super::hooks::ReconcileOutcome;
use crate::api::WorkflowExecution;
use crate::engine::record::primary_name;
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
            // A RulesError is not a reconcile error: the status says so, and
            // the decision says when to look again.
            ctx.hooks.reconciled(outcome, started.elapsed());
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
    let decision = decide(ctx, wfe, &observed).await?;
    apply::apply(ctx, wfe, observed, decision).await
}

/// observe + decide with the current rule set (and, when configured, the
/// candidate in shadow, compared and never applied).
///
/// `decide` runs untrusted rules: its worst case is bounded by the sandbox
/// (per evaluation and per decision), but even a bounded quarter second must
/// not hold an async worker that other reconciles and the watches need. So
/// the decision runs on tokio's blocking pool (at most `concurrency`
/// decisions at once, one per running reconcile); `observe` is plain data
/// shaping and stays here. The cost of the hop is measured by
/// `cargo bench --bench decide` ("placement"). The shadow decision is just
/// as untrusted and runs right after it, in the same closure.
pub(crate) async fn decide(
    ctx: &Context,
    wfe: &WorkflowExecution,
    observed: &Observed,
) -> Result<Decision, ControllerError> {
    let rules = ctx.rules.load_full();
    // Observe copies labels and annotations only for a rule set that reads
    // them; a candidate in shadow may read them when the active set does not,
    // and both must see the same facts.
    let facts = {
        let everything = observe::ReadEverything(&*rules);
        let view: &dyn observe::RuleView = if ctx.shadow.is_some() {
            &everything
        } else {
            &*rules
        };
        observe::observe(&ObserveInput {
            wfe,
            execution: observed.execution_json.as_ref(),
            children: &observed.children,
            others: &observed.others,
            env: observed.env.clone(),
            rules: view,
        })
    };
    let now = Timestamp::now();
    let shadow = ctx.shadow.clone().map(|s| {
        let primary = observed.execution_json.as_ref().and_then(primary_name);
        (s, ctx.hooks.clone(), primary)
    });
    let (decision, elapsed) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let decision = engine::decide(&facts, &rules, now);
        let elapsed = started.elapsed();
        if let Some((shadow, hooks, primary)) = shadow {
            // The same facts and instant: only the rule set differs.
            shadow.evaluate(hooks.as_ref(), primary, &facts, now, &decision);
        }
        (decision, elapsed)
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
