//! Status condition edits as a transition declares them (DESIGN invariant
//! 10: which conditions exist is the rules' business; the engine only
//! applies them in order and keeps `lastTransitionTime` honest).

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{condition_reason_problem, remove_condition, set_condition};
use crate::rules::{ConditionChange, ConditionEdit, EvalError, FactLookup, Sandbox};

/// Where and when the edits happen.
pub struct ConditionStamp {
    pub generation: Option<i64>,
    pub now: Time,
}

/// Apply `edits` in order, each when its guard holds: render a set
/// condition's reason and message (a rendered reason must still be a valid
/// condition reason), or remove one.
pub fn apply_edits(
    conditions: &mut Vec<Condition>,
    edits: &[ConditionEdit],
    view: &dyn FactLookup,
    sandbox: &Sandbox,
    stamp: &ConditionStamp,
) -> Result<(), EvalError> {
    for edit in edits {
        if let Some(m) = &edit.when {
            if !m.eval(view, sandbox)? {
                continue;
            }
        }
        match &edit.change {
            ConditionChange::Remove(type_) => {
                remove_condition(conditions, type_);
            }
            ConditionChange::Set(c) => {
                // A literal reason was checked when the set loaded.
                let reason = match c.reason.as_literal() {
                    Some(r) => Cow::Borrowed(r),
                    None => {
                        let r = c.reason.render(view, sandbox)?;
                        if let Some(problem) = condition_reason_problem(&r) {
                            return Err(EvalError::new(format!(
                                "condition {}: {problem}",
                                c.type_
                            )));
                        }
                        Cow::Owned(r)
                    }
                };
                let message = match c.message.as_literal() {
                    Some(m) => Cow::Borrowed(m),
                    None => Cow::Owned(c.message.render(view, sandbox)?),
                };
                set_condition(
                    conditions,
                    &c.type_,
                    &c.status,
                    &reason,
                    &message,
                    stamp.generation,
                    stamp.now.clone(),
                );
            }
        }
    }
    Ok(())
}
