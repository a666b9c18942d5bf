//! `wfe_workflowexecutions_pending_oldest_seconds`: the age of the oldest
//! WorkflowExecution still in the lifecycle's initial phase (asked of the
//! active rule set), computed from the controller's cache at scrape time (no
//! API call). Exported only while a cache is attached (the leader), so a
//! standby replica does not report a misleading 0.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use kube::runtime::reflector::Store;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::Gauge;

use crate::api::WorkflowExecution;
use crate::rules::{Lifecycle, RuleSet};

/// The cache read at scrape time, and the rules that say which phase is initial.
#[derive(Clone)]
pub struct PendingSource {
    pub store: Store<WorkflowExecution>,
    pub rules: Arc<ArcSwap<RuleSet>>,
}

const NAME: &str = "wfe_workflowexecutions_pending_oldest_seconds";

/// A collector reading the WFE cache on every scrape. Cloning shares the
/// attached cache.
#[derive(Clone)]
pub struct PendingAge {
    gauge: Gauge,
    source: Arc<Mutex<Option<PendingSource>>>,
}

impl std::fmt::Debug for PendingAge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAge").finish_non_exhaustive()
    }
}

impl PendingAge {
    pub(crate) fn new() -> Result<Self, prometheus::Error> {
        Ok(PendingAge {
            gauge: Gauge::new(
                NAME,
                "Age in seconds of the oldest WorkflowExecution in phase Pending (0 when none).",
            )?,
            source: Arc::new(Mutex::new(None)),
        })
    }

    /// Read WFEs from `source` from now on (`None`: stop exporting).
    pub fn attach(&self, source: Option<PendingSource>) {
        *self.lock() = source;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<PendingSource>> {
        // Only an Option is swapped under this lock; poisoning cannot corrupt it.
        self.source.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The age in seconds of the oldest WFE of `store` in the initial phase
    /// of `lifecycle` (0 when none).
    pub fn oldest_pending_seconds(
        store: &Store<WorkflowExecution>,
        lifecycle: &Lifecycle,
        now: jiff::Timestamp,
    ) -> f64 {
        store
            .state()
            .iter()
            .filter(|w| w.metadata.deletion_timestamp.is_none())
            .filter(|w| {
                lifecycle.is_initial(
                    w.status
                        .as_ref()
                        .and_then(|s| s.phase.as_deref())
                        .unwrap_or(""),
                )
            })
            .filter_map(|w| w.metadata.creation_timestamp.as_ref())
            .map(|t| (now - t.0).total(jiff::Unit::Second).unwrap_or(0.0))
            .fold(0.0_f64, f64::max)
    }
}

impl Collector for PendingAge {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(source) = self.lock().clone() else {
            return Vec::new();
        };
        let rules = source.rules.load();
        self.gauge.set(Self::oldest_pending_seconds(
            &source.store,
            &rules.lifecycle,
            jiff::Timestamp::now(),
        ));
        self.gauge.collect()
    }
}
