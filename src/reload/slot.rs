//! Where a reloader puts the sets that pass the gate, and what taking or
//! refusing one means beyond that: the active set is swapped in, counted in
//! the reload metrics and announced (every WFE is decided again); a
//! candidate in shadow is only stored for the controller to evaluate beside
//! the active set. It never decides, is not counted in the reload metrics
//! (its refusal is no production problem), and is not announced: a new
//! candidate is compared on the decisions the controller makes from then on.

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::watch;

use super::outcomes::ReloadOutcomes;
use super::report::Role;
use crate::rules::RuleSet;

pub(crate) enum Slot {
    Active {
        rules: Arc<ArcSwap<RuleSet>>,
        outcomes: Arc<dyn ReloadOutcomes>,
        swaps: Arc<watch::Sender<String>>,
    },
    Shadow {
        candidate: Arc<ArcSwapOption<RuleSet>>,
    },
}

impl Slot {
    pub fn role(&self) -> Role {
        match self {
            Slot::Active { .. } => Role::Active,
            Slot::Shadow { .. } => Role::Shadow,
        }
    }

    /// The set in place now (always one for the active slot).
    pub fn current(&self) -> Option<Arc<RuleSet>> {
        match self {
            Slot::Active { rules, .. } => Some(rules.load_full()),
            Slot::Shadow { candidate } => candidate.load_full(),
        }
    }

    /// A set with the revision already in place passed the gate.
    pub fn confirmed(&self, unix_seconds: f64) {
        if let Slot::Active { outcomes, .. } = self {
            outcomes.succeeded(unix_seconds);
        }
    }

    /// Put `new` in place of `old`.
    pub fn store(&self, new: &Arc<RuleSet>, old: Option<&RuleSet>, unix_seconds: f64) {
        match self {
            Slot::Active {
                rules, outcomes, ..
            } => {
                rules.store(new.clone());
                outcomes.revision_changed(old.map(|o| o.revision.as_str()), &new.revision);
                outcomes.succeeded(unix_seconds);
            }
            Slot::Shadow { candidate } => candidate.store(Some(new.clone())),
        }
    }

    /// Tell the subscribers (the controller re-evaluates every WFE) once the
    /// new set is in place and its status written.
    pub fn announce(&self, revision: &str) {
        if let Slot::Active { swaps, .. } = self {
            swaps.send_replace(revision.to_string());
        }
    }

    /// A set was refused.
    pub fn refused(&self) {
        if let Slot::Active { outcomes, .. } = self {
            outcomes.refused();
        }
    }
}
