//! Prometheus metrics: the rules reload group, named and shaped the way
//! Prometheus names its own config-reload metrics (`*_last_reload_successful`,
//! `*_info` gauges), the controller group ([`ControllerMetrics`]) and the
//! Pending-age gauge ([`PendingAge`]).

use prometheus::{
    Encoder, Gauge, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use std::sync::Arc;

use super::controller_metrics::ControllerMetrics;
use super::pending_age::PendingAge;
use super::TelemetryError;
use crate::controller::ReconcileHooks;

/// All metrics of the engine, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub reload: ReloadMetrics,
    pub controller: ControllerMetrics,
    pub pending: PendingAge,
}

impl Metrics {
    /// A fresh registry with every metric group registered.
    pub fn new() -> Result<Self, TelemetryError> {
        let registry = Registry::new();
        let reload = ReloadMetrics::register(&registry)?;
        let controller = ControllerMetrics::register(&registry)?;
        let pending = PendingAge::new()?;
        registry.register(Box::new(pending.clone()))?;
        Ok(Metrics {
            registry,
            reload,
            controller,
            pending,
        })
    }

    /// The controller hooks that feed [`ControllerMetrics`].
    pub fn hooks(&self) -> Arc<dyn ReconcileHooks> {
        Arc::new(self.controller.clone())
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on a malformed family, which the
        // registry refuses at registration; an empty page is the safe fallback.
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Rules reload metrics.
#[derive(Clone)]
pub struct ReloadMetrics {
    /// `wfe_rules_reload_total{result="success"|"failure"}`.
    pub reload_total: IntCounterVec,
    /// `wfe_rules_last_reload_successful`: 1 when the last attempt was applied.
    pub last_reload_successful: IntGauge,
    /// `wfe_rules_last_reload_success_timestamp_seconds`.
    pub last_reload_success_timestamp_seconds: Gauge,
    /// `wfe_rules_revision_info{revision}`: 1 for the active revision only.
    pub revision_info: IntGaugeVec,
}

impl ReloadMetrics {
    fn register(registry: &Registry) -> Result<Self, TelemetryError> {
        let reload_total = IntCounterVec::new(
            Opts::new(
                "wfe_rules_reload_total",
                "Rules reload attempts, by result.",
            ),
            &["result"],
        )?;
        // Both series exist from the start so rate() and alerts see a zero.
        reload_total.with_label_values(&["success"]);
        reload_total.with_label_values(&["failure"]);
        let last_reload_successful = IntGauge::new(
            "wfe_rules_last_reload_successful",
            "Whether the last rules reload attempt succeeded (1) or was refused (0).",
        )?;
        let last_reload_success_timestamp_seconds = Gauge::new(
            "wfe_rules_last_reload_success_timestamp_seconds",
            "Unix time of the last successful rules reload.",
        )?;
        let revision_info = IntGaugeVec::new(
            Opts::new(
                "wfe_rules_revision_info",
                "The active rules revision (value 1).",
            ),
            &["revision"],
        )?;
        registry.register(Box::new(reload_total.clone()))?;
        registry.register(Box::new(last_reload_successful.clone()))?;
        registry.register(Box::new(last_reload_success_timestamp_seconds.clone()))?;
        registry.register(Box::new(revision_info.clone()))?;
        Ok(ReloadMetrics {
            reload_total,
            last_reload_successful,
            last_reload_success_timestamp_seconds,
            revision_info,
        })
    }

    /// A set was applied (or confirmed) at `unix_seconds`.
    pub fn record_success(&self, unix_seconds: f64) {
        self.reload_total.with_label_values(&["success"]).inc();
        self.mark_successful(unix_seconds);
    }

    /// The state after a good load that is not counted as a reload (startup).
    pub fn mark_successful(&self, unix_seconds: f64) {
        self.last_reload_successful.set(1);
        self.last_reload_success_timestamp_seconds.set(unix_seconds);
    }

    /// A candidate set was refused.
    pub fn record_failure(&self) {
        self.reload_total.with_label_values(&["failure"]).inc();
        self.last_reload_successful.set(0);
    }

    /// Switch the info series to `new`; the new series is set before the old
    /// one goes so a scrape never sees no active revision.
    pub fn set_revision(&self, old: Option<&str>, new: &str) {
        self.revision_info.with_label_values(&[new]).set(1);
        if let Some(old) = old.filter(|o| *o != new) {
            // Absent series is fine: nothing to remove.
            let _ = self.revision_info.remove_label_values(&[old]);
        }
    }

    pub fn successes(&self) -> u64 {
        self.reload_total.with_label_values(&["success"]).get()
    }

    pub fn failures(&self) -> u64 {
        self.reload_total.with_label_values(&["failure"]).get()
    }
}

/// The reloader reports the active set's outcomes into the reload metrics.
impl crate::reload::ReloadOutcomes for Metrics {
    fn revision_changed(&self, old: Option<&str>, new: &str) {
        self.reload.set_revision(old, new);
    }

    fn succeeded(&self, unix_seconds: f64) {
        self.reload.record_success(unix_seconds);
    }

    fn in_place(&self, unix_seconds: f64) {
        self.reload.mark_successful(unix_seconds);
    }

    fn refused(&self) {
        self.reload.record_failure();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_reload_metrics_in_prometheus_style() {
        let m = Metrics::new().unwrap();
        m.reload.set_revision(None, "sha256:aaaa");
        m.reload.mark_successful(100.0);
        m.reload.set_revision(Some("sha256:aaaa"), "sha256:bbbb");
        m.reload.record_success(200.0);
        m.reload.record_failure();
        let text = m.render();
        assert!(
            text.contains(r#"wfe_rules_reload_total{result="success"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wfe_rules_reload_total{result="failure"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("wfe_rules_last_reload_successful 0"),
            "{text}"
        );
        assert!(
            text.contains("wfe_rules_last_reload_success_timestamp_seconds 200"),
            "{text}"
        );
        assert!(
            text.contains(r#"wfe_rules_revision_info{revision="sha256:bbbb"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains("sha256:aaaa"),
            "old revision still exported: {text}"
        );
    }

    #[test]
    fn zero_series_exist_before_any_reload() {
        let text = Metrics::new().unwrap().render();
        assert!(
            text.contains(r#"wfe_rules_reload_total{result="failure"} 0"#),
            "{text}"
        );
    }
}
