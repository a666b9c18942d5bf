//! Listing a directory under a file budget, and the byte budget its files
//! are read under.

use std::path::{Path, PathBuf};

use super::file::not_regular;
use super::InputError;

/// What a directory entry is, symlinks followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A FIFO, device or socket: never read.
    Special(&'static str),
    /// A dangling link or an entry that vanished while listing.
    Missing,
}

/// One visible entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    pub kind: EntryKind,
}

/// The entries of `dir` sorted by name, without hidden ones (names starting
/// with `.`, such as the kubelet's `..data`) and without names that are not
/// UTF-8. More than `max_files` visible entries is an error: the listing
/// stops there, before anything is read.
pub fn list_dir(dir: &Path, max_files: usize) -> Result<Vec<Entry>, InputError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| InputError::io(dir, e))? {
        let entry = entry.map_err(|e| InputError::io(dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        if out.len() == max_files {
            return Err(InputError::TooManyFiles {
                path: dir.to_path_buf(),
                limit: max_files,
            });
        }
        let path = entry.path();
        // fs::metadata follows symlinks: ConfigMap keys are links into `..data/`.
        let kind = match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => EntryKind::Dir,
            Ok(m) => not_regular(&m).map_or(EntryKind::File, EntryKind::Special),
            Err(_) => EntryKind::Missing,
        };
        out.push(Entry { name, path, kind });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Bytes left for the files of one directory.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    dir: PathBuf,
    limit: u64,
    used: u64,
}

impl ByteBudget {
    pub fn new(dir: &Path, limit: u64) -> ByteBudget {
        ByteBudget {
            dir: dir.to_path_buf(),
            limit,
            used: 0,
        }
    }

    /// What the next file may hold at most: `per_file`, or less when the
    /// directory's budget is nearly spent.
    pub fn next_limit(&self, per_file: u64) -> u64 {
        per_file.min(self.limit - self.used)
    }

    /// Count `bytes` read; an error once the directory holds more than its limit.
    pub fn charge(&mut self, bytes: u64) -> Result<(), InputError> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.limit {
            return Err(self.spent());
        }
        Ok(())
    }

    /// The error for a directory past its budget.
    pub fn spent(&self) -> InputError {
        InputError::DirTooLarge {
            path: self.dir.clone(),
            limit: self.limit,
        }
    }

    /// Whether a file cut at `next_limit` was cut by the directory budget
    /// rather than by its own limit.
    pub fn is_spent_by(&self, per_file: u64) -> bool {
        self.next_limit(per_file) < per_file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_sorted_visible_entries_with_their_kind() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b.yaml"), "x").unwrap();
        std::fs::write(d.path().join("a.yaml"), "x").unwrap();
        std::fs::write(d.path().join(".hidden"), "x").unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("/dev/null", d.path().join("null.yaml")).unwrap();
        std::os::unix::fs::symlink("/nowhere", d.path().join("gone.yaml")).unwrap();
        let names: Vec<(String, EntryKind)> = list_dir(d.path(), 10)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.kind))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a.yaml".into(), EntryKind::File),
                ("b.yaml".into(), EntryKind::File),
                ("gone.yaml".into(), EntryKind::Missing),
                ("null.yaml".into(), EntryKind::Special("a character device")),
                ("sub".into(), EntryKind::Dir),
            ]
        );
        let e = list_dir(d.path(), 4).unwrap_err();
        assert!(e.to_string().contains("more than 4 files"), "{e}");
    }

    #[test]
    fn the_byte_budget_is_shared() {
        let mut b = ByteBudget::new(Path::new("d"), 10);
        assert_eq!(b.next_limit(8), 8);
        b.charge(8).unwrap();
        assert_eq!(b.next_limit(8), 2);
        assert!(b.is_spent_by(8));
        assert!(b.charge(3).is_err());
    }
}
