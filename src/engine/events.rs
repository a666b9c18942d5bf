//! A transition's events, rendered.

use super::decision::{Decision, EventRecord};
use crate::rules::{EvalError, FactLookup, Sandbox, Transition};

pub fn push_events(
    d: &mut Decision,
    t: &Transition,
    view: &dyn FactLookup,
    sandbox: &Sandbox,
) -> Result<(), EvalError> {
    for e in &t.events {
        d.events.push(EventRecord {
            type_: e.type_.clone(),
            reason: e.reason.clone(),
            message: e.message.render(view, sandbox)?,
        });
    }
    Ok(())
}
