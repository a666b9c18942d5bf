//! `wfe-engine run`: the controller in a cluster, with the rules hot-reloaded
//! (and a candidate set evaluated in shadow, `run_shadow`), the audit sink,
//! leader election, and the HTTP endpoints (`/metrics`, `/healthz`,
//! `/readyz`, `/rules`, `/rules/shadow`). Policy values (cooldown, backoff)
//! live in the rules, not in flags.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use futures::StreamExt;
use tokio::sync::watch;

use super::kube_client::{client, UsageError};
use super::run_shadow::ShadowArgs;
use crate::controller::leader::{default_identity, default_lease_namespace};
use crate::controller::{
    run_leader_election, spawn_controller, AuditSink, ControllerConfig, ControllerError,
    ControllerHandle, ControllerOptions, LeaderStatus, LeaseSettings, NoopAuditSink, Readiness,
    ReconcileAllTrigger,
};
use crate::reload::{
    load_initial, ConfigMapRef, ConfigMapSource, ReloadArgs, ReloadOptions, Reloader, RulesSource,
};
use crate::rules::RuleSet;
use crate::telemetry::audit::AuditArgs;
use crate::telemetry::{self, init_logging, AppState, Metrics, PendingSource};

pub use crate::telemetry::LogFormat;

/// Rules directory in the container image / ConfigMap mount.
const DEFAULT_RULES_DIR: &str = "/etc/wfe-engine/rules";

#[derive(clap::Args, Debug)]
// A flag given again wins (the chart appends `extraArgs` after its own flags).
#[command(args_override_self = true)]
pub struct RunArgs {
    /// Kubeconfig file (default: in-cluster config, else ~/.kube/config).
    #[arg(long, env = "WFE_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace where PipelineRuns and Jobs are created.
    #[arg(long, env = "WFE_EXECUTION_NAMESPACE", default_value = crate::api::DEFAULT_EXECUTION_NAMESPACE)]
    pub execution_namespace: String,
    /// Rules directory, hot-reloaded (default: /etc/wfe-engine/rules, else ./rules).
    #[arg(long, env = "WFE_RULES", value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Read the rules from this ConfigMap through the API instead of a
    /// directory: watched, hot-reloaded, each outcome reported as an Event on it.
    #[arg(
        long,
        env = "WFE_RULES_CONFIGMAP",
        value_name = "NAMESPACE/NAME",
        conflicts_with = "rules"
    )]
    pub rules_configmap: Option<ConfigMapRef>,
    /// Watched WorkflowExecution namespaces, comma-separated (default: all).
    #[arg(long, env = "WFE_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Check declared Secrets/ConfigMaps exist with data before starting a WFE.
    #[arg(long, env = "WFE_DEPENDENCY_CHECK")]
    pub dependency_check: bool,
    /// Address of the HTTP endpoints.
    #[arg(long, env = "WFE_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Log format; the level comes from RUST_LOG (default info).
    #[arg(long, env = "WFE_LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Reporting instance of events (the pod name in a cluster).
    #[arg(long, env = "POD_NAME", default_value = "wfe-engine")]
    pub instance: String,
    /// Maximum concurrent reconciles.
    #[arg(long, env = "WFE_CONCURRENCY", default_value_t = 64)]
    pub concurrency: u16,
    #[command(flatten)]
    pub leader: LeaderElectionArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
    #[command(flatten)]
    pub reload: ReloadArgs,
    #[command(flatten)]
    pub shadow: ShadowArgs,
}

/// Leader election flags.
#[derive(clap::Args, Debug, Clone)]
pub struct LeaderElectionArgs {
    /// Reconcile only while holding a Lease (run two replicas with this).
    #[arg(long, env = "WFE_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Name of the Lease.
    #[arg(long, env = "WFE_LEADER_ELECTION_LEASE", default_value = "wfe-engine")]
    pub leader_election_lease: String,
    /// Namespace of the Lease (default: POD_NAMESPACE, else the service
    /// account's namespace, else kubernaut-workflows).
    #[arg(long, env = "WFE_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// This replica's identity in the Lease (default: POD_NAME, else
    /// <hostname>_<pid>); unique per replica.
    #[arg(long, env = "WFE_LEADER_ELECTION_IDENTITY")]
    pub leader_election_identity: Option<String>,
}

impl LeaderElectionArgs {
    /// The Lease settings with the production timing.
    pub fn settings(&self) -> LeaseSettings {
        let namespace = self
            .leader_election_namespace
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(default_lease_namespace);
        let identity = self
            .leader_election_identity
            .clone()
            .filter(|i| !i.trim().is_empty())
            .unwrap_or_else(default_identity);
        LeaseSettings::new(self.leader_election_lease.clone(), namespace, identity)
    }
}

fn rules_dir(arg: Option<&Path>) -> Result<PathBuf, UsageError> {
    if let Some(p) = arg {
        if !p.is_dir() {
            return Err(UsageError(format!(
                "rules directory {} does not exist or is not a directory",
                p.display()
            )));
        }
        return Ok(p.to_path_buf());
    }
    for candidate in [Path::new(DEFAULT_RULES_DIR), Path::new("rules")] {
        if candidate.is_dir() {
            return Ok(candidate.to_path_buf());
        }
    }
    Err(UsageError(format!(
        "no rules directory: pass --rules DIR (looked in {DEFAULT_RULES_DIR} and ./rules)"
    )))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The rules directory and its set, unless the rules come from a
/// ConfigMap: checked before anything else starts (no cluster is needed to
/// learn that the rules are missing or broken).
fn directory_rules(args: &RunArgs) -> anyhow::Result<Option<(PathBuf, RuleSet)>> {
    if args.rules_configmap.is_some() {
        return Ok(None);
    }
    let dir = rules_dir(args.rules.as_deref())?;
    let set = crate::rules::load_dir(&dir)
        .map_err(|e| anyhow::anyhow!("invalid rules in {}:\n{e}", dir.display()))?;
    Ok(Some((dir, set)))
}

/// Where the rules come from and the set to start with (a ConfigMap is
/// read through `client`).
async fn initial_rules(
    args: &RunArgs,
    directory: Option<(PathBuf, RuleSet)>,
    client: &kube::Client,
) -> anyhow::Result<(RulesSource, RuleSet)> {
    if let Some((dir, set)) = directory {
        return Ok((RulesSource::Directory(dir), set));
    }
    let target = args
        .rules_configmap
        .clone()
        .context("no rules directory and no rules ConfigMap")?;
    let source = RulesSource::ConfigMap(ConfigMapSource {
        client: client.clone(),
        target: target.clone(),
        instance: args.instance.clone(),
    });
    let set = load_initial(&source)
        .await
        .map_err(|e| anyhow::anyhow!("rules from ConfigMap {target}: {e}"))?;
    Ok((source, set))
}

/// Run the controller until SIGINT/SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    run_until(args, shutdown_signal()).await
}

/// What starting a controller needs, shared by every leadership term.
#[derive(Clone)]
struct Starter {
    client: kube::Client,
    config: ControllerConfig,
    rules: Arc<ArcSwap<RuleSet>>,
    options: ControllerOptions,
    metrics: Arc<Metrics>,
    /// The running controller's trigger, for rules reloads.
    trigger: Arc<Mutex<Option<ReconcileAllTrigger>>>,
    ready: Arc<AtomicBool>,
}

impl Starter {
    async fn start(&self) -> Result<ControllerHandle, ControllerError> {
        let handle = spawn_controller(
            self.client.clone(),
            self.config.clone(),
            self.rules.clone(),
            self.options.clone(),
        )
        .await?;
        *lock(&self.trigger) = Some(handle.reconcile_all_trigger());
        self.metrics.pending.attach(Some(PendingSource {
            store: handle.context().stores.wfes.clone(),
            rules: self.rules.clone(),
        }));
        self.metrics.controller.leader.set(1);
        // Ready once this term's caches have synced. A waiter left over
        // from an earlier term can only set `true`, which a standby is too.
        self.ready.store(false, Ordering::Release);
        let ready = self.ready.clone();
        let ctx = handle.context().clone();
        tokio::spawn(async move {
            // Every watch cache, not only the WFEs': the first decisions
            // read the execution objects too. Also returns when the
            // controller stopped, and `true` is right for a standby as well.
            ctx.stores.wait_ready().await;
            ready.store(true, Ordering::Release);
            tracing::info!("caches synced");
        });
        Ok(handle)
    }

    /// This replica stopped reconciling (lost the Lease or shut down).
    fn stopped(&self) {
        *lock(&self.trigger) = None;
        // Only the reconciling replica knows its environment.
        self.options.readiness.clear();
        self.metrics.pending.attach(None);
        self.metrics.controller.leader.set(0);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only an Option is swapped under this lock; poisoning cannot corrupt it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run until `shutdown` resolves: load the rules, start the reloader, the
/// audit sink, the HTTP endpoints and the controller (directly, or while
/// holding the Lease), then stop in order: the controller (in-flight
/// reconciles finish), the audit sink (buffer flushed), the HTTP server.
pub async fn run_until(
    args: RunArgs,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let directory = directory_rules(&args)?;
    args.shadow.check(
        directory.as_ref().map(|(dir, _)| dir.as_path()),
        args.rules_configmap.as_ref(),
    )?;
    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    let audit_sink = args.audit.build().context("starting the audit sink")?;
    let audit: Arc<dyn AuditSink> = match &audit_sink {
        Some(sink) => {
            sink.register(&metrics.registry)
                .context("registering audit metrics")?;
            tracing::info!(target_sink = %sink.target(), "audit records enabled");
            Arc::new(sink.clone())
        }
        None => {
            tracing::warn!(
                "no audit destination (--audit-file or --audit-url): records are discarded"
            );
            Arc::new(NoopAuditSink)
        }
    };
    let client = client(args.kubeconfig.as_deref()).await?;
    let (source, set) = initial_rules(&args, directory, &client).await?;
    tracing::info!(source = %source.describe(), revision = %set.revision, "rules loaded");
    let rules = Arc::new(ArcSwap::from_pointee(set));
    let reload = Reloader::spawn_source(
        source,
        ReloadOptions::from(&args.reload),
        rules.clone(),
        metrics.clone(),
    );
    let shadow = args
        .shadow
        .start(
            &client,
            &args.instance,
            ReloadOptions::from(&args.reload),
            &reload,
        )
        .await;

    let config = ControllerConfig {
        execution_namespace: args.execution_namespace.clone(),
        namespaces: args
            .namespaces
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect(),
        dependency_check: args.dependency_check,
        instance: args.instance.clone(),
        concurrency: args.concurrency,
        ..ControllerConfig::default()
    };
    let ready = Arc::new(AtomicBool::new(false));
    let readiness = Arc::new(Readiness::default());
    let starter = Starter {
        client: client.clone(),
        config,
        rules: rules.clone(),
        options: ControllerOptions {
            audit,
            hooks: metrics.hooks(),
            shadow: shadow.clone(),
            readiness: readiness.clone(),
            ..ControllerOptions::default()
        },
        metrics: metrics.clone(),
        trigger: Arc::new(Mutex::new(None)),
        ready: ready.clone(),
    };

    // Re-evaluate every WFE when the rules change.
    let trigger = starter.trigger.clone();
    let mut swaps = reload.swaps().boxed();
    tokio::spawn(async move {
        while let Some(revision) = swaps.next().await {
            tracing::info!(%revision, "rules swapped; reconciling every WorkflowExecution");
            if let Some(t) = lock(&trigger).as_ref() {
                t.trigger();
            }
        }
    });

    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding {}", args.http_addr))?;
    let state = AppState::new(metrics.clone())
        .with_rules(reload.clone())
        .with_caches_synced(ready.clone())
        .with_readiness(readiness);
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(telemetry::serve(
        listener,
        telemetry::router(state).merge(telemetry::shadow_router(shadow)),
        async move {
            let _ = http_stopped.await;
        },
    ));
    tracing::info!(addr = %args.http_addr, "serving /metrics, /healthz, /readyz, /rules, /rules/shadow");

    let controller_result = if args.leader.leader_election {
        run_elected(&args.leader, client, &starter, ready, shutdown).await
    } else {
        run_alone(&starter, shutdown).await
    };

    if let Some(sink) = &audit_sink {
        let timeout = args.audit.shutdown_timeout();
        match sink.shutdown(timeout).await {
            Ok(()) => tracing::info!("audit records flushed"),
            Err(e) => tracing::error!(error = %e, "audit flush incomplete"),
        }
    }
    let _ = stop_http.send(());
    match http.await {
        Ok(r) => r.context("HTTP server")?,
        Err(e) => anyhow::bail!("HTTP server task: {e}"),
    }
    controller_result
}

/// Without leader election: one controller until shutdown.
async fn run_alone(
    starter: &Starter,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let controller = starter.start().await.context("starting the controller")?;
    shutdown.await;
    tracing::info!("shutting down: finishing in-flight reconciles");
    let result = controller.shutdown().await;
    starter.stopped();
    result.context("stopping the controller")
}

/// With leader election: the controller runs while this replica holds the
/// Lease. A standby is ready once it has read the Lease.
async fn run_elected(
    args: &LeaderElectionArgs,
    client: kube::Client,
    starter: &Starter,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let settings = args.settings();
    let (status_tx, mut status_rx) = watch::channel(LeaderStatus::Starting);
    let follower = starter.clone();
    let follow = tokio::spawn(async move {
        while status_rx.changed().await.is_ok() {
            let status = status_rx.borrow_and_update().clone();
            match status {
                LeaderStatus::Following { holder } => {
                    follower.stopped();
                    ready.store(true, Ordering::Release);
                    tracing::debug!(?holder, "standing by");
                }
                LeaderStatus::Stopped => follower.stopped(),
                LeaderStatus::Starting | LeaderStatus::Leading => {}
            }
        }
    });
    let start = || async { starter.start().await };
    let shutdown = async {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight reconciles, then releasing the Lease");
    };
    let result = run_leader_election(client, settings, start, shutdown, status_tx).await;
    let _ = follow.await;
    result.context("leader election")
}
