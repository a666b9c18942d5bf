//! Starting and stopping the controller, and the hook for bulk reconciles
//! (rules reloads).

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use futures::channel::mpsc;
use futures::stream::{self, StreamExt};
use kube::runtime::controller::Config;
use kube::runtime::reflector::ObjectRef;
use kube::Client;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::audit::{AuditSink, NoopAuditSink};
use super::config::ControllerConfig;
use super::context::Context;
use super::discovery;
use super::error::ControllerError;
use super::events::EventPublisher;
use super::failure_backoff::FailureBackoff;
use super::hooks::{NoopHooks, ReconcileHooks};
use super::namespace::NamespaceView;
use super::readiness::Readiness;
use super::reconcile::{error_policy, reconcile};
use super::shadow::Shadow;
use super::watches;
use crate::api::WorkflowExecution;
use crate::rules::RuleSet;

/// Pluggable sinks.
#[derive(Clone)]
pub struct ControllerOptions {
    pub audit: Arc<dyn AuditSink>,
    pub hooks: Arc<dyn ReconcileHooks>,
    /// Per-object retry backoff for failed reconciles.
    pub backoff_base: std::time::Duration,
    pub backoff_max: std::time::Duration,
    /// A candidate rule set to evaluate beside the active one on every
    /// decision (never applied); `None`: no extra decision.
    pub shadow: Option<Arc<Shadow>>,
    /// Where the controller reports what keeps it from working (`/readyz`).
    pub readiness: Arc<Readiness>,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            audit: Arc::new(NoopAuditSink),
            hooks: Arc::new(NoopHooks),
            backoff_base: std::time::Duration::from_secs(1),
            backoff_max: std::time::Duration::from_secs(300),
            shadow: None,
            readiness: Arc::default(),
        }
    }
}

/// A running controller.
pub struct ControllerHandle {
    reconcile_all: mpsc::UnboundedSender<()>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    /// The execution namespace watch.
    namespace_task: JoinHandle<()>,
    context: Arc<Context>,
}

/// Triggers a reconcile of every WFE (e.g. after a rules reload).
#[derive(Clone)]
pub struct ReconcileAllTrigger(mpsc::UnboundedSender<()>);

impl ReconcileAllTrigger {
    pub fn trigger(&self) {
        // A closed channel means the controller stopped: nothing to reconcile.
        let _ = self.0.unbounded_send(());
    }
}

impl ControllerHandle {
    /// Reconcile every WFE now.
    pub fn reconcile_all(&self) {
        let _ = self.reconcile_all.unbounded_send(());
    }

    /// A cloneable trigger for [`ControllerHandle::reconcile_all`].
    pub fn reconcile_all_trigger(&self) -> ReconcileAllTrigger {
        ReconcileAllTrigger(self.reconcile_all.clone())
    }

    /// The shared context (stores, engines, sinks).
    pub fn context(&self) -> &Arc<Context> {
        &self.context
    }

    /// Stop gracefully: running reconciles finish, nothing new starts.
    pub async fn shutdown(mut self) -> Result<(), ControllerError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let result = (&mut self.task).await.map_err(ControllerError::Stopped);
        self.namespace_task.abort();
        result
    }

    /// Kill the controller task at once (as a crash would).
    pub fn abort(self) {
        self.task.abort();
        self.namespace_task.abort();
    }

    /// Whether the controller task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Discover the engines, build the watches and start the controller task.
pub async fn spawn_controller(
    client: Client,
    config: ControllerConfig,
    rules: Arc<ArcSwap<RuleSet>>,
    options: ControllerOptions,
) -> Result<ControllerHandle, ControllerError> {
    let engines = discovery::engines(&client, &config).await?;
    let tekton = engines.iter().any(|e| e == "tekton");
    tracing::info!(?engines, namespace = %config.execution_namespace, "engines available");

    let (stores, controller) = watches::build(&client, &config, tekton, &options.hooks);
    let (all_tx, all_rx) = mpsc::unbounded::<()>();
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();

    let wfes = stores.wfes.clone();
    let reconcile_all = all_rx.flat_map(move |()| {
        // Every WFE, terminal ones included: a new rule set can move a held
        // WFE's start and a finished WFE's lock release alike, and which
        // phases are terminal is the rules' business. Settled WFEs cost a
        // decision and no write.
        let pending: Vec<Result<WorkflowExecution, kube::runtime::watcher::Error>> =
            wfes.state().into_iter().map(|w| Ok((*w).clone())).collect();
        stream::iter(pending)
    });

    let namespace = Arc::new(NamespaceView::new(
        &config.execution_namespace,
        options.readiness.clone(),
        all_tx.clone(),
    ));
    let namespace_task = tokio::spawn(namespace.clone().run(client.clone()));
    let ctx = Arc::new(Context {
        namespace,
        events: EventPublisher::new(client.clone(), config.instance.clone()),
        client,
        engines,
        stores,
        rules,
        audit: options.audit,
        hooks: options.hooks,
        backoff: FailureBackoff::new(options.backoff_base, options.backoff_max),
        config: config.clone(),
        audit_conditions: Default::default(),
        shadow: options.shadow,
    });

    let controller = controller
        .watches_stream(reconcile_all, |w: WorkflowExecution| {
            Some(ObjectRef::from_obj(&w))
        })
        .with_config(
            Config::default()
                .concurrency(config.concurrency)
                .debounce(config.debounce),
        )
        .graceful_shutdown_on(async move {
            let _ = shutdown_rx.await;
        });
    let run_ctx = ctx.clone();
    let task = tokio::spawn(async move {
        controller
            .run(reconcile, error_policy, run_ctx)
            .for_each(|res| async move {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "controller event");
                }
            })
            .await;
    });
    Ok(ControllerHandle {
        reconcile_all: all_tx,
        shutdown: Some(shutdown_tx),
        task,
        namespace_task,
        context: ctx,
    })
}

/// Run the controller until `shutdown` resolves, then stop gracefully.
pub async fn run_controller(
    client: Client,
    config: ControllerConfig,
    rules: Arc<ArcSwap<RuleSet>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ControllerError> {
    let handle = spawn_controller(client, config, rules, ControllerOptions::default()).await?;
    shutdown.await;
    handle.shutdown().await
}
