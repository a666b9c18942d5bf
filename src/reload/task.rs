//! The reload task: signals → quiet window → fingerprint → load + rule
//! tests → atomic swap (or refusal) → outcome reported to the source, plus
//! the periodic re-check and re-watching a directory that went away. The
//! same task keeps the active set and a candidate evaluated in shadow; what
//! taking a set means for each is the [`Slot`]'s business.

use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{interval, interval_at, sleep_until, Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use super::error::ReloadError;
use super::fingerprint::Fingerprint;
use super::load_and_test::build_candidate;
use super::options::ReloadOptions;
use super::report::{self, Role, Was};
use super::slot::Slot;
use super::source::{RulesSource, Snapshot};
use super::status::{LastError, Progress, SourceStatus};
use super::watched::Watched;
use super::watcher::Signal;
use crate::rules::RuleSet;

/// A running reload task, as its handle sees it.
pub(super) struct Started {
    pub progress: Arc<Mutex<Progress>>,
    pub control: Control,
    /// Becomes true once the first look at the source reached an outcome.
    pub settled: watch::Receiver<bool>,
}

/// Start the reload task for `slot` (`loaded_at`: when the set already in
/// it was loaded, if there is one).
pub(super) fn start(
    source: RulesSource,
    options: ReloadOptions,
    slot: Slot,
    loaded_at: Option<Timestamp>,
) -> Started {
    let source = Watched::new(source, slot.role().what());
    let progress = Arc::new(Mutex::new(Progress {
        source: SourceStatus {
            directory: source.directory(),
            config_map: source.config_map(),
            watching: false,
            rule_test_gate: options.run_rule_tests,
            last_success_at: loaded_at,
            ..SourceStatus::default()
        },
        loaded_at,
    }));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (settled_tx, settled) = watch::channel(false);
    let (tx, rx) = unbounded_channel();
    let task = Task {
        source,
        options,
        slot,
        progress: progress.clone(),
        settled: settled_tx,
        tx,
        rx,
        last_attempted: None,
        initial: true,
        pending: None,
    };
    let join = tokio::spawn(task.run(stop_rx));
    Started {
        progress,
        control: Control {
            stop: stop_tx,
            join: Mutex::new(Some(join)),
        },
        settled,
    }
}

/// Stops a reload task.
#[derive(Debug)]
pub(super) struct Control {
    stop: watch::Sender<bool>,
    join: Mutex<Option<JoinHandle<()>>>,
}

impl Control {
    /// Stop the task and wait for it to finish its current step.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let join = lock(&self.join).take();
        if let Some(join) = join {
            if let Err(e) = join.await {
                warn!(error = %e, "rules reloader ended abnormally");
            }
        }
    }
}

/// A poisoned lock only means a panic elsewhere mid-update of a plain
/// snapshot; the data is still the best there is.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn unix_seconds(t: Timestamp) -> f64 {
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
    slot: Slot,
    progress: Arc<Mutex<Progress>>,
    settled: watch::Sender<bool>,
    tx: UnboundedSender<Signal>,
    rx: UnboundedReceiver<Signal>,
    /// Content of the last candidate that was decided on (applied or refused).
    last_attempted: Option<Fingerprint>,
    /// The first check only confirms the caller's set (if there is one); it
    /// is not a reload.
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
                warn!(source = %self.source.describe(), error = %e, "{} watch error; re-checking", self.what())
            }
        }
        lock(&self.progress).source.watching = self.source.watching();
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
        lock(&self.progress).source.watching = self.source.watching();
        new
    }

    /// Reload if the content differs from the last candidate decided on.
    async fn check(&mut self) {
        self.ensure_watch();
        let snapshot = match self.source.snapshot() {
            Ok(s) => s,
            Err(e) => {
                debug!(source = %self.source.describe(), error = %e.message, "no {} to look at; keeping the current set", self.what());
                if e.known {
                    // Nothing there is an outcome too (none to evaluate).
                    self.settled.send_replace(true);
                }
                return;
            }
        };
        let before = snapshot.fingerprint;
        if self.last_attempted == Some(before) {
            return;
        }
        {
            let mut status = lock(&self.progress);
            status.source.last_attempt_at = Some(Timestamp::now());
            status.source.config_map = self.source.config_map();
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
            debug!(source = %self.source.describe(), "{} changed during validation; validating again", self.what());
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
        self.settled.send_replace(true);
    }

    fn what(&self) -> &'static str {
        self.slot.role().what()
    }

    fn apply(&mut self, set: RuleSet, initial: bool, snapshot: &Snapshot) {
        let now = Timestamp::now();
        let old = self.slot.current();
        let role = self.slot.role();
        let files = set.files.len();
        if old.as_ref().is_some_and(|o| o.revision == set.revision) {
            // Also at startup: the editor learns which revision a new
            // replica took (every replica names the event alike, so the
            // API server keeps one).
            self.source.report(snapshot.origin.as_ref(), || {
                vec![report::applied_as(
                    role,
                    &set.revision,
                    Was::Unchanged,
                    files,
                )]
            });
            if initial {
                return;
            }
            // Same rules (e.g. a non-rules file changed, or a fix restored
            // the current set): a successful reload without a swap.
            self.slot.confirmed(unix_seconds(now));
            let mut status = lock(&self.progress);
            status.source.last_error = None;
            status.source.last_success_at = Some(now);
            status.source.reloads.success += 1;
            info!(revision = %set.revision, "{} reloaded; revision unchanged", self.what());
            return;
        }
        let new = Arc::new(set);
        self.slot.store(&new, old.as_deref(), unix_seconds(now));
        {
            let mut status = lock(&self.progress);
            status.loaded_at = Some(now);
            status.source.last_error = None;
            status.source.last_success_at = Some(now);
            status.source.reloads.success += 1;
        }
        for w in &new.warnings {
            warn!(revision = %new.revision, "{w}");
        }
        let previous = old.as_ref().map_or("-", |o| o.revision.as_str());
        info!(revision = %new.revision, previous = %previous, files, "{} reloaded", self.what());
        self.slot.announce(&new.revision);
        let was = old
            .as_ref()
            .map_or(Was::Nothing, |o| Was::Revision(&o.revision));
        self.source.report(snapshot.origin.as_ref(), || {
            vec![report::applied_as(role, &new.revision, was, files)]
        });
    }

    fn refuse(&mut self, e: ReloadError, snapshot: &Snapshot) {
        let now = Timestamp::now();
        self.slot.refused();
        let role = self.slot.role();
        let current = self.slot.current().map(|s| s.revision.clone());
        match role {
            Role::Active => error!(
                source = %self.source.describe(),
                active_revision = current.as_deref().unwrap_or("-"),
                "rules reload refused; the last good rule set stays active:\n{e}"
            ),
            // Nothing decides differently: not an error of the engine.
            Role::Shadow => warn!(
                source = %self.source.describe(),
                candidate_revision = current.as_deref().unwrap_or("-"),
                "shadow rules refused; the last good candidate (if any) stays in shadow:\n{e}"
            ),
        }
        self.source.report(snapshot.origin.as_ref(), || {
            report::rejected_as(role, &e, current.as_deref())
        });
        let mut status = lock(&self.progress);
        status.source.last_error = Some(LastError {
            at: now,
            message: e.to_string(),
            locations: e.locations(),
        });
        status.source.reloads.failure += 1;
    }
}
