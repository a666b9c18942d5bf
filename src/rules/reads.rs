//! Which facts a rule set reads, found once when it loads: every matcher,
//! template and expression of the Lifecycle, the classification and the
//! summary. Observe skips copying what no rule reads (labels and
//! annotations); an expression that takes a whole root (`f(wfe)`) counts as
//! reading all of it.

use std::collections::HashSet;

use super::catalog::Fact;
use super::model::{
    Classification, ConditionChange, HoldUntil, Lifecycle, SummaryPolicy, Transition,
};

/// The labels and annotations facts.
const METADATA: &[Fact] = &[
    Fact::WfeLabels,
    Fact::WfeAnnotations,
    Fact::ExecLabels,
    Fact::ExecAnnotations,
];

fn transition_facts(t: &Transition, out: &mut HashSet<Fact>) {
    out.extend(t.when.iter().flat_map(|m| m.facts()));
    if let Some(h) = &t.hold {
        out.extend(h.message.facts());
        if let Some(HoldUntil::Expr(s)) = &h.until {
            out.extend(s.facts().iter().copied());
        }
    }
    if let Some(m) = t.failure.as_ref().and_then(|f| f.message.as_ref()) {
        out.extend(m.facts());
    }
    for e in &t.events {
        out.extend(e.message.facts());
    }
    for c in &t.conditions {
        out.extend(c.when.iter().flat_map(|m| m.facts()));
        if let ConditionChange::Set(s) = &c.change {
            out.extend(s.reason.facts());
            out.extend(s.message.facts());
        }
    }
}

/// Does any rule read labels or annotations?
pub(crate) fn reads_metadata(
    lifecycle: &Lifecycle,
    classification: &Classification,
    summary: &SummaryPolicy,
) -> bool {
    let mut read = HashSet::new();
    for t in &lifecycle.transitions {
        transition_facts(t, &mut read);
    }
    for r in &classification.rules {
        read.extend(r.when.iter().flat_map(|m| m.facts()));
        read.extend(r.message.iter().flat_map(|m| m.facts()));
    }
    read.extend(classification.was_execution_failure.facts());
    for l in &summary.lines {
        read.extend(l.facts());
    }
    METADATA.iter().any(|f| read.contains(f))
}
