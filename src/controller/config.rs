//! The static configuration of a controller run (policy lives in the rules).

use std::time::Duration;

/// Static configuration of a controller run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerConfig {
    /// Where PipelineRuns and Jobs are created.
    pub execution_namespace: String,
    /// Watched WFE namespaces; empty means all.
    pub namespaces: Vec<String>,
    /// Check declared Secrets/ConfigMaps before starting a WFE.
    pub dependency_check: bool,
    /// `reportingInstance` of events (the pod name in a cluster).
    pub instance: String,
    /// Maximum concurrent reconciles (0 = unbounded).
    pub concurrency: u16,
    /// Disable Tekton even if its CRDs are installed.
    pub disable_tekton: bool,
    /// Trailing-edge debounce of reconcile triggers: a burst of watch events
    /// (PipelineRun, TaskRun and Pod updating together) becomes one
    /// reconcile and at most one status write.
    pub debounce: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            execution_namespace: crate::api::DEFAULT_EXECUTION_NAMESPACE.into(),
            namespaces: Vec::new(),
            dependency_check: false,
            instance: super::events::REPORTING_CONTROLLER.into(),
            concurrency: 64,
            disable_tekton: false,
            debounce: Duration::from_millis(50),
        }
    }
}
