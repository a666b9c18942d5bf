//! `wfe-engine run`: the controller in a cluster, with the rules hot-reloaded
//! and the HTTP endpoints (`/metrics`, `/healthz`, `/readyz`, `/rules`).
//! Policy values (cooldown, backoff) live in the rules, not in flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use futures::StreamExt;

use crate::controller::{spawn_controller, ControllerConfig, ControllerOptions};
use crate::reload::{ReloadArgs, ReloadOptions, Reloader};
use crate::telemetry::{self, AppState, Metrics};

/// Rules directory in the container image / ConfigMap mount.
const DEFAULT_RULES_DIR: &str = "/etc/wfe-engine/rules";

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(clap::Args, Debug)]
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
    /// Watched WorkflowExecution namespaces, comma-separated (default: all).
    #[arg(long, env = "WFE_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Check declared Secrets/ConfigMaps exist with data before starting a WFE.
    #[arg(long, env = "WFE_DEPENDENCY_CHECK")]
    pub dependency_check: bool,
    /// Address of the HTTP endpoints.
    #[arg(long, env = "WFE_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Log format.
    #[arg(long, env = "WFE_LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Reporting instance of events (the pod name in a cluster).
    #[arg(long, env = "POD_NAME", default_value = "wfe-engine")]
    pub instance: String,
    /// Maximum concurrent reconciles.
    #[arg(long, env = "WFE_CONCURRENCY", default_value_t = 64)]
    pub concurrency: u16,
    #[command(flatten)]
    pub reload: ReloadArgs,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn rules_dir(arg: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = arg {
        anyhow::ensure!(
            p.is_dir(),
            "rules directory {} does not exist or is not a directory",
            p.display()
        );
        return Ok(p.to_path_buf());
    }
    for candidate in [Path::new(DEFAULT_RULES_DIR), Path::new("rules")] {
        if candidate.is_dir() {
            return Ok(candidate.to_path_buf());
        }
    }
    anyhow::bail!(
        "no rules directory: pass --rules DIR (looked in {DEFAULT_RULES_DIR} and ./rules)"
    )
}

async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("using kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no cluster configuration found")?,
    };
    kube::Client::try_from(config).context("building the Kubernetes client")
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

/// Run the controller until SIGINT/SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let dir = rules_dir(args.rules.as_deref())?;
    let set = crate::rules::load_dir(&dir)
        .map_err(|e| anyhow::anyhow!("invalid rules in {}:\n{e}", dir.display()))?;
    tracing::info!(dir = %dir.display(), revision = %set.revision, "rules loaded");
    let rules = Arc::new(ArcSwap::from_pointee(set));

    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    let reload = Reloader::spawn(
        &dir,
        ReloadOptions::from(&args.reload),
        rules.clone(),
        metrics.clone(),
    );

    let client = client(args.kubeconfig.as_deref()).await?;
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
    let controller = spawn_controller(client, config, rules.clone(), ControllerOptions::default())
        .await
        .context("starting the controller")?;

    // Re-evaluate every non-terminal WFE when the rules change.
    let trigger = controller.reconcile_all_trigger();
    let mut swaps = reload.swaps().boxed();
    tokio::spawn(async move {
        while let Some(revision) = swaps.next().await {
            tracing::info!(%revision, "rules swapped; reconciling non-terminal WorkflowExecutions");
            trigger.trigger();
        }
    });

    let synced = Arc::new(AtomicBool::new(false));
    let store = controller.context().stores.wfes.clone();
    let flag = synced.clone();
    tokio::spawn(async move {
        if store.wait_until_ready().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });

    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding {}", args.http_addr))?;
    let state = AppState::new(metrics)
        .with_rules(reload.clone())
        .with_caches_synced(synced);
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(telemetry::serve(
        listener,
        telemetry::router(state),
        async move {
            let _ = http_stopped.await;
        },
    ));
    tracing::info!(addr = %args.http_addr, "serving /metrics, /healthz, /readyz, /rules");

    shutdown_signal().await;
    tracing::info!("shutting down");
    controller
        .shutdown()
        .await
        .context("stopping the controller")?;
    let _ = stop_http.send(());
    match http.await {
        Ok(r) => r.context("HTTP server")?,
        Err(e) => anyhow::bail!("HTTP server task: {e}"),
    }
    Ok(())
}
