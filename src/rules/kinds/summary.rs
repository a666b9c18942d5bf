//! The `Summary` document: the natural-language failure summary, a
//! recommendation per reason, and the audit error code per reason; and its
//! static checks (documented reasons, a recommendation for every reason).

use std::collections::{BTreeMap, BTreeSet};

use super::common::{pascal_case, template, Doc};
use super::findings::Findings;
use crate::rules::diag::Diags;
use crate::rules::fields::{list, string, Fields};
use crate::rules::model::{
    AuditError, Classification, Lifecycle, SummaryPolicy, DEFAULT_AUDIT_ERROR_CODE,
};
use crate::rules::yaml::{Node, Pos};

#[derive(Debug, Clone, Default)]
pub struct SummarySpans {
    pub file: String,
    /// (reason, position) of each recommendation and audit error key.
    pub reasons: Vec<(String, Pos)>,
}

pub fn compile(doc: &Doc<'_>, d: &mut Diags) -> Option<(SummaryPolicy, SummarySpans)> {
    let f = Fields::new(
        doc.spec,
        &[
            "lines",
            "recommendations",
            "defaultRecommendation",
            "auditErrors",
            "defaultAuditError",
        ],
        "Summary spec",
        d,
    )?;
    let before = d.errors.len();
    let mut lines = Vec::new();
    if let Some(items) = f.req("lines", d).and_then(|n| list(n, "lines", d)) {
        for l in items {
            if let Some(t) = template(l, doc, d) {
                lines.push(t);
            }
        }
    }
    let mut spans = SummarySpans {
        file: doc.file.to_string(),
        ..Default::default()
    };
    let recommendations = by_reason(
        f.opt("recommendations"),
        "recommendations",
        &mut spans,
        d,
        string,
    );
    let audit_errors = by_reason(
        f.opt("auditErrors"),
        "auditErrors",
        &mut spans,
        d,
        |v, _, d| audit_error(v, d),
    );
    let default_recommendation = f.opt_str("defaultRecommendation", d).ok().flatten();
    let default_audit_error = match f.opt("defaultAuditError") {
        Some(n) => audit_error(n, d),
        None => Some(AuditError {
            code: DEFAULT_AUDIT_ERROR_CODE.to_string(),
            retry_possible: None,
        }),
    };
    if d.errors.len() != before {
        return None;
    }
    Some((
        SummaryPolicy {
            id: doc.id(),
            lines,
            recommendations,
            default_recommendation,
            audit_errors,
            default_audit_error: default_audit_error?,
        },
        spans,
    ))
}

/// A map from reason to a value read by `value`.
fn by_reason<T>(
    n: Option<&Node>,
    key: &str,
    spans: &mut SummarySpans,
    d: &mut Diags,
    value: impl Fn(&Node, &str, &mut Diags) -> Option<T>,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    let Some(n) = n else {
        return out;
    };
    let Some(entries) = n.as_map() else {
        d.error(
            n.pos,
            format!("`{key}` must be a map from reason, got {}", n.type_name()),
        );
        return out;
    };
    for (k, v) in entries {
        let Some(reason) = string(k, key, d) else {
            continue;
        };
        pascal_case(&reason, k.pos, "reason", d);
        if let Some(x) = value(v, &reason, d) {
            spans.reasons.push((reason.clone(), k.pos));
            out.insert(reason, x);
        }
    }
    out
}

/// `{code: ERR_..., retryPossible: bool}`.
fn audit_error(n: &Node, d: &mut Diags) -> Option<AuditError> {
    let f = Fields::new(n, &["code", "retryPossible"], "an audit error", d)?;
    let code = f.req_str("code", d);
    let retry_possible = f.opt_bool("retryPossible", d).ok()?;
    Some(AuditError {
        code: code?,
        retry_possible,
    })
}

/// Documented reasons; a recommendation for every reason the rules produce.
pub fn check(
    summary: &SummaryPolicy,
    sp: &SummarySpans,
    rules: Option<(&Classification, &Lifecycle)>,
    out: &mut Findings<'_>,
) {
    for (reason, pos) in &sp.reasons {
        out.reason(&sp.file, *pos, reason);
    }
    let Some((classification, lc)) = rules else {
        return;
    };
    if summary.default_recommendation.is_some() {
        return;
    }
    let mut reasons: BTreeSet<&str> = classification
        .rules
        .iter()
        .map(|r| r.reason.as_str())
        .collect();
    reasons.insert(&classification.default_reason);
    for t in &lc.transitions {
        if let Some(r) = t.failure.as_ref().and_then(|f| f.reason.as_deref()) {
            reasons.insert(r);
        }
    }
    for r in reasons {
        if !summary.recommendations.contains_key(r) {
            let pos = Pos {
                line: summary.id.line,
                col: 1,
            };
            out.warn(
                &sp.file,
                pos,
                format!("no recommendation for reason `{r}` and no `defaultRecommendation`"),
            );
        }
    }
}
