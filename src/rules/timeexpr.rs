//! Times and durations in rule tests written relative to the policy and the
//! case's `now`, so a test that is not about a number survives a change of
//! that number:
//!
//! ```text
//! "2026-03-01T10:00:00Z + cooldown + 2s"   an instant from a fixed one
//! "now + staleLockGrace - 2s"              from the case's now (or a step's `at`)
//! "+2m"                                    short for "now + 2m"
//! "cooldown - 1s"                          a duration (requeueAfterSeconds)
//! ```
//!
//! Terms: Go durations (`90s`, `1m30s`) and the policy values `cooldown`,
//! `staleLockGrace`, `backoffBase`, `backoffMax` of the rule set under test.
//! Operators need spaces around them (an RFC 3339 time contains `-`), except a
//! sign at the very start.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::duration::parse_duration;
use super::model::RuleSet;

/// Why a time expression could not be read or resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeExprError {
    #[error("empty time expression")]
    Empty,
    #[error("{token:?} is neither a duration (90s, 1m30s) nor a policy value ({policy})")]
    Term { token: String, policy: String },
    #[error("{text:?}: `{op}` needs a term after it")]
    MissingTerm { text: String, op: String },
    #[error("{text:?}: expected `+` or `-` before {token:?} (with spaces around)")]
    MissingOperator { text: String, token: String },
    #[error("`now` is not known here (give the case a `now`)")]
    NoNow,
    #[error("a duration where an instant is expected")]
    DurationForInstant,
    #[error("an instant where a duration is expected")]
    InstantForDuration,
    #[error("time out of range: {0}")]
    OutOfRange(String),
}

/// A policy value a test can refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyTerm {
    Cooldown,
    StaleLockGrace,
    BackoffBase,
    BackoffMax,
}

impl PolicyTerm {
    pub const ALL: [PolicyTerm; 4] = [
        PolicyTerm::Cooldown,
        PolicyTerm::StaleLockGrace,
        PolicyTerm::BackoffBase,
        PolicyTerm::BackoffMax,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PolicyTerm::Cooldown => "cooldown",
            PolicyTerm::StaleLockGrace => "staleLockGrace",
            PolicyTerm::BackoffBase => "backoffBase",
            PolicyTerm::BackoffMax => "backoffMax",
        }
    }

    /// The value in a rule set.
    pub fn value(self, rules: &RuleSet) -> Duration {
        match self {
            PolicyTerm::Cooldown => rules.cooldown.period,
            PolicyTerm::StaleLockGrace => rules.cooldown.stale_lock_grace,
            PolicyTerm::BackoffBase => rules.backoff.base,
            PolicyTerm::BackoffMax => rules.backoff.max,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    Fixed(Duration),
    Policy(PolicyTerm),
}

/// What an expression starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// An RFC 3339 instant.
    At(Timestamp),
    /// The case's `now` (or, in a sequence, the previous step's `at`).
    Now,
    /// No anchor: a duration.
    None,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeExpr {
    pub anchor: Anchor,
    terms: Vec<(bool, Term)>,
}

fn term(tok: &str) -> Result<Term, TimeExprError> {
    if let Some(p) = PolicyTerm::ALL.into_iter().find(|p| p.name() == tok) {
        return Ok(Term::Policy(p));
    }
    parse_duration(tok)
        .map(Term::Fixed)
        .map_err(|_| TimeExprError::Term {
            token: tok.to_string(),
            policy: PolicyTerm::ALL
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl TimeExpr {
    /// Parse an expression. A plain RFC 3339 time is an expression too (an
    /// anchor and no terms).
    pub fn parse(text: &str) -> Result<TimeExpr, TimeExprError> {
        let s = text.trim();
        let mut toks: Vec<&str> = s.split_whitespace().collect();
        if toks.is_empty() {
            return Err(TimeExprError::Empty);
        }
        let mut terms = Vec::new();
        let first = toks.remove(0);
        let anchor = if first == "now" {
            Anchor::Now
        } else if let Ok(t) = first.parse::<Timestamp>() {
            Anchor::At(t)
        } else if let Some(rest) = first.strip_prefix('+') {
            terms.push((true, term(rest)?));
            Anchor::Now
        } else if let Some(rest) = first.strip_prefix('-') {
            terms.push((false, term(rest)?));
            Anchor::Now
        } else {
            terms.push((true, term(first)?));
            Anchor::None
        };
        let mut it = toks.into_iter();
        while let Some(op) = it.next() {
            let (plus, rest) = match op {
                "+" | "-" => {
                    let t = it.next().ok_or_else(|| TimeExprError::MissingTerm {
                        text: text.to_string(),
                        op: op.to_string(),
                    })?;
                    (op == "+", t)
                }
                t if t.starts_with('+') => (true, &t[1..]),
                t if t.starts_with('-') => (false, &t[1..]),
                t => {
                    return Err(TimeExprError::MissingOperator {
                        text: text.to_string(),
                        token: t.to_string(),
                    })
                }
            };
            terms.push((plus, term(rest)?));
        }
        Ok(TimeExpr { anchor, terms })
    }

    /// Does the value depend on the policy or on `now`?
    pub fn is_relative(&self) -> bool {
        self.anchor == Anchor::Now || self.terms.iter().any(|(_, t)| matches!(t, Term::Policy(_)))
    }

    fn offset(&self, rules: &RuleSet) -> SignedDuration {
        let mut total = SignedDuration::ZERO;
        for (plus, t) in &self.terms {
            let d = match t {
                Term::Fixed(d) => *d,
                Term::Policy(p) => p.value(rules),
            };
            let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
            total = if *plus {
                total.saturating_add(d)
            } else {
                total.saturating_sub(d)
            };
        }
        total
    }

    /// The instant, given the case's `now` when the expression uses it.
    pub fn instant(
        &self,
        now: Option<Timestamp>,
        rules: &RuleSet,
    ) -> Result<Timestamp, TimeExprError> {
        let base = match self.anchor {
            Anchor::At(t) => t,
            Anchor::Now => now.ok_or(TimeExprError::NoNow)?,
            Anchor::None => return Err(TimeExprError::DurationForInstant),
        };
        base.checked_add(self.offset(rules))
            .map_err(|e| TimeExprError::OutOfRange(e.to_string()))
    }

    /// The duration in whole seconds (an expression without an anchor).
    pub fn seconds(&self, rules: &RuleSet) -> Result<i64, TimeExprError> {
        if self.anchor != Anchor::None {
            return Err(TimeExprError::InstantForDuration);
        }
        Ok(self.offset(rules).as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RuleSet {
        crate::rules::load_sources(crate::rules::embedded::sources()).unwrap()
    }

    #[test]
    fn instants_and_durations() {
        let r = rules();
        let now: Timestamp = "2026-03-01T10:00:00Z".parse().unwrap();
        let e = TimeExpr::parse("2026-03-01T10:00:00Z + cooldown + 2s").unwrap();
        assert!(e.is_relative());
        assert_eq!(
            e.instant(None, &r).unwrap(),
            now + r.cooldown.period + Duration::from_secs(2)
        );
        let e = TimeExpr::parse("+2m").unwrap();
        assert_eq!(
            e.instant(Some(now), &r).unwrap().to_string(),
            "2026-03-01T10:02:00Z"
        );
        let e = TimeExpr::parse("now - 1m30s").unwrap();
        assert_eq!(
            e.instant(Some(now), &r).unwrap().to_string(),
            "2026-03-01T09:58:30Z"
        );
        let e = TimeExpr::parse("cooldown - 1s").unwrap();
        assert_eq!(
            e.seconds(&r).unwrap(),
            r.cooldown.period.as_secs() as i64 - 1
        );
        let plain = TimeExpr::parse("2026-03-01T10:00:00Z").unwrap();
        assert!(!plain.is_relative());
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(TimeExpr::parse("now + coldown")
            .unwrap_err()
            .to_string()
            .contains("coldown"));
        assert!(TimeExpr::parse("now +")
            .unwrap_err()
            .to_string()
            .contains("needs a term"));
        assert!(TimeExpr::parse("now 2m")
            .unwrap_err()
            .to_string()
            .contains("expected `+`"));
        assert!(TimeExpr::parse("").is_err());
        let r = rules();
        assert!(TimeExpr::parse("now").unwrap().instant(None, &r).is_err());
    }
}
