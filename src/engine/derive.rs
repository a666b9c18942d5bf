//! Facts the engine derives from history and the Backoff / Cooldown / History
//! rules: counted failures, the backoff delay with deterministic jitter, the
//! cooldown, the blocking execution failure. Recomputed from scratch on every
//! decision, never accumulated, so restarts cannot skew them.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use crate::observe::{Attempt, Facts};
use crate::rules::{EvalError, RuleSet};

/// Everything derived before the lifecycle is evaluated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Derived {
    pub attempts: i64,
    pub consecutive_failures: i64,
    pub last_failure_at: Option<Timestamp>,
    pub blocking_failure: String,
    pub blocking_reason: String,
    pub backoff_until: Option<Timestamp>,
    pub backoff_delay: Option<Duration>,
    pub backoff_active: bool,
    pub backoff_exhausted: bool,
    pub cooldown_until: Option<Timestamp>,
    pub cooldown_blocked_by: String,
    pub cooldown_active: bool,
    pub release_at: Option<Timestamp>,
    pub release_due: bool,
    pub owner_release_at: Option<Timestamp>,
    pub owner_release_pending: bool,
}

/// Derive history, backoff and cooldown facts.
pub fn derive(facts: &Facts, rules: &RuleSet, now: Timestamp) -> Result<Derived, EvalError> {
    let mut d = Derived::default();
    let attempts: Vec<&Attempt> = facts
        .history
        .iter()
        .map(|a| Ok((a, rules.history.not_attempt.eval_item(a)?)))
        .collect::<Result<Vec<_>, EvalError>>()
        .map_err(|e| e.in_rule(&rules.history.id.to_string()))?
        .into_iter()
        .filter(|(_, not)| !not)
        .map(|(a, _)| a)
        .collect();
    d.attempts = attempts.len() as i64;

    // Newest terminal attempt: the one that may block for manual review.
    let terminal: Vec<&Attempt> = attempts
        .iter()
        .copied()
        .filter(|a| rules.lifecycle.is_terminal(&a.phase) && a.completion_time.is_some())
        .collect();
    if let Some(newest) = terminal.first() {
        let blocks = rules
            .history
            .blocks
            .eval_item(*newest)
            .map_err(|e| e.in_rule(&rules.history.id.to_string()))?;
        if blocks {
            d.blocking_failure = newest.name.clone();
            d.blocking_reason = newest.reason.clone();
        }
    }

    // Consecutive counted failures since the last reset, newest first.
    let bo = &rules.backoff;
    for a in &terminal {
        let id = bo.id.to_string();
        if bo.resets.eval_item(*a).map_err(|e| e.in_rule(&id))? {
            break;
        }
        if bo.counts.eval_item(*a).map_err(|e| e.in_rule(&id))? {
            d.consecutive_failures += 1;
            if d.last_failure_at.is_none() {
                d.last_failure_at = a.completion_time;
            }
        }
    }
    d.backoff_exhausted = d.consecutive_failures >= bo.max_consecutive_failures;
    if let (Some(last), true) = (d.last_failure_at, d.consecutive_failures > 0) {
        let delay = backoff_delay(
            bo.base,
            bo.factor,
            bo.max,
            bo.jitter,
            d.consecutive_failures,
            &facts.wfe.uid,
        );
        let until = add(last, delay);
        d.backoff_delay = Some(delay);
        d.backoff_until = Some(until);
        d.backoff_active = now < until;
    }

    // Cooldown: the longest remaining among the attempts it applies to.
    let cd = &rules.cooldown;
    for a in &terminal {
        if !cd
            .applies_to
            .eval_item(*a)
            .map_err(|e| e.in_rule(&cd.id.to_string()))?
        {
            continue;
        }
        if let Some(done) = a.completion_time {
            let until = add(done, cd.period);
            if d.cooldown_until.is_none_or(|u| until > u) {
                d.cooldown_until = Some(until);
                d.cooldown_blocked_by = a.name.clone();
            }
        }
    }
    d.cooldown_active = d.cooldown_until.is_some_and(|u| now < u);

    // The lock held by another, finished WFE: its owner releases it at its
    // own completion + period; only after a grace is the object stale.
    let x = &facts.execution;
    if x.exists && x.owner == "other" {
        let owner = facts.history.iter().find(|a| {
            a.name == x.owner_name
                && (x.owner_namespace.is_empty() || a.namespace == x.owner_namespace)
        });
        if let Some(done) = owner
            .filter(|a| rules.lifecycle.is_terminal(&a.phase))
            .and_then(|a| a.completion_time)
        {
            let at = add(add(done, cd.period), cd.stale_lock_grace);
            d.owner_release_at = Some(at);
            d.owner_release_pending = now < at;
        }
    }

    // This WFE's own lock release.
    if let Some(done) = facts.wfe.completion_time {
        let at = add(done, cd.period);
        d.release_at = Some(at);
        d.release_due = now >= at;
    }
    Ok(d)
}

/// `t + d`, saturating at the far future instead of failing.
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|sd| t.checked_add(sd).ok())
        .unwrap_or(Timestamp::MAX)
}

/// `min(base × factor^(n−1), max)` with ±jitter derived from the uid and n,
/// clamped to [base, max]. Deterministic: every reconcile of the same WFE
/// computes the same delay, so a held WFE writes nothing new.
pub fn backoff_delay(
    base: Duration,
    factor: f64,
    max: Duration,
    jitter: f64,
    n: i64,
    uid: &str,
) -> Duration {
    let exp = (n.max(1) - 1).min(62) as i32;
    let raw = base.as_secs_f64() * factor.powi(exp);
    let capped = raw.min(max.as_secs_f64());
    let unit = jitter_unit(uid, n);
    let jittered = capped * (1.0 + jitter * unit);
    let clamped = jittered.clamp(
        base.as_secs_f64(),
        max.as_secs_f64().max(base.as_secs_f64()),
    );
    // Whole milliseconds keep status timestamps readable and stable.
    Duration::from_millis((clamped * 1000.0).round() as u64)
}

/// A value in [-1, 1] from sha256(uid/n).
fn jitter_unit(uid: &str, n: i64) -> f64 {
    let mut h = Sha256::new();
    h.update(uid.as_bytes());
    h.update(b"/");
    h.update(n.to_string().as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    let x = u64::from_be_bytes(bytes) as f64 / u64::MAX as f64;
    x * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_and_caps() {
        let b = Duration::from_secs(60);
        let m = Duration::from_secs(600);
        let d: Vec<u64> = (1..=6)
            .map(|n| backoff_delay(b, 2.0, m, 0.0, n, "u").as_secs())
            .collect();
        assert_eq!(d, vec![60, 120, 240, 480, 600, 600]);
    }

    #[test]
    fn jitter_is_deterministic_and_bounded() {
        let b = Duration::from_secs(60);
        let m = Duration::from_secs(600);
        for n in 1..8 {
            let a = backoff_delay(b, 2.0, m, 0.1, n, "uid-1");
            assert_eq!(a, backoff_delay(b, 2.0, m, 0.1, n, "uid-1"));
            assert!(a >= b && a <= m);
        }
        let differs = (1..8).any(|n| {
            backoff_delay(b, 2.0, m, 0.1, n, "uid-1") != backoff_delay(b, 2.0, m, 0.1, n, "uid-2")
        });
        assert!(differs, "jitter must depend on the uid");
    }
}
