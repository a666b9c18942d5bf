//! `wfe_workflowexecutions_pending_oldest_seconds`: the age of the oldest
//! Pending WorkflowExecution, computed from the controller's cache at scrape
//! time (no API call). Exported only while a cache is attached (the leader),
//! so a standby replica does not report a misleading 0.

use std::sync::{Arc, Mutex};

use kube::runtime::reflector::Store;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::Gauge;

use crate::api::WorkflowExecution;

const NAME: &str = "wfe_workflowexecutions_pending_oldest_seconds";

/// A collector reading the WFE cache on every scrape. Cloning shares the
/// attached cache.
#[derive(Clone)]
pub struct PendingAge {
    gauge: Gauge,
    store: Arc<Mutex<Option<Store<WorkflowExecution>>>>,
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
            store: Arc::new(Mutex::new(None)),
        })
    }

    /// Read WFEs from `store` from now on (`None`: stop exporting).
    pub fn attach(&self, store: Option<Store<WorkflowExecution>>) {
        *self.lock() = store;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Store<WorkflowExecution>>> {
        // Only an Option is swapped under this lock; poisoning cannot corrupt it.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The oldest Pending WFE's age in `store`, in seconds (0 when none).
    pub fn oldest_pending_seconds(store: &Store<WorkflowExecution>, now: jiff::Timestamp) -> f64 {
        store
            .state()
            .iter()
            .filter(|w| w.metadata.deletion_timestamp.is_none())
            .filter(|w| {
                matches!(
                    w.status.as_ref().and_then(|s| s.phase.as_deref()),
                    None | Some("") | Some("Pending")
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
        let Some(store) = self.lock().clone() else {
            return Vec::new();
        };
        self.gauge
            .set(Self::oldest_pending_seconds(&store, jiff::Timestamp::now()));
        self.gauge.collect()
    }
}
