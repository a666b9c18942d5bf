//! An in-memory Kubernetes API server for integration tests: real HTTP,
//! real `kube::Client`, the semantics a controller can observe. See
//! `tests/support/README.md` for what it does and does not model.

pub mod admission;
pub mod cel;
pub mod discovery;
pub mod error;
pub mod faults;
pub mod gc;
pub mod kinds;
pub mod log;
pub mod managed_fields;
pub mod names;
pub mod namespaces;
pub mod patch;
pub mod pod_security;
pub mod quantity;
pub mod schema;
pub mod selector;
pub mod server;
pub mod store;
pub mod tekton_webhook;
pub mod validate_job;
pub mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

pub use admission::{Admission, Quota, WebhookDenial};
pub use faults::{FaultRule, Faults};
pub use kinds::{KindSpec, Propagation, BUILTIN_KINDS};
pub use log::{LogEntry, RequestLog, Verb};
pub use pod_security::Level as PodSecurityLevel;
pub use store::Store;

/// Options for [`Emulator`]; start with [`Emulator::builder`].
pub struct EmulatorBuilder {
    kinds: Vec<KindSpec>,
    history_limit: usize,
    require_namespaces: bool,
    namespaces: Vec<String>,
    bookmark_interval: Duration,
    max_watch_timeout: Option<Duration>,
    gc_delay: Option<Duration>,
    validation: bool,
    field_management: bool,
}

/// GC delay of [`EmulatorBuilder::realistic`]: kube-controller-manager's
/// collector usually acts within a fraction of a second.
pub const REALISTIC_GC_DELAY: Duration = Duration::from_millis(200);

impl Default for EmulatorBuilder {
    fn default() -> Self {
        Self {
            kinds: BUILTIN_KINDS.to_vec(),
            history_limit: 100_000,
            require_namespaces: false,
            namespaces: vec!["default".into(), "kube-system".into()],
            bookmark_interval: Duration::from_millis(500),
            max_watch_timeout: None,
            gc_delay: None,
            validation: false,
            field_management: true,
        }
    }
}

impl EmulatorBuilder {
    /// Serve one more kind.
    pub fn kind(mut self, k: KindSpec) -> Self {
        self.kinds.push(k);
        self
    }

    /// Events kept for watch resumption; older versions get 410 Gone.
    pub fn history_limit(mut self, n: usize) -> Self {
        self.history_limit = n.max(1);
        self
    }

    /// Refuse creates in namespaces that do not exist (off by default).
    pub fn require_namespaces(mut self, on: bool) -> Self {
        self.require_namespaces = on;
        self
    }

    /// Everything a real cluster does that a controller can trip over:
    /// namespaces that must exist (and terminate), asynchronous garbage
    /// collection after [`REALISTIC_GC_DELAY`], validation and defaulting of
    /// Jobs, Pods and PipelineRuns. Each can be switched off again.
    pub fn realistic(self) -> Self {
        self.require_namespaces(true)
            .gc_delay(Some(REALISTIC_GC_DELAY))
            .validation(true)
    }

    /// `Some(d)`: garbage collection as kube-controller-manager does it, `d`
    /// after the owner went (finalizers `orphan`/`foregroundDeletion`, objects
    /// lingering with `deletionTimestamp`, terminating namespaces). `None`
    /// (the default): collected inside the DELETE call.
    pub fn gc_delay(mut self, d: Option<Duration>) -> Self {
        self.gc_delay = d;
        self
    }

    /// Validation of Jobs and Pods (422), the quantity decoder (400), and
    /// Tekton's defaulting and validating webhooks for PipelineRuns.
    pub fn validation(mut self, on: bool) -> Self {
        self.validation = on;
        self
    }

    /// Server-side-apply field ownership (`managedFields`, apply conflicts,
    /// fields dropped from an apply removed; `managed_fields.rs`). On by
    /// default, as on every real API server; off only to measure what it
    /// costs (`WFE_BENCH_FIELD_MANAGEMENT=off cargo bench --bench controller`).
    pub fn field_management(mut self, on: bool) -> Self {
        self.field_management = on;
        self
    }

    /// A namespace that exists from the start (besides default, kube-system).
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespaces.push(ns.to_string());
        self
    }

    /// Period of BOOKMARK events on watches that asked for them.
    pub fn bookmark_interval(mut self, d: Duration) -> Self {
        self.bookmark_interval = d;
        self
    }

    /// Cap every watch's lifetime (the real server ends watches after timeoutSeconds).
    pub fn max_watch_timeout(mut self, d: Duration) -> Self {
        self.max_watch_timeout = Some(d);
        self
    }

    /// Bind 127.0.0.1:0 and serve. Panics on setup errors: this is test support.
    pub async fn start(self) -> Emulator {
        let registry =
            kinds::Registry::new(self.kinds).unwrap_or_else(|e| panic!("emulator kind table: {e}"));
        let store = Arc::new(Store::new(
            Arc::new(registry),
            store::StoreOptions {
                history_limit: self.history_limit,
                require_namespaces: self.require_namespaces,
                gc_delay: self.gc_delay,
                field_management: self.field_management,
            },
        ));
        store.admission.set_validation(self.validation);
        let gc_task = self.gc_delay.map(|_| tokio::spawn(gc::run(store.clone())));
        if let Some(ns_ty) = store.registry.find("", "v1", "namespaces") {
            for ns in &self.namespaces {
                let obj = json!({"metadata": {"name": ns}});
                // A duplicate in the list is harmless.
                let _ = store.create(ns_ty, "", obj, &managed_fields::FieldOp::System, false);
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("emulator bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("emulator addr: {e}"));
        let faults = Arc::new(Faults::default());
        let log = Arc::new(RequestLog::default());
        let app = Arc::new(server::App {
            store: store.clone(),
            faults: faults.clone(),
            log: log.clone(),
            addr: addr.to_string(),
            opts: server::ServerOptions {
                bookmark_interval: self.bookmark_interval,
                max_watch_timeout: self.max_watch_timeout,
            },
        });
        let router = axum::Router::new().fallback(server::handle).with_state(app);
        let task = tokio::spawn(async move {
            // The server runs until the test's runtime ends or the handle is dropped.
            let _ = axum::serve(listener, router).await;
        });
        Emulator {
            addr,
            store,
            faults,
            log,
            task,
            gc_task,
        }
    }
}

/// A running emulator. Dropping it stops accepting connections and ends watches.
pub struct Emulator {
    addr: SocketAddr,
    store: Arc<Store>,
    faults: Arc<Faults>,
    log: Arc<RequestLog>,
    task: tokio::task::JoinHandle<()>,
    gc_task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// Start with the default kinds and options.
    pub async fn start() -> Self {
        EmulatorBuilder::default().start().await
    }

    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube config pointing at the emulator (default namespace `default`).
    pub fn config(&self) -> kube::Config {
        let uri = self
            .url()
            .parse()
            .unwrap_or_else(|e| panic!("emulator url: {e}"));
        kube::Config::new(uri)
    }

    /// A fresh client; each has its own connection pool. Built on a plain
    /// HTTP connector: the crate's kube features select rustls without a
    /// crypto provider, and the emulator speaks plain HTTP anyway.
    pub fn client(&self) -> kube::Client {
        use kube::client::ConfigExt;
        let config = self.config();
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let service = tower::ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .service(http);
        kube::Client::new(service, config.default_namespace)
    }

    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    pub fn log(&self) -> &Arc<RequestLog> {
        &self.log
    }

    /// Admission: quotas, webhook and RBAC denials, Pod Security levels.
    pub fn admission(&self) -> &Arc<Admission> {
        &self.store.admission
    }

    /// Wait until the garbage collector has nothing left to do.
    pub async fn gc_idle(&self) {
        while self.store.gc.pending() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Direct access to the objects, bypassing HTTP and faults.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Compact all history and send 410 Gone on every open watch: watchers
    /// must re-list, as after an etcd compaction.
    pub fn force_gone(&self) {
        self.store.compact_all();
        self.faults.signal.send_modify(|s| s.gone_epoch += 1);
    }

    /// Write a kubeconfig for `kubectl --kubeconfig` into `dir`.
    pub fn write_kubeconfig(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join("kubeconfig");
        let body = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emulator\n  cluster:\n    server: {}\ncontexts:\n- name: emulator\n  context:\n    cluster: emulator\n    user: emulator\n    namespace: default\ncurrent-context: emulator\nusers:\n- name: emulator\n  user: {{}}\n",
            self.url()
        );
        std::fs::write(&path, body)?;
        Ok(path)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.faults.close_watches();
        self.faults.stop_closing_watches();
        self.task.abort();
        if let Some(t) = &self.gc_task {
            t.abort();
        }
    }
}
