//! The source of a running reloader: a watched directory or the watched
//! rules ConfigMap, behind one interface; and the set to start with.

use tokio::sync::mpsc::UnboundedSender;

use super::configmap::{self, ConfigMapWatch};
use super::dir_source::DirSource;
use super::error::ReloadError;
use super::fingerprint::Fingerprint;
use super::report::EventDraft;
use super::source::{NoSnapshot, Origin, RulesSource, Snapshot};
use super::status::ConfigMapStatus;
use super::watcher::Signal;
use crate::rules::{load_dir, RuleSet};

/// The set to start with, loaded (without the rule-test gate, as before any
/// reload) from `source`. A ConfigMap whose set does not load also gets a
/// `RulesRejected` Event, so its editor sees why the engine does not start.
pub async fn load_initial(source: &RulesSource) -> Result<RuleSet, ReloadError> {
    match source {
        RulesSource::Directory(dir) => load_dir(dir).map_err(ReloadError::Invalid),
        RulesSource::ConfigMap(cm) => configmap::initial(cm).await,
    }
}

/// The source of a running reloader.
#[derive(Debug)]
pub(crate) enum Watched {
    Dir(DirSource),
    ConfigMap(ConfigMapWatch),
}

impl Watched {
    /// `what` names the set in log lines (`rules`, `shadow rules`).
    pub fn new(source: RulesSource, what: &'static str) -> Watched {
        match source {
            RulesSource::Directory(dir) => Watched::Dir(DirSource::new(dir)),
            RulesSource::ConfigMap(cm) => Watched::ConfigMap(ConfigMapWatch::new(&cm, what)),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Watched::Dir(d) => format!("directory {}", d.dir().display()),
            Watched::ConfigMap(c) => format!("configmap {}", c.target()),
        }
    }

    /// Start or re-establish the watch; true when a new one started (its
    /// first look is up to the caller).
    pub fn ensure_watch(&mut self, tx: &UnboundedSender<Signal>) -> bool {
        match self {
            Watched::Dir(d) => d.ensure_watch(tx),
            Watched::ConfigMap(c) => {
                // The API watch signals its first list itself.
                c.ensure_started(tx);
                false
            }
        }
    }

    /// A directory watch that went away is looked for again on a timer;
    /// the API watch retries by itself.
    pub fn needs_rewatch(&self) -> bool {
        matches!(self, Watched::Dir(d) if !d.watching())
    }

    pub fn watching(&self) -> bool {
        match self {
            Watched::Dir(d) => d.watching(),
            Watched::ConfigMap(c) => c.watching(),
        }
    }

    pub fn lost(&mut self) {
        if let Watched::Dir(d) = self {
            d.lost();
        }
    }

    pub fn snapshot(&self) -> Result<Snapshot, NoSnapshot> {
        match self {
            Watched::Dir(d) => d.snapshot(),
            Watched::ConfigMap(c) => c.snapshot(),
        }
    }

    /// Whether the content is still the one fingerprinted before validation.
    pub fn still(&self, fingerprint: Fingerprint) -> bool {
        match self {
            Watched::Dir(d) => d.still(fingerprint),
            Watched::ConfigMap(c) => c.still(fingerprint),
        }
    }

    /// Tell the editor (a ConfigMap's Events; nothing for a directory).
    pub fn report(&self, origin: Option<&Origin>, drafts: impl FnOnce() -> Vec<EventDraft>) {
        if let (Watched::ConfigMap(c), Some(origin)) = (self, origin) {
            c.report(origin, drafts());
        }
    }

    pub fn directory(&self) -> Option<String> {
        match self {
            Watched::Dir(d) => Some(d.dir().display().to_string()),
            Watched::ConfigMap(_) => None,
        }
    }

    pub fn config_map(&self) -> Option<ConfigMapStatus> {
        match self {
            Watched::Dir(_) => None,
            Watched::ConfigMap(c) => Some(ConfigMapStatus {
                namespace: c.target().namespace.clone(),
                name: c.target().name.clone(),
                resource_version: c.resource_version(),
            }),
        }
    }
}
