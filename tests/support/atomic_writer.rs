//! An exact emulation of the kubelet's `AtomicWriter` for ConfigMap volumes:
//! payload written into a fresh `..<timestamp>` directory, a `..data_tmp`
//! symlink to it renamed over `..data`, user-visible keys as symlinks
//! `key -> ..data/key`, keys that left the payload unlinked, and the previous
//! timestamped directory removed last.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// File name → content.
pub type Payload = BTreeMap<String, Vec<u8>>;

/// A ConfigMap volume directory written the way the kubelet writes it.
pub struct ConfigMapVolume {
    pub root: PathBuf,
    seq: u64,
}

impl ConfigMapVolume {
    /// Create `root` and write the first payload.
    pub fn create(root: &Path, payload: &Payload) -> io::Result<ConfigMapVolume> {
        std::fs::create_dir_all(root)?;
        let mut v = ConfigMapVolume {
            root: root.to_path_buf(),
            seq: 0,
        };
        v.write(payload)?;
        Ok(v)
    }

    /// Write `payload` with one atomic swap; returns the instant of the
    /// rename over `..data` (the moment the new content becomes visible).
    pub fn write(&mut self, payload: &Payload) -> io::Result<Instant> {
        let data = self.root.join("..data");
        let old_ts = std::fs::read_link(&data).ok();
        let old_keys = self.visible_keys()?;

        self.seq += 1;
        let ts_name = format!("..2026_01_01_00_00_00.{:09}", self.seq);
        let ts_dir = self.root.join(&ts_name);
        std::fs::create_dir(&ts_dir)?;
        for (name, content) in payload {
            std::fs::write(ts_dir.join(name), content)?;
        }

        let tmp = self.root.join("..data_tmp");
        symlink(&ts_name, &tmp)?;
        std::fs::rename(&tmp, &data)?;
        let swapped = Instant::now();

        for name in payload.keys() {
            let key = self.root.join(name);
            if std::fs::symlink_metadata(&key).is_err() {
                symlink(format!("..data/{name}"), &key)?;
            }
        }
        for name in old_keys.iter().filter(|k| !payload.contains_key(*k)) {
            std::fs::remove_file(self.root.join(name))?;
        }
        if let Some(old) = old_ts {
            std::fs::remove_dir_all(self.root.join(old))?;
        }
        Ok(swapped)
    }

    fn visible_keys(&self) -> io::Result<Vec<String>> {
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                keys.push(name);
            }
        }
        Ok(keys)
    }
}

/// The visible files of a rules directory (what a ConfigMap generated from it holds).
pub fn read_payload(dir: &Path) -> io::Result<Payload> {
    let mut payload = Payload::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_file() {
            payload.insert(name, std::fs::read(entry.path())?);
        }
    }
    Ok(payload)
}

/// `payload` with a comment appended to its first YAML file: same rules, new revision.
pub fn variant(payload: &Payload, n: usize) -> Payload {
    let mut p = payload.clone();
    let name = p
        .keys()
        .find(|k| k.ends_with(".yaml") || k.ends_with(".yml"))
        .cloned()
        .unwrap_or_else(|| "zz-variant.yaml".to_string());
    let content = p.entry(name).or_default();
    if !content.ends_with(b"\n") && !content.is_empty() {
        content.push(b'\n');
    }
    content.extend_from_slice(format!("# variant {n}\n").as_bytes());
    p
}
