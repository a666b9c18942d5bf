//! The reconcile pipeline: gather → decide → apply, and finalize on its own.
//!
//! - gather ([`super::gather`]): what is observed around one WFE, from the
//!   caches and, where a stale cache would decide wrongly for good, fresh
//!   reads;
//! - decide ([`decide`]): `observe` + `engine::decide` on tokio's blocking
//!   pool, with the candidate set in shadow beside it;
//! - apply ([`super::apply`]): carries the decision out and reports what
//!   became of it, never deciding;
//! - finalize ([`super::finalize`]): a WFE being deleted.
//!
//! When apply reports an answer of the API server the decision did not
//! foresee (the lock name taken, the create refused), it is a fact: the
//! reconcile adds it to what was observed and decides once more. That one
//! re-decide lives here, and only here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::ResourceExt;

use super::apply::{apply, ApplyOutcome};
use super::context::Context;
use super::error::ControllerError;
use super::finalize::finalize;
use super::gather::{observe_wfe, set_execution, Observed};
use super::hooks::ReconcileOutcome;
use crate::api::WorkflowExecution;
use crate::engine::record::primary_name;
use crate::engine::{self, Decision};
use crate::observe::{self, ObserveInput};
use crate::rules::EffectKind;

/// Requeue after the fresh read showed the cache was behind.
const STALE_CACHE_REQUEUE: Duration = Duration::from_millis(200);
/// Requeue when a second AlreadyExists follows the re-decision.
const COLLISION_REQUEUE: Duration = Duration::from_secs(1);
/// Requeue to write an `AuditRecorded` condition owed after a refused record.
const AUDIT_CONDITION_REQUEUE: Duration = Duration::from_millis(100);

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
        let action = finalize(ctx, wfe).await?;
        return Ok((action, ReconcileOutcome::Deleted));
    }
    ctx.stores.wait_ready().await;
    let mut observed = observe_wfe(&ctx.view(), wfe).await?;
    let mut current: WorkflowExecution = (**wfe).clone();
    let mut decision = decide(ctx, &current, &observed).await?;
    let mut outcome = apply(ctx, &mut current, &observed, &mut decision).await?;

    // The one re-decide: the API server's answer becomes a fact.
    let redecide = match &outcome {
        ApplyOutcome::Collision(found) => {
            set_execution(&ctx.stores, &mut observed, found.clone());
            true
        }
        ApplyOutcome::Refused(rejection) => {
            observed.env.execution_namespace_phase = ctx.namespace.phase();
            observed.env.create_rejection = Some(rejection.clone());
            true
        }
        _ => false,
    };
    if redecide {
        decision = decide(ctx, &current, &observed).await?;
        if let ApplyOutcome::Refused(rejection) = &outcome {
            if creates(&decision) {
                // No rule takes the refusal: retry it with backoff rather
                // than loop on it.
                return Err(ControllerError::Rejected(rejection.message.clone()));
            }
        }
        outcome = apply(ctx, &mut current, &observed, &mut decision).await?;
    }

    Ok(match outcome {
        ApplyOutcome::Applied => {
            let result = if decision.rules_error.is_some() {
                ReconcileOutcome::RulesError
            } else {
                ReconcileOutcome::Applied
            };
            (next_wake(ctx, &current, &decision), result)
        }
        ApplyOutcome::Stale => (
            Action::requeue(STALE_CACHE_REQUEUE),
            ReconcileOutcome::Applied,
        ),
        // The rules give the replacement its requeue (creation follows).
        ApplyOutcome::Replaced => (
            requeue_after(&decision).map_or_else(Action::await_change, Action::requeue),
            ReconcileOutcome::Applied,
        ),
        // Only after the re-decide: the lock changed hands again.
        ApplyOutcome::Collision(_) => (
            Action::requeue(COLLISION_REQUEUE),
            ReconcileOutcome::Applied,
        ),
        // Refused again after the re-decide: retried with backoff.
        ApplyOutcome::Refused(rejection) => {
            return Err(ControllerError::Rejected(rejection.message))
        }
    })
}

/// Whether a decision still asks to create the execution object.
fn creates(decision: &Decision) -> bool {
    decision
        .effects
        .iter()
        .any(|e| e.kind == EffectKind::CreateExecution)
}

/// The decision's own requeue: the engine owns the timing (a hold ending,
/// a lock release falling due, the rule set's idle and rules-error delays);
/// this only keeps a zero delay from spinning.
fn requeue_after(decision: &Decision) -> Option<Duration> {
    decision
        .requeue_after
        .map(|d| d.max(Duration::from_millis(10)))
}

/// When to look at a WFE again after its decision was carried out: when the
/// decision says. An `AuditRecorded` condition owed (a record was refused)
/// is written sooner.
fn next_wake(ctx: &Context, current: &WorkflowExecution, decision: &Decision) -> Action {
    let requeue = requeue_after(decision);
    let requeue = if ctx.audit_conditions.is_pending(current) {
        Some(requeue.map_or(AUDIT_CONDITION_REQUEUE, |d| d.min(AUDIT_CONDITION_REQUEUE)))
    } else {
        requeue
    };
    requeue.map_or_else(Action::await_change, Action::requeue)
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
    .map_err(ControllerError::Decide)?;
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
