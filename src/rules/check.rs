//! Static checks over a compiled rule set: what the engine would otherwise
//! only discover on some object at run time. Errors refuse the set; warnings
//! are kept in `RuleSet::warnings` and printed by `wfe-engine check`.

use std::collections::{BTreeSet, VecDeque};

use super::diag::did_you_mean;
use super::error::LoadError;
use super::kinds::Parts;
use super::kinds::Spans;
use super::model::Diagnostic;
use super::yaml::Pos;

/// Reasons the kubernaut CRD documents (`spec/failure-classification.md`).
pub const STANDARD_REASONS: &[&str] = &[
    "OOMKilled",
    "DeadlineExceeded",
    "Forbidden",
    "ResourceExhausted",
    "ImagePullBackOff",
    "ConfigurationError",
    "TaskFailed",
    "Cancelled",
    "UnsupportedEngine",
    "Deduplicated",
    "PreviousExecutionFailed",
    "ExhaustedRetries",
    "Unknown",
];

struct Out<'a> {
    errors: &'a mut Vec<LoadError>,
    warnings: &'a mut Vec<Diagnostic>,
}

impl Out<'_> {
    fn error(&mut self, file: &str, pos: Pos, message: String) {
        self.errors.push(LoadError {
            file: file.to_string(),
            line: pos.line,
            column: pos.col,
            message,
        });
    }
    fn warn(&mut self, file: &str, pos: Pos, message: String) {
        self.warnings.push(Diagnostic {
            file: file.to_string(),
            line: pos.line,
            column: pos.col,
            message,
        });
    }
    fn reason(&mut self, file: &str, pos: Pos, reason: &str) {
        if !STANDARD_REASONS.contains(&reason) {
            let hint = did_you_mean(reason, STANDARD_REASONS.iter().copied());
            self.warn(file, pos, format!("reason `{reason}` is outside the documented set{hint}; consumers may not know it"));
        }
    }
}

/// Run every check over the parts that compiled (the checks also run when
/// other parts failed, so one `check` run reports as much as it can).
pub(crate) fn check(parts: &Parts, errors: &mut Vec<LoadError>, warnings: &mut Vec<Diagnostic>) {
    let mut out = Out { errors, warnings };
    let spans = &parts.spans;
    lifecycle(parts, &mut out);
    classification(parts, &mut out);
    backoff(parts, &mut out);
    summary(parts, &mut out);
    tests(spans, &mut out);
}

fn lifecycle(parts: &Parts, out: &mut Out<'_>) {
    let (Some(lc), Some(sp)) = (&parts.lifecycle, &parts.spans.lifecycle) else {
        return;
    };
    let file = sp.file.as_str();
    let phase = |name: &str| lc.phases.iter().find(|p| p.name == name);
    let names: Vec<&str> = lc.phases.iter().map(|p| p.name.as_str()).collect();

    let initial: Vec<usize> = (0..lc.phases.len())
        .filter(|&i| lc.phases[i].initial)
        .collect();
    match initial.len() {
        0 => out.error(
            file,
            sp.doc,
            "no initial phase: mark exactly one phase `initial: true`".into(),
        ),
        1 => {}
        _ => {
            for &i in &initial[1..] {
                let msg = format!(
                    "phase `{}` is a second initial phase (the first is `{}`)",
                    lc.phases[i].name, lc.phases[initial[0]].name
                );
                out.error(file, sp.phases[i], msg);
            }
        }
    }
    for (i, p) in lc.phases.iter().enumerate() {
        if p.initial && p.terminal {
            out.error(
                file,
                sp.phases[i],
                format!("phase `{}` cannot be both initial and terminal", p.name),
            );
        }
    }

    let mut seen_names: Vec<(&str, Pos)> = Vec::new();
    for (t, ts) in lc.transitions.iter().zip(&sp.transitions) {
        if let Some((_, first)) = seen_names.iter().find(|(n, _)| *n == &*t.id.name) {
            out.error(
                file,
                ts.name,
                format!(
                    "transition name `{}` is used twice (first at line {})",
                    t.id.name, first.line
                ),
            );
        } else {
            seen_names.push((&t.id.name, ts.name));
        }
        for (from, pos) in t.from.iter().zip(&ts.from) {
            if phase(from).is_none() {
                let hint = did_you_mean(from, names.iter().copied());
                out.error(
                    file,
                    *pos,
                    format!("undeclared phase `{from}` in `from`{hint}"),
                );
            }
        }
        if let (Some(to), Some(pos)) = (&t.to, ts.to) {
            if phase(to).is_none() {
                let hint = did_you_mean(to, names.iter().copied());
                out.error(file, pos, format!("undeclared phase `{to}` in `to`{hint}"));
            }
            for (from, fpos) in t.from.iter().zip(&ts.from) {
                if phase(from).is_some_and(|p| p.terminal) && from != to {
                    out.error(
                        file,
                        *fpos,
                        format!("transition `{}` leaves terminal phase `{from}` for `{to}`; terminal phases are final", t.id.name),
                    );
                }
            }
        }
        if let (Some(f), Some(pos)) = (&t.failure, ts.failure) {
            let targets: Vec<&str> = match &t.to {
                Some(to) => vec![to.as_str()],
                None => t.from.iter().map(String::as_str).collect(),
            };
            if let Some(bad) = targets
                .iter()
                .find(|p| phase(p).is_some_and(|p| !p.terminal))
            {
                out.warn(file, pos, format!("`failure` on transition `{}` whose target phase `{bad}` is not terminal; failureDetails belong to a terminal failure", t.id.name));
            }
            if let (Some(r), Some(rpos)) = (&f.reason, ts.reason) {
                out.reason(file, rpos, r);
            }
        }
    }

    // Shadowed transitions: an earlier transition without `when` from the
    // same phase always decides first.
    for (j, (t, ts)) in lc.transitions.iter().zip(&sp.transitions).enumerate() {
        let shadows: Vec<(&str, &str)> = t
            .from
            .iter()
            .filter_map(|p| {
                lc.transitions[..j]
                    .iter()
                    .zip(&sp.transitions[..j])
                    .find(|(e, es)| es.unconditional && e.from.contains(p))
                    .map(|(e, _)| (p.as_str(), &*e.id.name))
            })
            .collect();
        if !t.from.is_empty() && shadows.len() == t.from.len() {
            let (p, by) = shadows[0];
            out.warn(file, ts.name, format!("transition `{}` can never be reached: the earlier transition `{by}` from `{p}` always matches (no `when`, or a guard that always holds) and decides first", t.id.name));
        }
    }

    // Reachability from the initial phase.
    if let Some(&start) = initial.first() {
        let mut reached: BTreeSet<&str> = BTreeSet::new();
        let mut queue = VecDeque::from([lc.phases[start].name.as_str()]);
        while let Some(p) = queue.pop_front() {
            if !reached.insert(p) {
                continue;
            }
            for t in &lc.transitions {
                if let Some(to) = &t.to {
                    if t.from.iter().any(|f| f == p) {
                        queue.push_back(to);
                    }
                }
            }
        }
        for (i, p) in lc.phases.iter().enumerate() {
            if !reached.contains(p.name.as_str()) {
                out.warn(
                    file,
                    sp.phases[i],
                    format!(
                        "phase `{}` is unreachable from the initial phase `{}`",
                        p.name, lc.phases[start].name
                    ),
                );
            }
        }
    }
}

fn classification(parts: &Parts, out: &mut Out<'_>) {
    let (Some(c), Some(sp)) = (&parts.classification, &parts.spans.classification) else {
        return;
    };
    let file = sp.file.as_str();
    let mut seen: Vec<(&str, Pos)> = Vec::new();
    let mut catch_all: Option<&str> = None;
    for (r, (name_pos, reason_pos, unconditional)) in c.rules.iter().zip(&sp.rules) {
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == &*r.id.name) {
            out.error(
                file,
                *name_pos,
                format!(
                    "classification rule name `{}` is used twice (first at line {})",
                    r.id.name, first.line
                ),
            );
        } else {
            seen.push((&r.id.name, *name_pos));
        }
        if let Some(by) = catch_all {
            out.warn(file, *name_pos, format!("rule `{}` can never match: the earlier rule `{by}` always matches (no `when`, or a guard that always holds)", r.id.name));
        }
        if *unconditional && catch_all.is_none() {
            catch_all = Some(&r.id.name);
        }
        out.reason(file, *reason_pos, &r.reason);
    }
    if sp.has_default {
        out.reason(file, sp.default_reason, &c.default_reason);
    } else if catch_all.is_none() {
        out.warn(
            file,
            sp.doc,
            format!("no catch-all: no rule without `when` and no `defaultReason`; failures no rule matches are classified `{}`", c.default_reason),
        );
    }
}

fn backoff(parts: &Parts, out: &mut Out<'_>) {
    let (Some(b), Some(sp)) = (&parts.backoff, &parts.spans.backoff) else {
        return;
    };
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

fn summary(parts: &Parts, out: &mut Out<'_>) {
    let (Some(summary), Some(sp)) = (&parts.summary, &parts.spans.summary) else {
        return;
    };
    for (reason, pos) in &sp.recommendations {
        out.reason(&sp.file, *pos, reason);
    }
    let (Some(classification), Some(lc)) = (&parts.classification, &parts.lifecycle) else {
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

fn tests(spans: &Spans, out: &mut Out<'_>) {
    let mut seen: Vec<(&str, &str, Pos)> = Vec::new();
    for t in &spans.tests {
        for (name, pos) in &t.cases {
            if let Some((_, file, first)) = seen.iter().find(|(n, _, _)| n == name) {
                out.error(
                    &t.file,
                    *pos,
                    format!(
                        "test case name `{name}` is used twice (first at {file}:{})",
                        first.line
                    ),
                );
            } else {
                seen.push((name, &t.file, *pos));
            }
        }
    }
}
