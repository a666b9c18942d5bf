//! A hold: the WFE stays in its phase until a time (or until the facts
//! change), with `status.blockedReason`, `nextAllowedExecution` and the
//! conditions and events the transition declares.

use std::time::Duration;

use super::conditions::{apply_edits, ConditionStamp};
use super::decision::{Decision, Hold, TraceEntry};
use super::events::push_events;
use super::fact_view::{FactView, HoldFacts};
use super::status::{between, time};
use crate::rules::{EvalError, FactLookup, FactValue, HoldSpec, HoldUntil, Transition};

/// When the hold ends: a Time fact (which must have a value) or an
/// expression (`()`: until the facts change).
fn until(h: &HoldSpec, view: &FactView<'_>) -> Result<Option<jiff::Timestamp>, EvalError> {
    match &h.until {
        None => Ok(None),
        Some(HoldUntil::Fact(fact)) => match view.fact(*fact) {
            FactValue::Time(u) => Ok(Some(u)),
            _ => Err(EvalError::new(format!(
                "hold until {} has no value",
                fact.path()
            ))),
        },
        Some(HoldUntil::Expr(script)) => view
            .rules
            .sandbox
            .eval_time(script, view)
            .map_err(|e| EvalError::new(format!("hold until: {}", e.message))),
    }
}

pub fn apply_hold(
    d: &mut Decision,
    t: &Transition,
    h: &HoldSpec,
    view: &mut FactView<'_>,
    stamp: &ConditionStamp,
    phase_changed: bool,
) -> Result<(), EvalError> {
    let rules = view.rules;
    let sandbox = &rules.sandbox;
    let until = until(h, view)?;
    // The hold's own message may say when it ends (`{hold.until}`).
    view.hold = Some(HoldFacts {
        reason: h.reason.clone(),
        message: String::new(),
        until,
    });
    let message = h.message.render(&*view, sandbox)?;
    let now = view.now;
    let st = &mut d.status;
    let reason_changed = st.blocked_reason.as_deref() != Some(h.reason.as_str());
    st.blocked_reason = Some(h.reason.clone());
    st.next_allowed_execution = until.map(time);
    st.consecutive_failures = Some(view.derived.consecutive_failures as i32);
    d.requeue_after = until.map(|u| between(now, u).max(Duration::from_secs(1)));
    if let Some(hf) = view.hold.as_mut() {
        hf.message = message.clone();
    }
    apply_edits(
        &mut d.status.conditions,
        &t.conditions,
        &*view,
        sandbox,
        stamp,
    )?;
    let hold = Hold {
        reason: h.reason.clone(),
        message,
        until,
    };
    d.trace.push(TraceEntry::new(
        &t.id,
        "hold",
        true,
        Some(format!("{} until {}", h.reason, hold.until_text())),
    ));
    d.hold = Some(hold);
    if phase_changed || reason_changed {
        push_events(d, t, &*view, sandbox)?;
    }
    Ok(())
}
