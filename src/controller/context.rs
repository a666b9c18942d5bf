//! What every reconcile shares: the client, the configuration, the current
//! rule set, the stores, and the sinks.

use std::sync::Arc;

use arc_swap::ArcSwap;
use kube::Client;

use super::audit::{AuditConditions, AuditSink};
use super::config::ControllerConfig;
use super::events::EventPublisher;
use super::failure_backoff::FailureBackoff;
use super::gather::View;
use super::hooks::ReconcileHooks;
use super::namespace::NamespaceView;
use super::shadow::Shadow;
use super::stores::Stores;
use crate::rules::RuleSet;

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
    pub(crate) fn view(&self) -> View<'_> {
        View {
            client: &self.client,
            config: &self.config,
            stores: &self.stores,
            engines: &self.engines,
            namespace_phase: self.namespace.phase(),
            rules: self.rules.load_full(),
        }
    }
}
