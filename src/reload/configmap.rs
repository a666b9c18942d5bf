//! The rules ConfigMap read through the API: one kube-runtime watcher with a
//! field selector on `metadata.name` (RBAC can then grant get/list/watch on
//! that one name), whose latest content the reloader snapshots. The ConfigMap
//! is a single object, so a snapshot is never torn the way a directory can be.

use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::error::ReloadError;
use super::events::{self, EventReporter};
use super::fingerprint::Fingerprint;
use super::report::{self, EventDraft};
use super::source::{Candidate, ConfigMapRef, ConfigMapSource, NoSnapshot, Origin, Snapshot};
use super::watcher::Signal;
use crate::rules::{load_sources, RuleSet, SourceFile};

/// One version of the ConfigMap, as rules files.
#[derive(Clone, Debug)]
pub(crate) struct Content {
    pub files: Vec<SourceFile>,
    pub fingerprint: Fingerprint,
    pub origin: Origin,
}

impl Content {
    /// Keys of `data` and `binaryData` are the file names (a flat directory,
    /// as the ConfigMap volume would show it).
    pub fn of(cm: &ConfigMap) -> Content {
        let mut files: Vec<SourceFile> = Vec::new();
        for (name, text) in cm.data.iter().flatten() {
            files.push(SourceFile {
                name: name.clone(),
                content: text.as_bytes().to_vec(),
            });
        }
        for (name, bytes) in cm.binary_data.iter().flatten() {
            files.push(SourceFile {
                name: name.clone(),
                content: bytes.0.clone(),
            });
        }
        Content {
            fingerprint: Fingerprint::of_files(&files),
            files,
            origin: Origin {
                uid: cm.uid().unwrap_or_default(),
                resource_version: cm.resource_version().unwrap_or_default(),
            },
        }
    }
}

/// What the watch task last saw.
#[derive(Debug, Default)]
struct WatchState {
    content: Option<Content>,
    /// The first list completed (so `content: None` means "does not exist").
    synced: bool,
    /// No watch error since the last event.
    healthy: bool,
    /// The current streak of watch errors was told to the reloader.
    error_reported: bool,
}

/// The ConfigMap source of a running reloader.
pub(crate) struct ConfigMapWatch {
    client: Client,
    target: ConfigMapRef,
    /// `rules` or `shadow rules`, for log lines.
    what: &'static str,
    state: Arc<Mutex<WatchState>>,
    task: Option<JoinHandle<()>>,
    reporter: EventReporter,
}

impl std::fmt::Debug for ConfigMapWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigMapWatch")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl ConfigMapWatch {
    pub fn new(source: &ConfigMapSource, what: &'static str) -> ConfigMapWatch {
        ConfigMapWatch {
            client: source.client.clone(),
            target: source.target.clone(),
            what,
            state: Arc::default(),
            task: None,
            reporter: EventReporter::start(
                source.client.clone(),
                source.target.clone(),
                source.instance.clone(),
            ),
        }
    }

    pub fn target(&self) -> &ConfigMapRef {
        &self.target
    }

    /// Start the watch task once; it runs (retrying with backoff) until the
    /// source is dropped.
    pub fn ensure_started(&mut self, tx: &UnboundedSender<Signal>) {
        if self.task.is_none() {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.target.namespace);
            self.task = Some(tokio::spawn(watch(
                api,
                self.target.clone(),
                self.what,
                self.state.clone(),
                tx.clone(),
            )));
        }
    }

    /// True while the watch is healthy and the ConfigMap exists.
    pub fn watching(&self) -> bool {
        let s = lock(&self.state);
        s.synced && s.healthy && s.content.is_some()
    }

    /// The resourceVersion of the content seen last, if any.
    pub fn resource_version(&self) -> Option<String> {
        lock(&self.state)
            .content
            .as_ref()
            .map(|c| c.origin.resource_version.clone())
    }

    pub fn snapshot(&self) -> Result<Snapshot, NoSnapshot> {
        let s = lock(&self.state);
        match &s.content {
            Some(c) => Ok(Snapshot {
                fingerprint: c.fingerprint,
                candidate: Candidate::Files(c.files.clone()),
                origin: Some(c.origin.clone()),
            }),
            None if s.synced => Err(NoSnapshot {
                message: format!("ConfigMap {} does not exist", self.target),
                known: true,
            }),
            None => Err(NoSnapshot {
                message: format!("ConfigMap {} not read yet", self.target),
                known: false,
            }),
        }
    }

    /// Whether the ConfigMap still holds `fingerprint` (a newer edit makes
    /// the result of validating the older one moot).
    pub fn still(&self, fingerprint: Fingerprint) -> bool {
        lock(&self.state)
            .content
            .as_ref()
            .is_none_or(|c| c.fingerprint == fingerprint)
    }

    pub fn report(&self, origin: &Origin, drafts: Vec<EventDraft>) {
        self.reporter.report(origin, drafts);
    }
}

impl Drop for ConfigMapWatch {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn lock(m: &Mutex<WatchState>) -> MutexGuard<'_, WatchState> {
    // Plain values replaced whole under the lock: a poisoned one is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn watch(
    api: Api<ConfigMap>,
    target: ConfigMapRef,
    what: &'static str,
    state: Arc<Mutex<WatchState>>,
    tx: UnboundedSender<Signal>,
) {
    let config = watcher::Config::default().fields(&format!("metadata.name={}", target.name));
    let mut stream = watcher(api, config).default_backoff().boxed();
    let mut listed: Option<Content> = None;
    while let Some(event) = stream.next().await {
        let update = match event {
            Ok(watcher::Event::Init) => {
                listed = None;
                None
            }
            Ok(watcher::Event::InitApply(cm)) => {
                listed = Some(Content::of(&cm));
                None
            }
            Ok(watcher::Event::InitDone) => Some(listed.take()),
            Ok(watcher::Event::Apply(cm)) => Some(Some(Content::of(&cm))),
            Ok(watcher::Event::Delete(_)) => Some(None),
            Err(e) => {
                let first = {
                    let mut s = lock(&state);
                    s.healthy = false;
                    !std::mem::replace(&mut s.error_reported, true)
                };
                // Once per failure streak (the watcher retries with backoff);
                // the reloader logs it and shows `watching: false`.
                if first
                    && tx
                        .send(Signal::Error(format!("configmap {target}: {e}")))
                        .is_err()
                {
                    return;
                }
                None
            }
        };
        let Some(content) = update else { continue };
        {
            let mut s = lock(&state);
            match (&content, &s.content, s.synced) {
                (None, _, false) | (None, Some(_), true) => {
                    warn!(configmap = %target, "the {what} ConfigMap does not exist; keeping the current set until it is back")
                }
                (Some(_), None, true) => info!(configmap = %target, "the {what} ConfigMap is back"),
                _ => {}
            }
            s.content = content;
            s.synced = true;
            s.healthy = true;
            s.error_reported = false;
        }
        if tx.send(Signal::Changed).is_err() {
            // The reloader is gone.
            return;
        }
    }
}

/// Read the ConfigMap once; `None` when it does not exist.
pub(crate) async fn fetch(
    client: &Client,
    target: &ConfigMapRef,
) -> Result<Option<Content>, kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &target.namespace);
    Ok(api.get_opt(&target.name).await?.map(|cm| Content::of(&cm)))
}

/// The set to start with: loaded (not yet gated) from the ConfigMap. A set
/// that does not load is also reported on the ConfigMap before the error
/// is returned, so the editor sees why the engine does not start.
pub(crate) async fn initial(source: &ConfigMapSource) -> Result<RuleSet, ReloadError> {
    let content = fetch(&source.client, &source.target)
        .await
        .map_err(|e| ReloadError::Api {
            what: format!("reading ConfigMap {}", source.target),
            source: Box::new(e),
        })?
        .ok_or_else(|| ReloadError::ConfigMapMissing(source.target.to_string()))?;
    match load_sources(content.files.clone()) {
        Ok(set) => Ok(set),
        Err(errors) => {
            let error = ReloadError::Invalid(errors);
            let api = Api::namespaced(source.client.clone(), &source.target.namespace);
            for draft in report::rejected(&error, None) {
                let event =
                    events::build(&source.target, &content.origin, &source.instance, &draft);
                events::publish(&api, &event, &source.target).await;
            }
            Err(error)
        }
    }
}
