//! Reading captures: files, directories or stdin holding `kubectl get -o
//! yaml|json` output, split into one [`Capture`] per PipelineRun or Job.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::input::{self, EntryKind, InputError};

use super::capture_model::{Capture, CaptureError, ACCEPTED_KINDS, MAX_CAPTURE_BYTES};
use super::json::{kind, name, str_at};

/// Capture files a directory may hold.
pub const MAX_DIR_FILES: usize = 100_000;
/// Bytes the capture files of one directory may hold together.
pub const MAX_DIR_BYTES: u64 = 1024 * 1024 * 1024;

/// Reads captures from a file, every `*.yaml`/`*.yml`/`*.json` of a
/// directory (sorted by name, not recursive, skipping hidden files and the
/// corpus answer file `expected.yaml`), or `-` for stdin.
pub fn read_captures(path: &Path) -> Result<Vec<Capture>, CaptureError> {
    let mut out = Vec::new();
    for_each_capture_file(path, |file, text| {
        out.extend(parse_captures(file, &text)?);
        Ok(())
    })?;
    Ok(out)
}

/// The capture files `read_captures` would read for `path`, in order: the
/// path itself for a file or `-`, else the directory's capture files (at
/// most [`MAX_DIR_FILES`], regular files only). Lets a caller read and
/// decide one file at a time (bounded memory).
pub fn capture_files(path: &Path) -> Result<Vec<PathBuf>, CaptureError> {
    let is_dir = path != Path::new("-") && std::fs::metadata(path).is_ok_and(|m| m.is_dir());
    if !is_dir {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = input::list_dir(path, MAX_DIR_FILES).map_err(CaptureError::Input)?;
    let files: Vec<PathBuf> = entries
        .into_iter()
        .filter(|e| {
            let ext_ok = [".yaml", ".yml", ".json"]
                .iter()
                .any(|x| e.name.ends_with(x));
            let answers = e.name == "expected.yaml" || e.name == "expected.yml";
            ext_ok && !answers && e.kind == EntryKind::File
        })
        .map(|e| e.path)
        .collect();
    if files.is_empty() {
        return Err(CaptureError::EmptyDirectory {
            dir: path.display().to_string(),
        });
    }
    Ok(files)
}

/// Reads the captures of one file (`-` for stdin), through [`crate::input`].
pub fn read_capture_file(path: &Path) -> Result<Vec<Capture>, CaptureError> {
    let text = read_text(path, MAX_CAPTURE_BYTES)?;
    parse_captures(&path.display().to_string(), &text)
}

/// The capture files at `path` (a file, a directory or `-`), read one at a
/// time and handed to `each` as (name, text), the directory's files under
/// one byte budget ([`MAX_DIR_BYTES`]).
pub fn for_each_capture_file(
    path: &Path,
    mut each: impl FnMut(&str, String) -> Result<(), CaptureError>,
) -> Result<(), CaptureError> {
    let files = capture_files(path)?;
    let mut budget = input::ByteBudget::new(path, MAX_DIR_BYTES);
    for f in files {
        let limit = budget.next_limit(MAX_CAPTURE_BYTES);
        let text = match read_text(&f, limit) {
            Err(CaptureError::TooLarge { .. }) if budget.is_spent_by(MAX_CAPTURE_BYTES) => {
                return Err(CaptureError::Input(budget.spent()))
            }
            other => other?,
        };
        budget
            .charge(text.len() as u64)
            .map_err(CaptureError::Input)?;
        each(&f.display().to_string(), text)?;
    }
    Ok(())
}

/// The text of a capture file (or stdin), read under `limit`.
fn read_text(path: &Path, limit: u64) -> Result<String, CaptureError> {
    let file = path.display().to_string();
    let bytes = input::read_path(path, limit).map_err(|e| match e {
        InputError::TooLarge { .. } => CaptureError::TooLarge {
            file: file.clone(),
            limit: MAX_CAPTURE_BYTES,
        },
        InputError::Io { source, .. } => CaptureError::Io {
            file: file.clone(),
            source,
        },
        other => CaptureError::Input(other),
    })?;
    input::to_text(path, bytes).map_err(|e| match e {
        InputError::NotUtf8 { offset, .. } => CaptureError::Binary {
            file,
            detail: format!("invalid UTF-8 at byte {offset}"),
        },
        other => CaptureError::Input(other),
    })
}

/// Parses capture text (YAML stream or JSON) and groups it into captures.
pub fn parse_captures(file_name: &str, text: &str) -> Result<Vec<Capture>, CaptureError> {
    let docs = parse_documents(file_name, text)?;
    super::grouping::group(file_name, docs)
}

/// Parses capture text into Kubernetes objects: `List`s are flattened,
/// empty documents dropped, and every object must have `apiVersion` and `kind`.
pub fn parse_documents(file_name: &str, text: &str) -> Result<Vec<Value>, CaptureError> {
    let text = input::strip_bom(text);
    if let Some(pos) = text.find('\0') {
        return Err(CaptureError::Binary {
            file: file_name.into(),
            detail: format!("NUL byte at offset {pos}"),
        });
    }
    let raw = if text.trim_start().starts_with(['{', '[']) {
        parse_json(file_name, text)?
    } else {
        parse_yaml(file_name, text)?
    };
    let mut out = Vec::new();
    let mut any = false;
    for (i, doc) in raw.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        any = true;
        let first = out.len();
        flatten(file_name, i + 1, doc, None, &mut out)?;
        check_timestamps(file_name, i + 1, &out[first..])?;
    }
    if !any {
        return Err(CaptureError::Empty {
            file: file_name.into(),
        });
    }
    Ok(out)
}

/// Through [`input::yaml`]: aliases priced by the nodes they expand to,
/// duplicate keys refused.
fn parse_yaml(file: &str, text: &str) -> Result<Vec<Value>, CaptureError> {
    input::yaml::parse_documents(text).map_err(|e| CaptureError::Yaml {
        file: file.into(),
        line: e.line,
        column: e.column,
        message: e.message,
    })
}

/// Through [`input::json`]: a key written twice in one object refused, as
/// in YAML.
fn parse_json(file: &str, text: &str) -> Result<Vec<Value>, CaptureError> {
    let values = input::json::parse_stream(text).map_err(|e| CaptureError::Json {
        file: file.into(),
        line: e.line,
        column: e.column,
        message: e.message,
    })?;
    let mut out = Vec::new();
    for v in values {
        match v {
            // A bare JSON array is read as a list of objects.
            Value::Array(items) => out.extend(items),
            v => out.push(v),
        }
    }
    Ok(out)
}

/// Adds `doc` (or the items of a list) to `out`. `implied` is the apiVersion
/// and kind implied by a typed list (`PodList` → `Pod`) whose items omit them.
fn flatten(
    file: &str,
    document: usize,
    mut doc: Value,
    implied: Option<(&str, &str)>,
    out: &mut Vec<Value>,
) -> Result<(), CaptureError> {
    let not_k8s = |detail: &str| CaptureError::NotKubernetes {
        file: file.into(),
        document,
        detail: detail.into(),
    };
    let Some(obj) = doc.as_object_mut() else {
        return Err(not_k8s("not a mapping"));
    };
    if let Some((api, k)) = implied {
        obj.entry("apiVersion")
            .or_insert_with(|| Value::String(api.into()));
        obj.entry("kind").or_insert_with(|| Value::String(k.into()));
    }
    let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let k = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if api.is_empty() || k.is_empty() {
        return Err(not_k8s("no apiVersion/kind"));
    }
    if k == "List" || (k.ends_with("List") && k.len() > 4 && obj.contains_key("items")) {
        let item_kind = k.strip_suffix("List").unwrap_or("").to_owned();
        let api = api.to_owned();
        let items = match obj.remove("items") {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(not_k8s("list `items` is not an array")),
        };
        let implied = (!item_kind.is_empty()).then_some((api.as_str(), item_kind.as_str()));
        for it in items {
            flatten(file, document, it, implied, out)?;
        }
        return Ok(());
    }
    if !ACCEPTED_KINDS.contains(&k) {
        let k = k.to_owned();
        let name = str_at(&doc, &["metadata", "name"]).to_owned();
        return Err(CaptureError::UnknownKind {
            file: file.into(),
            document,
            kind: k,
            name: if name.is_empty() {
                "unnamed".into()
            } else {
                name
            },
            accepted: ACCEPTED_KINDS.join(", "),
        });
    }
    out.push(doc);
    Ok(())
}
fn check_timestamps(file: &str, document: usize, objects: &[Value]) -> Result<(), CaptureError> {
    for o in objects {
        if let Some((field, value)) = super::timestamps::bad_timestamp(o) {
            return Err(CaptureError::BadTimestamp {
                file: file.into(),
                detail: format!(
                    "document {document} ({} {}): {field}: {value:?}",
                    kind(o),
                    name(o)
                ),
            });
        }
    }
    Ok(())
}
