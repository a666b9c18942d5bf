//! JSON lines appended to a file, synced to disk after every batch.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::fs::File;
use tokio::io::AsyncWriteExt;

use super::{AuditSinkError, BatchWriter, WriteError};

/// Appends one JSON object per line.
#[derive(Debug)]
pub struct FileWriter {
    path: PathBuf,
    file: File,
}

impl FileWriter {
    /// Open (or create) `path` for appending. Fails at startup rather than
    /// at the first record if the file cannot be written.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditSinkError> {
        let path = path.as_ref().to_path_buf();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| AuditSinkError::Open {
                path: path.display().to_string(),
                source,
            })?;
        Ok(FileWriter {
            path,
            file: File::from_std(file),
        })
    }
}

impl BatchWriter for FileWriter {
    async fn write(&mut self, lines: &[Arc<str>]) -> Result<(), WriteError> {
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in lines {
            buf.extend_from_slice(l.as_bytes());
            buf.push(b'\n');
        }
        let io = |e: std::io::Error| WriteError::Retryable(format!("{}: {e}", self.path.display()));
        // A failed write may leave a partial line; the retry appends the
        // whole batch again, so readers skip unparsable lines and dedupe by key.
        self.file.write_all(&buf).await.map_err(io)?;
        self.file.flush().await.map_err(io)?;
        self.file.sync_data().await.map_err(io)
    }

    fn target(&self) -> String {
        self.path.display().to_string()
    }
}
