//! Choosing the transition: the first one, in rule order, whose `from`
//! lists the current phase and whose `when` holds.

use super::decision::TraceEntry;
use crate::rules::{EvalError, FactLookup, RuleSet, Transition};

/// The deciding transition, or `None` when no transition applies. Every
/// transition tried is traced; a failing guard fails the decision.
pub fn select<'r>(
    rules: &'r RuleSet,
    phase: &str,
    view: &dyn FactLookup,
    trace: &mut Vec<TraceEntry>,
) -> Result<Option<&'r Transition>, EvalError> {
    for t in &rules.lifecycle.transitions {
        if !t.from.iter().any(|p| p.eq_ignore_ascii_case(phase)) {
            continue;
        }
        let matched = match &t.when {
            None => true,
            Some(m) => m
                .eval(view, &rules.sandbox)
                .map_err(|e| e.in_rule(&t.id.to_string()))?,
        };
        trace.push(TraceEntry::new(&t.id, "transition", matched, None));
        if matched {
            return Ok(Some(t));
        }
    }
    Ok(None)
}
