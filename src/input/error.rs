//! Why an input could not be read.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a regular file ({what}); only regular files are read", path.display())]
    NotRegular { path: PathBuf, what: &'static str },
    #[error("{}: larger than the {limit}-byte limit", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}: more than {limit} files in the directory", path.display())]
    TooManyFiles { path: PathBuf, limit: usize },
    #[error("{}: the files of the directory hold more than {limit} bytes together", path.display())]
    DirTooLarge { path: PathBuf, limit: u64 },
    #[error("{}: not valid UTF-8 (at byte {offset})", path.display())]
    NotUtf8 { path: PathBuf, offset: usize },
}

impl InputError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> InputError {
        InputError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            InputError::Io { path, .. }
            | InputError::NotRegular { path, .. }
            | InputError::TooLarge { path, .. }
            | InputError::TooManyFiles { path, .. }
            | InputError::DirTooLarge { path, .. }
            | InputError::NotUtf8 { path, .. } => path,
        }
    }
}
