//! The execution namespace: does it accept new objects? Watched through the
//! API (one Namespace, by field selector) and, where that is not allowed,
//! learned from the answers to our creates. Its phase is the fact
//! `env.executionNamespacePhase` (the rules hold WFEs on it), `/readyz`
//! reports a missing or terminating namespace, and every change wakes every
//! WFE, so held ones proceed as soon as the namespace is back.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;

use super::readiness::Readiness;
use super::rejection::NamespaceSignal;
use crate::observe::{NAMESPACE_ACTIVE, NAMESPACE_MISSING, NAMESPACE_TERMINATING};

/// The phase of namespace `name` read once (`wfe-engine capture`): `""`
/// when it cannot be read.
pub(crate) async fn probe_phase(client: &Client, name: &str) -> String {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.get_opt(name).await {
        Ok(ns) => phase_of(ns.as_ref()).fact().to_string(),
        Err(_) => String::new(),
    }
}

fn phase_of(ns: Option<&Namespace>) -> Phase {
    match ns {
        None => Phase::Missing,
        Some(n) => {
            let terminating = n.metadata.deletion_timestamp.is_some()
                || n.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
            if terminating {
                Phase::Terminating
            } else {
                Phase::Active
            }
        }
    }
}

/// Readiness source name.
const SOURCE: &str = "execution-namespace";
/// How long a phase learned from a create answer stands when the namespace
/// cannot be watched: afterwards the next create asks again.
const LEARNED_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Active,
    Terminating,
    Missing,
}

impl Phase {
    fn fact(self) -> &'static str {
        match self {
            Phase::Active => NAMESPACE_ACTIVE,
            Phase::Terminating => NAMESPACE_TERMINATING,
            Phase::Missing => NAMESPACE_MISSING,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    phase: Option<Phase>,
    /// The watch is running and has listed the namespace at least once.
    watched: bool,
    /// When `phase` was last learned from a create answer.
    learned_at: Option<Instant>,
    /// The watch was refused (no RBAC for namespaces): warned once.
    denied: bool,
}

/// What the controller knows about its execution namespace.
pub struct NamespaceView {
    name: String,
    state: Mutex<State>,
    readiness: std::sync::Arc<Readiness>,
    /// Reconcile every WFE (a change can release or hold them all).
    wake: mpsc::UnboundedSender<()>,
}

impl NamespaceView {
    pub(crate) fn new(
        name: &str,
        readiness: std::sync::Arc<Readiness>,
        wake: mpsc::UnboundedSender<()>,
    ) -> Self {
        NamespaceView {
            name: name.to_string(),
            state: Mutex::default(),
            readiness,
            wake,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Small plain-data updates; a poisoned lock still holds a valid state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `env.executionNamespacePhase`: `Active`, `Terminating`, `Missing`, or
    /// `""` when unknown.
    pub fn phase(&self) -> String {
        let s = self.lock();
        let stale = !s.watched && s.learned_at.is_none_or(|t| t.elapsed() > LEARNED_TTL);
        match s.phase {
            Some(p) if !stale => p.fact().to_string(),
            _ => String::new(),
        }
    }

    /// Record a phase; on a change, update readiness and wake every WFE.
    fn set(&self, phase: Phase, from_watch: bool) {
        let changed = {
            let mut s = self.lock();
            if from_watch {
                s.watched = true;
            } else {
                s.learned_at = Some(Instant::now());
            }
            let changed = s.phase != Some(phase);
            s.phase = Some(phase);
            changed
        };
        if !changed {
            return;
        }
        let problem = match phase {
            Phase::Active => None,
            Phase::Missing => Some(format!(
                "execution namespace {} does not exist: WorkflowExecutions are held until it is created",
                self.name
            )),
            Phase::Terminating => Some(format!(
                "execution namespace {} is being terminated: WorkflowExecutions are held until it is recreated",
                self.name
            )),
        };
        match &problem {
            Some(p) => tracing::warn!(namespace = %self.name, "{p}"),
            None => tracing::info!(namespace = %self.name, "execution namespace is active"),
        }
        self.readiness.set(SOURCE, problem);
        // A closed channel means the controller stopped: nobody to wake.
        let _ = self.wake.unbounded_send(());
    }

    /// A create in the namespace succeeded.
    pub(crate) fn learned_active(&self) {
        self.set(Phase::Active, false);
    }

    /// A create answer revealed the namespace's state.
    pub(crate) fn learned(&self, signal: NamespaceSignal) {
        let phase = match signal {
            NamespaceSignal::Missing => Phase::Missing,
            NamespaceSignal::Terminating => Phase::Terminating,
        };
        self.set(phase, false);
    }

    fn observed(&self, ns: Option<&Namespace>) {
        self.set(phase_of(ns), true);
    }

    fn watch_failed(&self, e: &watcher::Error) {
        let denied = matches!(e, watcher::Error::InitialListFailed(kube::Error::Api(s))
            | watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 403);
        let mut s = self.lock();
        if denied && !s.denied {
            s.denied = true;
            tracing::warn!(
                namespace = %self.name,
                "cannot watch the execution namespace (grant get/list/watch on namespaces): \
                 its state is learned from create answers only"
            );
        }
        if denied {
            s.watched = false;
        }
    }

    /// Watch the namespace until the controller stops.
    pub(crate) async fn run(self: std::sync::Arc<Self>, client: Client) {
        let api: Api<Namespace> = Api::all(client);
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let mut listed: Option<Namespace> = None;
        let mut events = std::pin::pin!(watcher(api, config).default_backoff());
        while let Some(ev) = events.next().await {
            match ev {
                Ok(watcher::Event::Init) => listed = None,
                Ok(watcher::Event::InitApply(ns)) => listed = Some(ns),
                Ok(watcher::Event::InitDone) => self.observed(listed.take().as_ref()),
                Ok(watcher::Event::Apply(ns)) => self.observed(Some(&ns)),
                Ok(watcher::Event::Delete(_)) => self.observed(None),
                Err(e) => self.watch_failed(&e),
            }
        }
    }
}
