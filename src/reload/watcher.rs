//! Watching the rules directory itself, non-recursively.
//!
//! inotify resolves a path when the watch is added, so a watch on a key file
//! or on `..data` follows an inode the kubelet deletes at its next swap. A
//! watch on the directory sees every swap as entries created, renamed and
//! removed in it, which is all the reloader needs: any such signal means
//! "maybe changed" and the content fingerprint decides. The directory inode
//! itself can go away too (removed and recreated); that is reported as
//! [`Signal::Lost`] and the reloader re-establishes the watch.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use super::error::ReloadError;

/// What the watcher tells the reloader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Something in the directory may have changed.
    Changed,
    /// The watched directory itself was removed or moved away.
    Lost,
    /// The backend reported an error (e.g. a queue overflow): treat as changed.
    Error(String),
}

/// Device and inode of a directory: tells a recreated directory from the one watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirId {
    dev: u64,
    ino: u64,
}

impl DirId {
    /// The identity of `dir` now, if it is a directory.
    pub fn of(dir: &Path) -> Option<DirId> {
        let meta = std::fs::metadata(dir).ok()?;
        meta.is_dir().then(|| DirId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

/// A live watch on one directory; dropping it ends the watch.
pub struct DirWatcher {
    _watcher: RecommendedWatcher,
    id: DirId,
}

impl std::fmt::Debug for DirWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWatcher")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl DirWatcher {
    /// Watch `dir` (non-recursively) and send its signals to `tx`.
    pub fn new(dir: &Path, tx: UnboundedSender<Signal>) -> Result<DirWatcher, ReloadError> {
        let watch_err = |source| ReloadError::Watch {
            path: dir.to_path_buf(),
            source,
        };
        let own: PathBuf = dir.to_path_buf();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<Event>| {
            let signal = match res {
                Ok(event) => classify(&event, &own),
                Err(e) => Some(Signal::Error(e.to_string())),
            };
            if let Some(signal) = signal {
                // The reloader is gone when the receiver is; nothing to tell then.
                let _ = tx.send(signal);
            }
        })
        .map_err(watch_err)?;
        let id = DirId::of(dir).ok_or_else(|| {
            watch_err(notify::Error::path_not_found().add_path(dir.to_path_buf()))
        })?;
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(watch_err)?;
        // Checked again after the watch is in place: if the directory was
        // swapped in between, the watch may sit on the old inode.
        if DirId::of(dir) != Some(id) {
            return Err(watch_err(notify::Error::generic(
                "directory replaced while adding the watch",
            )));
        }
        Ok(DirWatcher {
            _watcher: watcher,
            id,
        })
    }

    /// True while `dir` is still the directory this watch was added on.
    pub fn still_watches(&self, dir: &Path) -> bool {
        DirId::of(dir) == Some(self.id)
    }
}

/// Map one notify event to a signal; `None` for events that change nothing.
pub fn classify(event: &Event, dir: &Path) -> Option<Signal> {
    let on_dir_itself = event.paths.iter().any(|p| p == dir);
    match event.kind {
        // Closing a file opened for writing ends a write; reads are noise
        // (including the reloader's own reads of the rules).
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Signal::Changed),
        EventKind::Access(_) => None,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_)) if on_dir_itself => {
            Some(Signal::Lost)
        }
        _ => Some(Signal::Changed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, RemoveKind, RenameMode};

    fn ev(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn reads_are_ignored_and_writes_are_not() {
        let d = Path::new("/rules");
        let open = ev(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            "/rules/a.yaml",
        );
        let read = ev(
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            "/rules/a.yaml",
        );
        let wrote = ev(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            "/rules/a.yaml",
        );
        assert_eq!(classify(&open, d), None);
        assert_eq!(classify(&read, d), None);
        assert_eq!(classify(&wrote, d), Some(Signal::Changed));
    }

    #[test]
    fn data_swap_and_creates_are_changes() {
        let d = Path::new("/rules");
        let swap = ev(
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            "/rules/..data",
        );
        let create = ev(EventKind::Create(CreateKind::Folder), "/rules/..2026_01_01");
        let rm = ev(EventKind::Remove(RemoveKind::Folder), "/rules/..2025_12_31");
        for e in [swap, create, rm] {
            assert_eq!(classify(&e, d), Some(Signal::Changed));
        }
    }

    #[test]
    fn removing_or_moving_the_directory_loses_the_watch() {
        let d = Path::new("/rules");
        let rm = ev(EventKind::Remove(RemoveKind::Other), "/rules");
        let mv = ev(
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            "/rules",
        );
        assert_eq!(classify(&rm, d), Some(Signal::Lost));
        assert_eq!(classify(&mv, d), Some(Signal::Lost));
    }
}
