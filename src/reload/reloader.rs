//! The reload loop: signals → quiet window → fingerprint → load + gate →
//! atomic swap (or refusal) → outcome reported to the source, plus the
//! periodic re-check and re-watching a directory that went away.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use futures::Stream;
use jiff::Timestamp;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{interval, interval_at, sleep_until, Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use super::fingerprint::Fingerprint;
use super::gate::build_candidate;
use super::options::ReloadOptions;
use super::report;
use super::source::{RulesSource, Snapshot, Watched};
use super::status::{ActiveRules, LastError, ReloadCounts, ReloadStatus};
use super::watcher::Signal;
use super::ReloadError;
use crate::rules::RuleSet;
use crate::telemetry::Metrics;

/// Starts the reload task.
#[derive(Debug)]
pub struct Reloader;

impl Reloader {
    /// Watch `dir` and keep `rules` at its latest good rule set
    /// ([`Reloader::spawn_source`] with a directory).
    pub fn spawn(
        dir: impl Into<PathBuf>,
        options: ReloadOptions,
        rules: Arc<ArcSwap<RuleSet>>,
        metrics: Arc<Metrics>,
    ) -> ReloadHandle {
        Self::spawn_source(RulesSource::Directory(dir.into()), options, rules, metrics)
    }

    /// Watch `source` and keep `rules` at its latest good rule set.
    ///
    /// `rules` holds the set the caller loaded at startup; it is re-checked at
    /// once (the source may have changed since). Must be called inside a
    /// tokio runtime. The task runs until [`ReloadHandle::shutdown`] or until
    /// every handle is dropped.
    pub fn spawn_source(
        source: RulesSource,
        options: ReloadOptions,
        rules: Arc<ArcSwap<RuleSet>>,
        metrics: Arc<Metrics>,
    ) -> ReloadHandle {
        let source = Watched::new(source);
        let now = Timestamp::now();
        let current = rules.load_full();
        metrics.reload.set_revision(None, &current.revision);
        metrics.reload.mark_successful(unix_seconds(now));
        let status = Arc::new(Mutex::new(ReloadStatus {
            directory: source.directory(),
            config_map: source.config_map(),
            watching: false,
            rule_test_gate: options.run_rule_tests,
            active: ActiveRules::of(&current, now),
            last_error: None,
            last_attempt_at: None,
            last_success_at: Some(now),
            reloads: ReloadCounts::default(),
        }));
        let (swaps, _) = watch::channel(current.revision.clone());
        let swaps = Arc::new(swaps);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (tx, rx) = unbounded_channel();
        let task = Task {
            source,
            options,
            rules: rules.clone(),
            metrics,
            status: status.clone(),
            swaps: swaps.clone(),
            tx,
            rx,
            last_attempted: None,
            initial: true,
            pending: None,
        };
        let join = tokio::spawn(task.run(stop_rx));
        ReloadHandle {
            inner: Arc::new(Inner {
                status,
                swaps,
                stop: stop_tx,
                join: Mutex::new(Some(join)),
                rules,
            }),
        }
    }
}

/// Talks to a running reloader. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ReloadHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    status: Arc<Mutex<ReloadStatus>>,
    swaps: Arc<watch::Sender<String>>,
    stop: watch::Sender<bool>,
    join: Mutex<Option<JoinHandle<()>>>,
    rules: Arc<ArcSwap<RuleSet>>,
}

impl ReloadHandle {
    /// The revision after each swap (the current one is marked as seen).
    pub fn subscribe(&self) -> watch::Receiver<String> {
        self.inner.swaps.subscribe()
    }

    /// One item per swap, with the new revision: feed it (mapped to `()`)
    /// to `Controller::reconcile_all_on` to re-evaluate every WFE.
    pub fn swaps(&self) -> impl Stream<Item = String> + Send + 'static {
        futures::stream::unfold(self.subscribe(), |mut rx| async move {
            rx.changed().await.ok()?;
            let revision = rx.borrow_and_update().clone();
            Some((revision, rx))
        })
    }

    /// A snapshot for `/rules`.
    pub fn status(&self) -> ReloadStatus {
        lock(&self.inner.status).clone()
    }

    /// The active rule set.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.inner.rules.load_full()
    }

    /// Stop the reloader and wait for it to finish its current step.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let join = lock(&self.inner.join).take();
        if let Some(join) = join {
            if let Err(e) = join.await {
                warn!(error = %e, "rules reloader ended abnormally");
            }
        }
    }
}

/// A poisoned lock only means a panic elsewhere mid-update of a plain
/// snapshot; the data is still the best there is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_seconds(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

/// A reload is due at `deadline`; `first` bounds how long signals can defer it.
#[derive(Debug, Clone, Copy)]
struct Pending {
    first: Instant,
    deadline: Instant,
}

struct Task {
    source: Watched,
    options: ReloadOptions,
    rules: Arc<ArcSwap<RuleSet>>,
    metrics: Arc<Metrics>,
    status: Arc<Mutex<ReloadStatus>>,
    swaps: Arc<watch::Sender<String>>,
    tx: UnboundedSender<Signal>,
    rx: UnboundedReceiver<Signal>,
    /// Content of the last candidate that was decided on (applied or refused).
    last_attempted: Option<Fingerprint>,
    /// The first check only confirms the caller's set; it is not a reload.
    initial: bool,
    pending: Option<Pending>,
}

impl Task {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        self.ensure_watch();
        let now = Instant::now();
        self.pending = Some(Pending {
            first: now,
            deadline: now,
        });
        let mut recheck = interval_at(
            now + self.options.recheck_interval,
            self.options.recheck_interval,
        );
        recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut rewatch = interval(self.options.rewatch_interval);
        rewatch.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let deadline = self.pending.map(|p| p.deadline);
            tokio::select! {
                biased;
                changed = stop.changed() => {
                    // Err: every handle is gone, so nobody can read the result.
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
                Some(signal) = self.rx.recv() => self.on_signal(signal),
                _ = sleep_until(deadline.unwrap_or(now)), if deadline.is_some() => {
                    self.pending = None;
                    self.check().await;
                }
                _ = recheck.tick() => self.check().await,
                _ = rewatch.tick(), if self.source.needs_rewatch() => {
                    if self.ensure_watch() {
                        self.mark_dirty();
                    }
                }
            }
        }
        debug!(source = %self.source.describe(), "rules reloader stopped");
    }

    fn on_signal(&mut self, signal: Signal) {
        match signal {
            Signal::Changed => {}
            Signal::Lost => self.source.lost(),
            Signal::Error(e) => {
                warn!(source = %self.source.describe(), error = %e, "rules watch error; re-checking")
            }
        }
        lock(&self.status).watching = self.source.watching();
        self.mark_dirty();
    }

    /// Start (or restart) the quiet window.
    fn mark_dirty(&mut self) {
        let now = Instant::now();
        let first = self.pending.map_or(now, |p| p.first);
        let deadline = (now + self.options.debounce).min(first + self.options.max_delay);
        self.pending = Some(Pending { first, deadline });
    }

    /// Make sure the source is watched; true when a new watch was established.
    fn ensure_watch(&mut self) -> bool {
        let new = self.source.ensure_watch(&self.tx);
        lock(&self.status).watching = self.source.watching();
        new
    }

    /// Reload if the content differs from the last candidate decided on.
    async fn check(&mut self) {
        self.ensure_watch();
        let snapshot = match self.source.snapshot() {
            Ok(s) => s,
            Err(e) => {
                debug!(source = %self.source.describe(), error = %e, "no rules to look at; keeping the active rules");
                return;
            }
        };
        let before = snapshot.fingerprint;
        if self.last_attempted == Some(before) {
            return;
        }
        {
            let mut status = lock(&self.status);
            status.last_attempt_at = Some(Timestamp::now());
            status.config_map = self.source.config_map();
        }
        let result = build_candidate(
            snapshot.candidate.clone(),
            self.options.run_rule_tests,
            self.options.gate_timeout,
        )
        .await;
        // A change while the candidate was read may have torn it (or, for a
        // ConfigMap, made it stale): decide only on content that held still
        // for the whole step.
        if !self.source.still(before) {
            debug!(source = %self.source.describe(), "rules changed during validation; validating again");
            self.mark_dirty();
            return;
        }
        let initial = std::mem::take(&mut self.initial);
        match result {
            Ok(set) => {
                self.last_attempted = Some(before);
                self.apply(set, initial, &snapshot);
            }
            Err(e) => {
                // Refused once, and not tried again until the content
                // changes (a timeout included: re-running a set whose tests
                // time out would pile the same work up at every re-check).
                // Only a thread that could not start is retried.
                if !matches!(e, ReloadError::Thread(_)) {
                    self.last_attempted = Some(before);
                }
                self.refuse(e, &snapshot);
            }
        }
    }

    fn apply(&mut self, set: RuleSet, initial: bool, snapshot: &Snapshot) {
        let now = Timestamp::now();
        let old = self.rules.load_full();
        let files = set.files.len();
        if set.revision == old.revision {
            // Also at startup: the editor learns which revision a new
            // replica took (every replica names the event alike, so the
            // API server keeps one).
            self.source.report(snapshot.origin.as_ref(), || {
                vec![report::applied(&set.revision, None, files)]
            });
            if initial {
                return;
            }
            // Same rules (e.g. a non-rules file changed, or a fix restored
            // the active set): a successful reload without a swap.
            self.metrics.reload.record_success(unix_seconds(now));
            let mut status = lock(&self.status);
            status.last_error = None;
            status.last_success_at = Some(now);
            status.reloads.success += 1;
            info!(revision = %set.revision, "rules reloaded; revision unchanged");
            return;
        }
        let new = Arc::new(set);
        self.rules.store(new.clone());
        self.metrics
            .reload
            .set_revision(Some(&old.revision), &new.revision);
        self.metrics.reload.record_success(unix_seconds(now));
        {
            let mut status = lock(&self.status);
            status.active = ActiveRules::of(&new, now);
            status.last_error = None;
            status.last_success_at = Some(now);
            status.reloads.success += 1;
        }
        for w in &new.warnings {
            warn!(revision = %new.revision, "{w}");
        }
        info!(revision = %new.revision, previous = %old.revision, files, "rules reloaded");
        self.swaps.send_replace(new.revision.clone());
        self.source.report(snapshot.origin.as_ref(), || {
            vec![report::applied(&new.revision, Some(&old.revision), files)]
        });
    }

    fn refuse(&mut self, e: ReloadError, snapshot: &Snapshot) {
        let now = Timestamp::now();
        self.metrics.reload.record_failure();
        let active = self.rules.load().revision.clone();
        error!(
            source = %self.source.describe(),
            active_revision = %active,
            "rules reload refused; the last good rule set stays active:\n{e}"
        );
        self.source.report(snapshot.origin.as_ref(), || {
            report::rejected(&e, Some(&active))
        });
        let mut status = lock(&self.status);
        status.last_error = Some(LastError {
            at: now,
            message: e.to_string(),
            locations: e.locations(),
        });
        status.reloads.failure += 1;
    }
}
