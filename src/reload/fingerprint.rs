//! A cheap content fingerprint of a rules directory (or of the files of a
//! rules ConfigMap): decides whether anything changed without compiling the
//! set, and detects a change that happened while a candidate was being
//! validated.

use std::fmt;
use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::rules::SourceFile;

/// SHA-256 over the names and contents of the visible files of a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Hash `dir`. Entries starting with `.` (the kubelet's `..data` and
    /// timestamped directories, editors' swap files) are skipped; symlinks are
    /// followed, so ConfigMap keys hash as the files they point at now.
    pub fn of_dir(dir: &Path) -> io::Result<Fingerprint> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                // Non-UTF-8 names cannot be rules files; the loader reports them.
                continue;
            };
            if !name.starts_with('.') {
                names.push(name);
            }
        }
        names.sort();
        let mut hasher = FileHasher::default();
        for name in names {
            let path = dir.join(&name);
            let content = match std::fs::metadata(&path) {
                // Read like the loader reads (bounded, regular files only): a
                // file over the limit is refused by the loader anyway, so its
                // size and modification time stand for its content.
                Ok(meta) if meta.is_file() => {
                    match crate::input::read_file(&path, crate::rules::MAX_FILE_BYTES as u64) {
                        Ok(content) => content,
                        Err(crate::input::InputError::TooLarge { .. }) => oversized(&meta),
                        // Dangling for a moment during a swap: the next look sees the outcome.
                        Err(crate::input::InputError::Io { source, .. })
                            if source.kind() == io::ErrorKind::NotFound =>
                        {
                            continue
                        }
                        Err(crate::input::InputError::Io { source, .. }) => return Err(source),
                        Err(e) => return Err(io::Error::other(e.to_string())),
                    }
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            hasher.add(&name, &content);
        }
        Ok(hasher.finish())
    }

    /// Hash files held in memory (a ConfigMap's keys), with the same rules
    /// as [`Fingerprint::of_dir`]: names starting with `.` are skipped and
    /// the order of `files` does not matter.
    pub fn of_files(files: &[SourceFile]) -> Fingerprint {
        let mut sorted: Vec<&SourceFile> =
            files.iter().filter(|f| !f.name.starts_with('.')).collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let mut hasher = FileHasher::default();
        for f in sorted {
            hasher.add(&f.name, &f.content);
        }
        hasher.finish()
    }
}

/// Length-prefixed names and contents, so no two file lists hash alike by
/// shifting bytes between a name and a content.
#[derive(Default)]
struct FileHasher(Sha256);

impl FileHasher {
    fn add(&mut self, name: &str, content: &[u8]) {
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((content.len() as u64).to_le_bytes());
        self.0.update(content);
    }

    fn finish(self) -> Fingerprint {
        Fingerprint(self.0.finalize().into())
    }
}

fn oversized(meta: &std::fs::Metadata) -> Vec<u8> {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("oversized {} {mtime}", meta.len()).into_bytes()
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0[..8]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_content_and_names_but_not_hidden_entries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "x: 1\n").unwrap();
        let first = Fingerprint::of_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join(".a.yaml.swp"), "junk").unwrap();
        std::fs::create_dir(dir.path().join("..2026_01_01_00_00_00.000000001")).unwrap();
        assert_eq!(first, Fingerprint::of_dir(dir.path()).unwrap());
        std::fs::write(dir.path().join("a.yaml"), "x: 2\n").unwrap();
        let second = Fingerprint::of_dir(dir.path()).unwrap();
        assert_ne!(first, second);
        std::fs::rename(dir.path().join("a.yaml"), dir.path().join("b.yaml")).unwrap();
        assert_ne!(second, Fingerprint::of_dir(dir.path()).unwrap());
    }

    #[test]
    fn follows_symlinks_and_skips_dangling_ones() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("..data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("a.yaml"), "x: 1\n").unwrap();
        std::os::unix::fs::symlink("..data/a.yaml", dir.path().join("a.yaml")).unwrap();
        std::os::unix::fs::symlink("..data/gone.yaml", dir.path().join("gone.yaml")).unwrap();
        let linked = Fingerprint::of_dir(dir.path()).unwrap();
        std::fs::write(data.join("a.yaml"), "x: 2\n").unwrap();
        assert_ne!(linked, Fingerprint::of_dir(dir.path()).unwrap());
    }

    #[test]
    fn files_hash_like_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), "y: 1\n").unwrap();
        std::fs::write(dir.path().join("a.yaml"), "x: 1\n").unwrap();
        let file = |n: &str, c: &str| SourceFile {
            name: n.into(),
            content: c.as_bytes().to_vec(),
        };
        let files = vec![
            file("b.yaml", "y: 1\n"),
            file(".hidden", "z"),
            file("a.yaml", "x: 1\n"),
        ];
        assert_eq!(
            Fingerprint::of_files(&files),
            Fingerprint::of_dir(dir.path()).unwrap()
        );
        let edited = vec![file("a.yaml", "x: 2\n"), file("b.yaml", "y: 1\n")];
        assert_ne!(
            Fingerprint::of_files(&edited),
            Fingerprint::of_files(&files)
        );
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Fingerprint::of_dir(&dir.path().join("nope")).is_err());
    }
}
