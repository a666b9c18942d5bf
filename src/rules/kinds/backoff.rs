//! The `Backoff` document: exponential delays between counted failures on
//! a target; and its static checks (a cap, a cap above the base).

use std::time::Duration;

use super::common::{matcher, zero_duration, Doc};
use super::findings::Findings;
use crate::rules::diag::Diags;
use crate::rules::fields::Fields;
use crate::rules::matcher::{Matcher, Subject};
use crate::rules::model::BackoffPolicy;
use crate::rules::yaml::{Kind, Node, Pos};

/// Backoff cap used when `max` is missing (the static checks warn).
pub const UNCAPPED_MAX: Duration = Duration::from_secs(366 * 24 * 3600);

#[derive(Debug, Clone, Default)]
pub struct BackoffSpans {
    pub file: String,
    pub doc: Pos,
    pub max: Option<Pos>,
}

pub fn compile(doc: &Doc<'_>, d: &mut Diags) -> Option<(BackoffPolicy, BackoffSpans)> {
    const KEYS: &[&str] = &[
        "base",
        "factor",
        "max",
        "jitter",
        "maxConsecutiveFailures",
        "counts",
        "resets",
    ];
    let f = Fields::new(doc.spec, KEYS, "Backoff spec", d)?;
    let before = d.errors.len();
    let base = f.req_duration("base", d);
    if let Some((b, n)) = base {
        if b.is_zero() {
            d.error(n.pos, zero_duration("base"));
        }
    }
    let max = f.opt_duration("max", d).ok().flatten();
    let factor = number(&f, "factor", d, 2.0);
    if let (Some(v), Some(n)) = (factor, f.get("factor")) {
        if !(1.0..=100.0).contains(&v) {
            d.error(
                n.pos,
                format!("`factor` must be between 1 and 100, got {v}"),
            );
        }
    }
    let jitter = number(&f, "jitter", d, 0.0);
    if let (Some(v), Some(n)) = (jitter, f.get("jitter")) {
        if !(0.0..1.0).contains(&v) {
            d.error(
                n.pos,
                format!("`jitter` must be at least 0 and below 1, got {v}"),
            );
        }
    }
    let mcf = match f.req("maxConsecutiveFailures", d) {
        Some(Node {
            kind: Kind::Int(i), ..
        }) if *i > 0 => Some(*i),
        Some(n) => {
            d.error(
                n.pos,
                format!(
                    "`maxConsecutiveFailures` must be a positive integer, got {}",
                    n.short()
                ),
            );
            None
        }
        None => None,
    };
    let counts = f
        .req("counts", d)
        .and_then(|n| matcher(n, Subject::Attempt, doc, d));
    let resets = match f.opt("resets") {
        Some(n) => matcher(n, Subject::Attempt, doc, d),
        None => Some(Matcher::never()),
    };
    if d.errors.len() != before {
        return None;
    }
    let spans = BackoffSpans {
        file: doc.file.to_string(),
        doc: doc.spec.pos,
        max: max.map(|(_, n)| n.pos),
    };
    let policy = BackoffPolicy {
        id: doc.id(),
        base: base?.0,
        factor: factor?,
        max: max.map_or(UNCAPPED_MAX, |(m, _)| m),
        jitter: jitter?,
        max_consecutive_failures: mcf?,
        counts: counts?,
        resets: resets?,
    };
    Some((policy, spans))
}

fn number(f: &Fields<'_>, key: &str, d: &mut Diags, default: f64) -> Option<f64> {
    match f.opt(key) {
        None => Some(default),
        Some(Node {
            kind: Kind::Int(i), ..
        }) => Some(*i as f64),
        Some(Node {
            kind: Kind::Float(x),
            ..
        }) if x.is_finite() => Some(*x),
        Some(n) => {
            d.error(
                n.pos,
                format!("`{key}` must be a number, got {}", n.short()),
            );
            None
        }
    }
}

pub fn check(b: &BackoffPolicy, sp: &BackoffSpans, out: &mut Findings<'_>) {
    match sp.max {
        None => out.warn(
            &sp.file,
            sp.doc,
            "uncapped backoff: `max` is missing, so delays grow up to a year".into(),
        ),
        Some(pos) if b.max < b.base => {
            out.warn(
                &sp.file,
                pos,
                format!(
                    "backoff `max` ({:?}) is below `base` ({:?}); every delay is capped at `max`",
                    b.max, b.base
                ),
            );
        }
        Some(_) => {}
    }
}
