//! The `History` document: which other WFEs on the target are attempts, and
//! which one blocks the next WFE for manual review.

use super::common::{matcher, Doc};
use crate::rules::diag::Diags;
use crate::rules::fields::Fields;
use crate::rules::matcher::Subject;
use crate::rules::model::HistoryPolicy;

pub fn compile(doc: &Doc<'_>, d: &mut Diags) -> Option<HistoryPolicy> {
    let f = Fields::new(doc.spec, &["notAttempt", "blocks"], "History spec", d)?;
    let not_attempt = f
        .req("notAttempt", d)
        .and_then(|n| matcher(n, Subject::Attempt, doc, d));
    let blocks = f
        .req("blocks", d)
        .and_then(|n| matcher(n, Subject::Attempt, doc, d));
    Some(HistoryPolicy {
        id: doc.id(),
        not_attempt: not_attempt?,
        blocks: blocks?,
    })
}
