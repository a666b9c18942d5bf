//! The controller's metrics: kubernaut's two reconciler metrics (same names,
//! labels and buckets) and the engine's own, fed through
//! [`ReconcileHooks`]. Every label value comes from a fixed set or from the
//! rule set (rule ids, hold reasons), never from a WFE's name.

use std::time::Duration;

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts,
    Registry,
};

use super::shadow_metrics::ShadowMetrics;
use crate::controller::{ReconcileHooks, ReconcileOutcome};
use crate::engine::{Decision, DecisionDiff};

/// Error kinds of `wfe_reconcile_errors_total` created at zero, so alerts
/// see a rate of 0 rather than no series. `rules` is a rule that failed to
/// evaluate for an object (the status says `RulesError`); the others are
/// `ControllerError::category()`.
pub const ERROR_KINDS: [&str; 8] = [
    "api", "conflict", "build", "encode", "invalid", "cleanup", "stopped", "rules",
];

/// Kinds watched by the controller (`wfe_watch_restarts_total{kind}`).
pub const WATCHED_KINDS: [&str; 5] = ["WorkflowExecution", "PipelineRun", "TaskRun", "Job", "Pod"];

/// A label value taken from the rules, kept only if it looks like an
/// identifier; anything else becomes `other` (bounded cardinality even if a
/// rule computed it).
fn bounded(value: &str) -> &str {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.#/:".contains(&b));
    if ok {
        value
    } else {
        "other"
    }
}

/// The execution engine behind an execution object kind.
fn engine_of_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "PipelineRun" => Some("tekton"),
        "Job" => Some("job"),
        _ => None,
    }
}

/// Every controller metric. Cloning shares the series.
#[derive(Clone)]
pub struct ControllerMetrics {
    /// `workflowexecution_reconciler_total{outcome}` (kubernaut): terminal
    /// transitions, `Completed` or `Failed`.
    pub reconciler_total: IntCounterVec,
    /// `workflowexecution_reconciler_duration_seconds{outcome}` (kubernaut):
    /// execution duration at the terminal transition; buckets 5 s … 320 s.
    pub reconciler_duration: HistogramVec,
    /// `wfe_reconcile_total{result}`.
    pub reconcile_total: IntCounterVec,
    /// `wfe_reconcile_errors_total{kind}`.
    pub reconcile_errors: IntCounterVec,
    /// `wfe_reconcile_duration_seconds`.
    pub reconcile_duration: Histogram,
    /// `wfe_decisions_total{rule}` (`file#name`, or `none`).
    pub decisions: IntCounterVec,
    /// `wfe_rule_evaluation_seconds`.
    pub rule_evaluation: Histogram,
    /// `wfe_api_writes_total{verb,kind}`.
    pub api_writes: IntCounterVec,
    /// `wfe_executions_created_total{engine}`.
    pub executions_created: IntCounterVec,
    /// `wfe_holds_total{reason}`: holds entered (status written with a hold).
    pub holds: IntCounterVec,
    /// `wfe_watch_restarts_total{kind}`.
    pub watch_restarts: IntCounterVec,
    /// `wfe_leader`: 1 while this replica holds the Lease (or runs without
    /// leader election).
    pub leader: IntGauge,
    /// The candidate rule set in shadow.
    pub shadow: ShadowMetrics,
}

impl std::fmt::Debug for ControllerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerMetrics").finish_non_exhaustive()
    }
}

impl ControllerMetrics {
    pub(crate) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let reconciler_total = IntCounterVec::new(
            Opts::new(
                "workflowexecution_reconciler_total",
                "WorkflowExecutions that reached a terminal phase, by outcome.",
            ),
            &["outcome"],
        )?;
        let reconciler_duration = HistogramVec::new(
            HistogramOpts::new(
                "workflowexecution_reconciler_duration_seconds",
                "Execution duration of WorkflowExecutions at their terminal transition \
                 (0 for failures before execution), by outcome.",
            )
            .buckets(exponential_buckets(5.0, 2.0, 7)?),
            &["outcome"],
        )?;
        for outcome in ["Completed", "Failed"] {
            reconciler_total.with_label_values(&[outcome]);
            reconciler_duration.with_label_values(&[outcome]);
        }
        let reconcile_total = IntCounterVec::new(
            Opts::new("wfe_reconcile_total", "Reconciles, by result."),
            &["result"],
        )?;
        for o in ReconcileOutcome::ALL {
            reconcile_total.with_label_values(&[o.as_str()]);
        }
        let reconcile_errors = IntCounterVec::new(
            Opts::new(
                "wfe_reconcile_errors_total",
                "Failed reconciles (retried with backoff) and rule evaluation errors, by kind.",
            ),
            &["kind"],
        )?;
        for k in ERROR_KINDS {
            reconcile_errors.with_label_values(&[k]);
        }
        let reconcile_duration = Histogram::with_opts(
            HistogramOpts::new(
                "wfe_reconcile_duration_seconds",
                "Duration of one reconcile (observe, decide, apply).",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        let decisions = IntCounterVec::new(
            Opts::new(
                "wfe_decisions_total",
                "Decisions, by deciding rule (file#name; none when no rule matched).",
            ),
            &["rule"],
        )?;
        let rule_evaluation = Histogram::with_opts(
            HistogramOpts::new(
                "wfe_rule_evaluation_seconds",
                "Time to evaluate the rule set for one WorkflowExecution.",
            )
            .buckets(exponential_buckets(0.000_01, 4.0, 9)?),
        )?;
        let api_writes = IntCounterVec::new(
            Opts::new(
                "wfe_api_writes_total",
                "Successful writes to the API server, by verb and kind.",
            ),
            &["verb", "kind"],
        )?;
        let executions_created = IntCounterVec::new(
            Opts::new(
                "wfe_executions_created_total",
                "Execution objects (PipelineRuns, Jobs) created, by engine.",
            ),
            &["engine"],
        )?;
        for e in ["tekton", "job"] {
            executions_created.with_label_values(&[e]);
        }
        let holds = IntCounterVec::new(
            Opts::new(
                "wfe_holds_total",
                "WorkflowExecutions put on hold (status written with a Blocked reason), by reason.",
            ),
            &["reason"],
        )?;
        let watch_restarts = IntCounterVec::new(
            Opts::new(
                "wfe_watch_restarts_total",
                "Watch streams restarted after an error (re-list or resume after a backoff), by kind.",
            ),
            &["kind"],
        )?;
        for k in WATCHED_KINDS {
            watch_restarts.with_label_values(&[k]);
        }
        let leader = IntGauge::new(
            "wfe_leader",
            "1 while this replica reconciles (holds the leader Lease, or runs without leader election).",
        )?;
        registry.register(Box::new(reconciler_total.clone()))?;
        registry.register(Box::new(reconciler_duration.clone()))?;
        registry.register(Box::new(reconcile_total.clone()))?;
        registry.register(Box::new(reconcile_errors.clone()))?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(rule_evaluation.clone()))?;
        registry.register(Box::new(api_writes.clone()))?;
        registry.register(Box::new(executions_created.clone()))?;
        registry.register(Box::new(holds.clone()))?;
        registry.register(Box::new(watch_restarts.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        let shadow = ShadowMetrics::register(registry)?;
        Ok(ControllerMetrics {
            reconciler_total,
            reconciler_duration,
            reconcile_total,
            reconcile_errors,
            reconcile_duration,
            decisions,
            rule_evaluation,
            api_writes,
            executions_created,
            holds,
            watch_restarts,
            leader,
            shadow,
        })
    }
}

impl ReconcileHooks for ControllerMetrics {
    fn decided(&self, decision: &Decision, eval_time: Duration) {
        let rule = decision
            .rule
            .as_ref()
            .map_or_else(|| "none".to_string(), ToString::to_string);
        self.decisions.with_label_values(&[bounded(&rule)]).inc();
        self.rule_evaluation.observe(eval_time.as_secs_f64());
    }

    fn shadow_evaluated(&self, disagreement: Option<&DecisionDiff>, _eval_time: Duration) {
        self.shadow.observe(disagreement);
    }

    fn applied(&self, decision: &Decision, changed: bool) {
        if let (Some(hold), true) = (&decision.hold, changed) {
            self.holds.with_label_values(&[bounded(&hold.reason)]).inc();
        }
    }

    fn api_write(&self, verb: &'static str, kind: &str) {
        let kind = bounded(kind);
        self.api_writes.with_label_values(&[verb, kind]).inc();
        if verb == "create" {
            if let Some(engine) = engine_of_kind(kind) {
                self.executions_created.with_label_values(&[engine]).inc();
            }
        }
    }

    fn reconciled(&self, outcome: ReconcileOutcome, elapsed: Duration) {
        self.reconcile_total
            .with_label_values(&[outcome.as_str()])
            .inc();
        self.reconcile_duration.observe(elapsed.as_secs_f64());
        if outcome == ReconcileOutcome::RulesError {
            self.reconcile_errors.with_label_values(&["rules"]).inc();
        }
    }

    fn reconcile_failed(&self, kind: &'static str) {
        self.reconcile_errors.with_label_values(&[kind]).inc();
    }

    fn terminal(&self, phase: &str, _reason: Option<&str>, execution_seconds: f64) {
        // kubernaut's outcomes are the two terminal phases; a rule set
        // naming its terminal phases differently still yields two series.
        let outcome = if phase == "Completed" {
            "Completed"
        } else {
            "Failed"
        };
        self.reconciler_total.with_label_values(&[outcome]).inc();
        self.reconciler_duration
            .with_label_values(&[outcome])
            .observe(execution_seconds.max(0.0));
    }

    fn watch_restarted(&self, kind: &str) {
        self.watch_restarts
            .with_label_values(&[bounded(kind)])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_from_rules_are_bounded() {
        assert_eq!(bounded("lifecycle.yaml#start"), "lifecycle.yaml#start");
        assert_eq!(bounded("CooldownActive"), "CooldownActive");
        assert_eq!(bounded("has space"), "other");
        assert_eq!(bounded(""), "other");
        assert_eq!(bounded(&"x".repeat(200)), "other");
    }

    #[test]
    fn kubernaut_buckets_are_5_to_320_seconds() {
        let registry = Registry::new();
        let m = ControllerMetrics::register(&registry).unwrap();
        m.terminal("Completed", None, 12.0);
        m.terminal("Failed", Some("OOMKilled"), 0.0);
        let families = registry.gather();
        let f = families
            .iter()
            .find(|f| f.name() == "workflowexecution_reconciler_duration_seconds")
            .unwrap();
        let bounds: Vec<f64> = f.get_metric()[0]
            .get_histogram()
            .get_bucket()
            .iter()
            .map(|b| b.upper_bound())
            .collect();
        assert_eq!(bounds, vec![5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0]);
    }
}
