//! The directory source: a notify watch on the directory itself, re-added
//! when the directory goes away or is replaced, and snapshots that the
//! reloader re-hashes after validation (a directory can change mid-read).

use std::path::{Path, PathBuf};

use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};

use super::fingerprint::Fingerprint;
use super::source::{Candidate, NoSnapshot, Snapshot};
use super::watcher::{DirWatcher, Signal};

#[derive(Debug)]
pub(crate) struct DirSource {
    dir: PathBuf,
    watcher: Option<DirWatcher>,
    missing_reported: bool,
}

impl DirSource {
    pub fn new(dir: PathBuf) -> DirSource {
        DirSource {
            dir,
            watcher: None,
            missing_reported: false,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn watching(&self) -> bool {
        self.watcher.is_some()
    }

    /// The watched directory was removed or moved away.
    pub fn lost(&mut self) {
        info!(directory = %self.dir.display(), "rules directory removed or moved; keeping the active rules until it is back");
        self.watcher = None;
    }

    /// Make sure the watch sits on the directory that is there now.
    /// Returns true when a new watch was established.
    pub fn ensure_watch(&mut self, tx: &UnboundedSender<Signal>) -> bool {
        if let Some(w) = &self.watcher {
            if w.still_watches(&self.dir) {
                return false;
            }
            info!(directory = %self.dir.display(), "rules directory was replaced; watching the new one");
            self.watcher = None;
        }
        match DirWatcher::new(&self.dir, tx.clone()) {
            Ok(w) => {
                self.watcher = Some(w);
                self.missing_reported = false;
                debug!(directory = %self.dir.display(), "watching rules directory");
                true
            }
            Err(e) => {
                if !self.missing_reported {
                    self.missing_reported = true;
                    warn!(directory = %self.dir.display(), error = %e, "cannot watch the rules directory; keeping the active rules and retrying");
                }
                false
            }
        }
    }

    pub fn snapshot(&self) -> Result<Snapshot, NoSnapshot> {
        let fingerprint = Fingerprint::of_dir(&self.dir).map_err(|e| NoSnapshot {
            message: format!("rules directory {} unreadable: {e}", self.dir.display()),
            known: true,
        })?;
        Ok(Snapshot {
            fingerprint,
            candidate: Candidate::dir(&self.dir),
            origin: None,
        })
    }

    /// Whether the directory still holds `fingerprint`.
    pub fn still(&self, fingerprint: Fingerprint) -> bool {
        Fingerprint::of_dir(&self.dir).ok() == Some(fingerprint)
    }
}
