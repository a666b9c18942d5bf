//! One file (or stdin), read whole up to a limit.

use std::fs::{Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::InputError;

/// Read a regular file of at most `limit` bytes. Symlinks are followed
/// (ConfigMap keys are links); whatever they lead to must be a regular file.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    // Non-blocking: opening a FIFO with no writer returns at once instead of
    // waiting for one; it is refused just below. No controlling terminal
    // is taken if the path is a tty.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| InputError::io(path, e))?;
    let meta = file.metadata().map_err(|e| InputError::io(path, e))?;
    if let Some(what) = not_regular(&meta) {
        return Err(InputError::NotRegular {
            path: path.to_path_buf(),
            what,
        });
    }
    read_reader(path, file, limit)
}

/// Read a file, or stdin when `path` is `-`.
pub fn read_path(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    if path == Path::new("-") {
        read_reader(path, std::io::stdin().lock(), limit)
    } else {
        read_file(path, limit)
    }
}

/// The UTF-8 text of a file (or stdin for `-`) of at most `limit` bytes.
pub fn read_text(path: &Path, limit: u64) -> Result<String, InputError> {
    super::to_text(path, read_path(path, limit)?)
}

/// Read at most `limit` bytes from `r`; one byte more is an error. The limit
/// holds while reading, whatever the source claims its size is.
pub fn read_reader(path: &Path, r: impl Read, limit: u64) -> Result<Vec<u8>, InputError> {
    let mut buf = Vec::new();
    r.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| InputError::io(path, e))?;
    if buf.len() as u64 > limit {
        return Err(InputError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(buf)
}

/// What a non-regular file is, for the message.
pub(crate) fn not_regular(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn regular_files_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.yaml");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_file(&p, 5).unwrap(), b"12345");
        let e = read_file(&p, 4).unwrap_err();
        assert!(
            e.to_string().contains("larger than the 4-byte limit"),
            "{e}"
        );
        let e = read_file(&dir.path().join("missing"), 4).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    #[test]
    fn devices_and_directories_are_refused() {
        let e = read_file(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("rules.yaml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read_file(&link, 1 << 20),
            Err(InputError::NotRegular { .. })
        ));
        assert!(read_file(dir.path(), 10)
            .unwrap_err()
            .to_string()
            .contains("a directory"));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("capture.yaml");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let t = Instant::now();
        let e = read_file(&p, 10).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_reader_is_cut_at_the_limit() {
        let zeros = std::io::repeat(0);
        let e = read_reader(Path::new("-"), zeros, 1024).unwrap_err();
        assert!(matches!(e, InputError::TooLarge { limit: 1024, .. }));
    }
}
