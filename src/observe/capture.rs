//! Reading captures: files, directories or stdin holding `kubectl get -o
//! yaml|json` output, split into one [`Capture`] per PipelineRun or Job.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::json::str_at;

/// Largest capture file read (8 MiB). A real capture is a few KB; anything
/// near this size is a mistake (a log, a dump) and parsing it would only cost
/// memory.
pub const MAX_CAPTURE_BYTES: u64 = 8 * 1024 * 1024;

/// Kinds that start a capture.
pub const PRIMARY_KINDS: &[&str] = &["PipelineRun", "Job"];
/// Kinds attached to a primary object.
pub const CHILD_KINDS: &[&str] = &["TaskRun", "CustomRun", "Run", "Pod"];
/// Every kind a capture may hold (`Event`s are read and ignored).
pub const ACCEPTED_KINDS: &[&str] = &[
    "PipelineRun",
    "Job",
    "TaskRun",
    "CustomRun",
    "Run",
    "Pod",
    "WorkflowExecution",
    "Event",
    "List",
    super::capture_info::CAPTURE_KIND,
];

/// One execution object with what belongs to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// The file it came from (`-` for stdin).
    pub file: String,
    /// The PipelineRun or Job.
    pub primary: Value,
    /// Its TaskRuns, CustomRuns, Pods (and child PipelineRuns), in file order.
    pub children: Vec<Value>,
    /// WorkflowExecution documents of the file.
    pub wfes: Vec<Value>,
    /// The header of a live capture (`wfe-engine capture`). Only such a
    /// capture may lack an execution object; `primary` is then `Null`.
    pub info: Option<super::capture_info::CaptureInfo>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: file is {size} bytes, over the {limit}-byte (8 MiB) capture limit")]
    TooLarge { file: String, size: u64, limit: u64 },
    #[error("{file}: binary file ({detail}); a capture is YAML or JSON text")]
    Binary { file: String, detail: String },
    #[error("{file}:{line}:{column}: malformed YAML: {message}")]
    Yaml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}:{line}:{column}: malformed JSON: {message}")]
    Json {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: document {document} is not a Kubernetes object ({detail})")]
    NotKubernetes {
        file: String,
        document: usize,
        detail: String,
    },
    #[error(
        "{file}: document {document}: unknown kind {kind:?} ({name}); accepted kinds: {accepted}"
    )]
    UnknownKind {
        file: String,
        document: usize,
        kind: String,
        name: String,
        accepted: String,
    },
    #[error("{file}: empty capture (no documents)")]
    Empty { file: String },
    #[error("{file}: no PipelineRun or Job in the capture (found: {found})")]
    NoPrimary { file: String, found: String },
    #[error("{dir}: no *.yaml, *.yml or *.json capture files in the directory")]
    EmptyDirectory { dir: String },
    #[error("{file}: {message}")]
    BadHeader { file: String, message: String },
}

/// Reads captures from a file, every `*.yaml`/`*.yml`/`*.json` of a
/// directory (sorted by name, not recursive, skipping hidden files and the
/// corpus answer file `expected.yaml`), or `-` for stdin.
pub fn read_captures(path: &Path) -> Result<Vec<Capture>, CaptureError> {
    let mut out = Vec::new();
    for f in capture_files(path)? {
        out.extend(read_capture_file(&f)?);
    }
    Ok(out)
}

/// The capture files `read_captures` would read for `path`, in order: the
/// path itself for a file or `-`, else the directory's capture files. Lets
/// a caller read and decide one file at a time (bounded memory).
pub fn capture_files(path: &Path) -> Result<Vec<std::path::PathBuf>, CaptureError> {
    if path == Path::new("-") {
        return Ok(vec![path.to_path_buf()]);
    }
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| CaptureError::Io {
        file: shown.clone(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| CaptureError::Io {
        file: shown.clone(),
        source,
    })?;
    let mut files = Vec::new();
    for e in entries {
        let e = e.map_err(|source| CaptureError::Io {
            file: shown.clone(),
            source,
        })?;
        let p = e.path();
        let file_name = e.file_name().to_string_lossy().into_owned();
        let ext_ok = [".yaml", ".yml", ".json"]
            .iter()
            .any(|x| file_name.ends_with(x));
        let skipped = file_name.starts_with('.')
            || file_name == "expected.yaml"
            || file_name == "expected.yml";
        if ext_ok && !skipped && p.is_file() {
            files.push(p);
        }
    }
    if files.is_empty() {
        return Err(CaptureError::EmptyDirectory { dir: shown });
    }
    files.sort();
    Ok(files)
}

/// Reads the captures of one file (`-` for stdin).
pub fn read_capture_file(path: &Path) -> Result<Vec<Capture>, CaptureError> {
    if path == Path::new("-") {
        let text = read_limited("-", std::io::stdin().lock(), None)?;
        return parse_captures("-", &text);
    }
    read_file(path)
}

fn read_file(path: &Path) -> Result<Vec<Capture>, CaptureError> {
    let shown = path.display().to_string();
    let io = |source| CaptureError::Io {
        file: shown.clone(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    let text = read_limited(&shown, f, Some(size))?;
    parse_captures(&shown, &text)
}

/// Reads at most the limit (+1 byte to detect excess) and checks it is text.
fn read_limited(file: &str, r: impl Read, known_size: Option<u64>) -> Result<String, CaptureError> {
    if let Some(size) = known_size.filter(|s| *s > MAX_CAPTURE_BYTES) {
        return Err(CaptureError::TooLarge {
            file: file.into(),
            size,
            limit: MAX_CAPTURE_BYTES,
        });
    }
    let mut buf = Vec::new();
    r.take(MAX_CAPTURE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|source| CaptureError::Io {
            file: file.into(),
            source,
        })?;
    if buf.len() as u64 > MAX_CAPTURE_BYTES {
        return Err(CaptureError::TooLarge {
            file: file.into(),
            size: buf.len() as u64,
            limit: MAX_CAPTURE_BYTES,
        });
    }
    String::from_utf8(buf).map_err(|e| CaptureError::Binary {
        file: file.into(),
        detail: format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
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
        flatten(file_name, i + 1, doc, None, &mut out)?;
    }
    if !any {
        return Err(CaptureError::Empty {
            file: file_name.into(),
        });
    }
    Ok(out)
}

fn parse_yaml(file: &str, text: &str) -> Result<Vec<Value>, CaptureError> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            CaptureError::Yaml {
                file: file.into(),
                line,
                column,
                message: strip_location(&e.to_string()),
            }
        })?;
        out.push(v);
    }
    Ok(out)
}

/// serde_yaml appends " at line L column C"; the error already leads with it.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn parse_json(file: &str, text: &str) -> Result<Vec<Value>, CaptureError> {
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        let v = v.map_err(|e| CaptureError::Json {
            file: file.into(),
            line: e.line(),
            column: e.column(),
            message: strip_location(&e.to_string()),
        })?;
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
