//! What every reconcile shares: the client, the configuration, the current
//! rule set, the stores, and the sinks.

use std::sync::Arc;

use arc_swap::ArcSwap;
use kube::Client;

use super::audit::{AuditConditions, AuditSink};
use super::error_policy::FailureBackoff;
use super::events::EventPublisher;
use super::hooks::ReconcileHooks;
use super::namespace::NamespaceView;
use super::shadow::Shadow;
use super::stores::Stores;
use crate::rules::RuleSet;

/// Static configuration of a controller run (policy lives in the rules).
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
    pub debounce: std::time::Duration,
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
            debounce: std::time::Duration::from_millis(50),
        }
    }
}

/// Shared state of the reconciles.
pub struct Context {
    pub client: Client,
    pub config: ControllerConfig,
    pub rules: Arc<ArcSwap<RuleSet>>,
    pub stores: Stores,
    /// `job`, plus `tekton` when its CRDs were discovered.
    pub engines: Vec<String>,
    pub audit: Arc<dyn AuditSink>,
    pub hooks: Arc<dyn ReconcileHooks>,
    pub backoff: FailureBackoff,
    pub(crate) events: EventPublisher,
    /// `AuditRecorded` conditions owed to WFEs by earlier reconciles.
    pub(crate) audit_conditions: AuditConditions,
    /// A candidate rule set evaluated beside `rules`, never applied.
    pub shadow: Option<Arc<Shadow>>,
    /// Whether the execution namespace accepts new objects.
    pub namespace: Arc<NamespaceView>,
}

impl Context {
    /// The read side, for [`super::gather::observe_wfe`].
    pub(crate) fn view(&self) -> super::gather::View<'_> {
        super::gather::View {
            client: &self.client,
            config: &self.config,
            stores: &self.stores,
            engines: &self.engines,
            namespace_phase: self.namespace.phase(),
            rules: self.rules.load_full(),
        }
    }
}
