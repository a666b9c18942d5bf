//! Status condition edits as a transition declares them (DESIGN invariant
//! 10: which conditions exist is the rules' business; the engine only
//! applies them in order and keeps `lastTransitionTime` honest).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{condition_reason_problem, remove_condition, set_condition};
use crate::rules::{ConditionEdit, EvalError, FactLookup, Sandbox};

/// Where and when the edits happen.
pub struct ConditionStamp {
    pub generation: Option<i64>,
    pub now: Time,
}

/// Apply `edits` in order: render each set condition's reason and message
/// (a rendered reason must still be a valid condition reason), or remove
/// one.
pub fn apply_edits(
    conditions: &mut Vec<Condition>,
    edits: &[ConditionEdit],
    view: &dyn FactLookup,
    sandbox: &Sandbox,
    stamp: &ConditionStamp,
) -> Result<(), EvalError> {
    for edit in edits {
        match edit {
            ConditionEdit::Remove(type_) => {
                remove_condition(conditions, type_);
            }
            ConditionEdit::Set(c) => {
                let reason = c.reason.render(view, sandbox)?;
                if let Some(problem) = condition_reason_problem(&reason) {
                    return Err(EvalError::new(format!("condition {}: {problem}", c.type_)));
                }
                let message = c.message.render(view, sandbox)?;
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
