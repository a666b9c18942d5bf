//! Shadow evaluation: a candidate rule set decides beside the active one on
//! the same facts at the same instant, and what it decides is only
//! compared, never applied. A disagreement (the `wfe-engine diff` record,
//! [`DecisionDiff`]) is logged, counted through the hooks and kept in a
//! bounded list, newest first, for `GET /rules/shadow`. Nothing here talks
//! to the API server.
//!
//! The candidate itself is kept up to date by the reload layer
//! (`Reloader::spawn_shadow`), which stores it into [`Shadow::candidate_slot`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use arc_swap::ArcSwapOption;
use jiff::Timestamp;

use super::hooks::ReconcileHooks;
use crate::engine::{self, Decision, DecisionDiff};
use crate::observe::Facts;
use crate::rules::RuleSet;

/// How many disagreements `/rules/shadow` keeps.
pub const SHADOW_RECORDS: usize = 100;

/// A candidate rule set and the last decisions it made differently.
#[derive(Debug)]
pub struct Shadow {
    candidate: Arc<ArcSwapOption<RuleSet>>,
    recent: Mutex<VecDeque<DecisionDiff>>,
    capacity: usize,
}

impl Default for Shadow {
    fn default() -> Self {
        Shadow::with_capacity(SHADOW_RECORDS)
    }
}

impl Shadow {
    /// No candidate yet; keeps the last `capacity` disagreements.
    pub fn with_capacity(capacity: usize) -> Shadow {
        Shadow {
            candidate: Arc::default(),
            recent: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity: capacity.max(1),
        }
    }

    /// Where the reload layer puts the candidate (empty: nothing is
    /// evaluated).
    pub fn candidate_slot(&self) -> Arc<ArcSwapOption<RuleSet>> {
        self.candidate.clone()
    }

    /// The last disagreements, newest first.
    pub fn recent(&self) -> Vec<DecisionDiff> {
        lock(&self.recent).iter().cloned().collect()
    }

    /// Decide with the candidate on the facts and instant the active
    /// decision was made on, and compare (the controller calls this right
    /// after the active decision, wherever that runs). No candidate, or a
    /// candidate with the active revision (it cannot differ), costs nothing.
    /// `primary` names the execution object decided on
    /// (`engine::record::primary_name`).
    pub fn evaluate(
        &self,
        hooks: &dyn ReconcileHooks,
        primary: Option<String>,
        facts: &Facts,
        now: Timestamp,
        active: &Decision,
    ) {
        let Some(candidate) = self.candidate.load_full() else {
            return;
        };
        if candidate.revision == active.revision {
            return;
        }
        let started = Instant::now();
        let shadow = engine::decide(facts, &candidate, now);
        let elapsed = started.elapsed();
        let source = format!(
            "WorkflowExecution/{}/{}",
            facts.wfe.namespace, facts.wfe.name
        );
        let diff = engine::diff(&source, primary, facts, now, active, &shadow);
        hooks.shadow_evaluated(diff.as_ref(), elapsed);
        if let Some(diff) = diff {
            log(&diff, active, &shadow);
            self.keep(diff);
        }
    }

    /// Newest first; the same disagreement about the same WFE decided again
    /// moves up instead of filling the list with copies.
    fn keep(&self, diff: DecisionDiff) {
        let mut recent = lock(&self.recent);
        recent.retain(|d| !same_disagreement(d, &diff));
        recent.push_front(diff);
        recent.truncate(self.capacity);
    }
}

fn same_disagreement(a: &DecisionDiff, b: &DecisionDiff) -> bool {
    a.wfe == b.wfe
        && a.primary == b.primary
        && a.base_revision == b.base_revision
        && a.candidate_revision == b.candidate_revision
        && a.changes == b.changes
}

/// One `info` line: the WFE, the fields that differ, and both decisions'
/// key fields.
fn log(diff: &DecisionDiff, active: &Decision, shadow: &Decision) {
    let fields: Vec<&str> = diff.changes.iter().map(|c| c.field.name()).collect();
    let rule = |d: &Decision| d.rule.as_ref().map(ToString::to_string);
    let reason = |d: &Decision| d.failure.as_ref().map(|f| f.reason.clone());
    let hold = |d: &Decision| d.hold.as_ref().map(|h| h.reason.clone());
    tracing::info!(
        wfe = %diff.wfe,
        primary = diff.primary.as_deref(),
        fields = %fields.join(","),
        base_revision = %diff.base_revision,
        candidate_revision = %diff.candidate_revision,
        base_phase = %active.phase,
        candidate_phase = %shadow.phase,
        base_reason = reason(active),
        candidate_reason = reason(shadow),
        base_hold = hold(active),
        candidate_hold = hold(shadow),
        base_rule = rule(active),
        candidate_rule = rule(shadow),
        base_rules_error = active.rules_error.as_deref(),
        candidate_rules_error = shadow.rules_error.as_deref(),
        "shadow rules decide differently"
    );
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A list replaced element by element; a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{decide, scenario, FieldChange};
    use crate::rules::{embedded, load_sources};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn shipped_with(from: &str, to: &str) -> RuleSet {
        let mut files = embedded::sources();
        for f in &mut files {
            if f.name == "history.yaml" {
                let t = String::from_utf8(f.content.clone()).unwrap();
                assert!(t.contains(from));
                f.content = t.replace(from, to).into_bytes();
            }
        }
        load_sources(files).unwrap()
    }

    /// A WFE created three minutes after a success on its target.
    fn facts(name: &str) -> Facts {
        let set = load_sources(embedded::sources()).unwrap();
        let wfe = crate::observe::wfe_from_value(&scenario::default_wfe(
            name,
            "team-a",
            scenario::DEFAULT_TARGET,
            "tekton",
        ))
        .unwrap();
        let h = scenario::history_entry(
            &serde_json::json!({"name": "before", "phase": "Completed", "completionTime": "2026-03-01T10:00:00Z"}),
            scenario::DEFAULT_TARGET,
            0,
            &set.lifecycle,
        )
        .unwrap();
        scenario::facts_for(&wfe, None, &[], &[h], Default::default(), &set)
    }

    #[derive(Default)]
    struct Counted {
        evaluated: AtomicUsize,
        disagreed: AtomicUsize,
    }

    impl ReconcileHooks for Counted {
        fn shadow_evaluated(&self, d: Option<&DecisionDiff>, _t: std::time::Duration) {
            self.evaluated.fetch_add(1, Ordering::Relaxed);
            if d.is_some() {
                self.disagreed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn now() -> Timestamp {
        "2026-03-01T10:03:00Z".parse().unwrap()
    }

    #[test]
    fn a_shorter_cooldown_is_recorded_with_both_revisions() {
        let active_set = load_sources(embedded::sources()).unwrap();
        let shadow = Shadow::default();
        let candidate = shipped_with("period: 5m", "period: 2m");
        let cand_rev = candidate.revision.clone();
        shadow.candidate_slot().store(Some(Arc::new(candidate)));
        let hooks = Counted::default();
        let f = facts("next");
        let active = decide(&f, &active_set, now());
        assert_eq!(active.phase, "Pending", "held by the 5m cooldown");
        shadow.evaluate(&hooks, None, &f, now(), &active);
        assert_eq!(hooks.evaluated.load(Ordering::Relaxed), 1);
        assert_eq!(hooks.disagreed.load(Ordering::Relaxed), 1);
        let recent = shadow.recent();
        assert_eq!(recent.len(), 1);
        let d = &recent[0];
        assert_eq!(d.wfe, "team-a/next");
        assert_eq!(d.source, "WorkflowExecution/team-a/next");
        assert_eq!(d.now, now().to_string());
        assert_eq!(d.base_revision, active_set.revision);
        assert_eq!(d.candidate_revision, cand_rev);
        let phase: &FieldChange = &d.changes[0];
        assert_eq!(phase.field.name(), "phase");
        assert_eq!(
            (phase.base.as_str(), phase.candidate.as_str()),
            (Some("Pending"), Some("Running"))
        );
        // The record is the `diff -o json` line.
        let json = serde_json::to_value(d).unwrap();
        for key in [
            "source",
            "primary",
            "wfe",
            "now",
            "baseRevision",
            "candidateRevision",
            "changes",
        ] {
            assert!(json.get(key).is_some(), "{key} missing: {json}");
        }
    }

    #[test]
    fn no_candidate_or_the_active_revision_costs_no_decision() {
        let active_set = load_sources(embedded::sources()).unwrap();
        let shadow = Shadow::default();
        let hooks = Counted::default();
        let f = facts("next");
        let active = decide(&f, &active_set, now());
        shadow.evaluate(&hooks, None, &f, now(), &active);
        shadow
            .candidate_slot()
            .store(Some(Arc::new(load_sources(embedded::sources()).unwrap())));
        shadow.evaluate(&hooks, None, &f, now(), &active);
        assert_eq!(hooks.evaluated.load(Ordering::Relaxed), 0);
        assert!(shadow.recent().is_empty());
    }

    #[test]
    fn an_agreeing_candidate_is_evaluated_and_records_nothing() {
        let active_set = load_sources(embedded::sources()).unwrap();
        let shadow = Shadow::default();
        // A different revision that decides this WFE alike (its backoff
        // applies to failures; this WFE follows a success).
        let candidate = shipped_with("base: 1m", "base: 2m");
        shadow.candidate_slot().store(Some(Arc::new(candidate)));
        let hooks = Counted::default();
        let f = facts("next");
        let active = decide(&f, &active_set, now());
        shadow.evaluate(&hooks, None, &f, now(), &active);
        assert_eq!(hooks.evaluated.load(Ordering::Relaxed), 1);
        assert_eq!(hooks.disagreed.load(Ordering::Relaxed), 0);
        assert!(shadow.recent().is_empty());
    }

    #[test]
    fn the_list_is_newest_first_bounded_and_without_repeats() {
        let active_set = load_sources(embedded::sources()).unwrap();
        let shadow = Shadow::with_capacity(3);
        shadow
            .candidate_slot()
            .store(Some(Arc::new(shipped_with("period: 5m", "period: 2m"))));
        let hooks = Counted::default();
        for name in ["a", "b", "c", "d", "c"] {
            let f = facts(name);
            let active = decide(&f, &active_set, now());
            shadow.evaluate(&hooks, None, &f, now(), &active);
        }
        let order: Vec<String> = shadow.recent().into_iter().map(|d| d.wfe).collect();
        assert_eq!(order, ["team-a/c", "team-a/d", "team-a/b"]);
        // Every decision was counted, repeats included.
        assert_eq!(hooks.disagreed.load(Ordering::Relaxed), 5);
    }
}
