//! The `Cooldown` document: how long a finished attempt holds its target
//! (and its lock), and after which grace an abandoned lock is stale.

use std::time::Duration;

use super::common::{matcher, Doc};
use crate::rules::diag::Diags;
use crate::rules::fields::Fields;
use crate::rules::matcher::Subject;
use crate::rules::model::CooldownPolicy;

pub fn compile(doc: &Doc<'_>, d: &mut Diags) -> Option<CooldownPolicy> {
    let f = Fields::new(
        doc.spec,
        &["period", "appliesTo", "staleLockGrace"],
        "Cooldown spec",
        d,
    )?;
    let period = f.req_duration("period", d);
    let grace = f.opt_duration("staleLockGrace", d);
    let applies_to = f
        .req("appliesTo", d)
        .and_then(|n| matcher(n, Subject::Attempt, doc, d));
    Some(CooldownPolicy {
        id: doc.id(),
        period: period?.0,
        stale_lock_grace: grace.ok()?.map(|g| g.0).unwrap_or(Duration::ZERO),
        applies_to: applies_to?,
    })
}
