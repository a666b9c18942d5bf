//! Starting a reloader ([`Reloader`]) for the active set or for a candidate
//! in shadow, and the handle that talks to it ([`ReloadHandle`]). The loop
//! itself is in `task.rs`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::{ArcSwap, ArcSwapOption};
use futures::Stream;
use jiff::Timestamp;
use tokio::sync::watch;
use tracing::warn;

use super::options::ReloadOptions;
use super::outcomes::ReloadOutcomes;
use super::shadow::ShadowHandle;
use super::slot::Slot;
use super::source::RulesSource;
use super::status::{Progress, ReloadStatus};
use super::task::{lock, start, unix_seconds, Control};
use crate::rules::RuleSet;

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
        outcomes: Arc<dyn ReloadOutcomes>,
    ) -> ReloadHandle {
        Self::spawn_source(RulesSource::Directory(dir.into()), options, rules, outcomes)
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
        outcomes: Arc<dyn ReloadOutcomes>,
    ) -> ReloadHandle {
        let now = Timestamp::now();
        let current = rules.load_full();
        outcomes.revision_changed(None, &current.revision);
        outcomes.in_place(unix_seconds(now));
        let (swaps, _) = watch::channel(current.revision.clone());
        let swaps = Arc::new(swaps);
        let slot = Slot::Active {
            rules: rules.clone(),
            outcomes,
            swaps: swaps.clone(),
        };
        let started = start(source, options, slot, Some(now));
        ReloadHandle {
            inner: Arc::new(Inner {
                progress: started.progress,
                swaps,
                control: started.control,
                rules,
                shadow: OnceLock::new(),
            }),
        }
    }

    /// Watch `source` and keep `candidate` at its latest good rule set.
    ///
    /// `candidate` starts empty (or holding what the caller put there): the
    /// first look at the source runs the whole gate, rule tests included.
    /// Must be called inside a tokio runtime; runs until
    /// [`ShadowHandle::shutdown`] or until every handle is dropped.
    pub fn spawn_shadow(
        source: RulesSource,
        options: ReloadOptions,
        candidate: Arc<ArcSwapOption<RuleSet>>,
    ) -> ShadowHandle {
        let loaded_at = candidate.load().as_ref().map(|_| jiff::Timestamp::now());
        let slot = Slot::Shadow {
            candidate: candidate.clone(),
        };
        let started = start(source, options, slot, loaded_at);
        ShadowHandle::new(started, candidate)
    }
}

/// Talks to a running reloader. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ReloadHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    progress: Arc<Mutex<Progress>>,
    swaps: Arc<watch::Sender<String>>,
    control: Control,
    rules: Arc<ArcSwap<RuleSet>>,
    /// The candidate in shadow, shown in `/rules` beside the active set.
    shadow: OnceLock<ShadowHandle>,
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
        let shadow = self.inner.shadow.get().map(ShadowHandle::status);
        let active = self.inner.rules.load_full();
        ReloadStatus::of(&lock(&self.inner.progress), &active, shadow)
    }

    /// Show `shadow` in this handle's `/rules` (once; a second call is
    /// ignored, as one run has one candidate).
    pub fn attach_shadow(&self, shadow: ShadowHandle) {
        if self.inner.shadow.set(shadow).is_err() {
            warn!("a second shadow reloader was attached; /rules shows the first");
        }
    }

    /// The active rule set.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.inner.rules.load_full()
    }

    /// Stop the reloader and wait for it to finish its current step.
    pub async fn shutdown(&self) {
        self.inner.control.shutdown().await;
    }
}
