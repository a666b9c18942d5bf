//! A candidate rule set kept for shadow evaluation: watched and gated
//! exactly like the active set (the same source kinds, quiet window, load,
//! validation, its own rule tests; a refused candidate keeps the last good
//! one), reported under its own Event reasons (`ShadowRulesApplied`,
//! `ShadowRulesRejected`) and in `/rules` → `shadow`. The reloader only
//! stores the candidate; the controller evaluates it beside the active set
//! and never applies it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::watch;

use super::status::{Progress, ShadowStatus};
use super::task::{lock, Control, Started};
use crate::rules::RuleSet;

/// Talks to a running shadow reloader. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ShadowHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    progress: Arc<Mutex<Progress>>,
    control: Control,
    candidate: Arc<ArcSwapOption<RuleSet>>,
    settled: watch::Receiver<bool>,
}

impl ShadowHandle {
    /// The handle of a started shadow reload task keeping `candidate`.
    pub(super) fn new(started: Started, candidate: Arc<ArcSwapOption<RuleSet>>) -> ShadowHandle {
        ShadowHandle {
            inner: Arc::new(Inner {
                progress: started.progress,
                control: started.control,
                candidate,
                settled: started.settled,
            }),
        }
    }

    /// A snapshot for `/rules` → `shadow`.
    pub fn status(&self) -> ShadowStatus {
        let candidate = self.inner.candidate.load_full();
        ShadowStatus::of(&lock(&self.inner.progress), candidate.as_deref())
    }

    /// The candidate evaluated now, if one passed the gate.
    pub fn candidate(&self) -> Option<Arc<RuleSet>> {
        self.inner.candidate.load_full()
    }

    /// Wait until the first look at the source reached an outcome (a
    /// candidate taken or refused, or none there), at most `limit`; true
    /// when it did. `run` waits so that the first reconciles after a start
    /// are compared too.
    pub async fn settled(&self, limit: Duration) -> bool {
        let mut rx = self.inner.settled.clone();
        tokio::time::timeout(limit, rx.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stop the reloader and wait for it to finish its current step.
    pub async fn shutdown(&self) {
        self.inner.control.shutdown().await;
    }
}
