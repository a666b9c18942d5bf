//! What a capture is: the kinds it may hold, one execution object with
//! what belongs to it ([`Capture`]), and why a capture cannot be read.

use serde_json::Value;

use super::capture_info::{CaptureInfo, HeaderError, CAPTURE_KIND};
use crate::input::InputError;

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
    CAPTURE_KIND,
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
    pub info: Option<CaptureInfo>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: larger than the {limit}-byte (8 MiB) capture limit")]
    TooLarge { file: String, limit: u64 },
    /// Not a regular file, or a directory over its budgets.
    #[error("{0}")]
    Input(InputError),
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
    /// `detail`: the document, object, field and value.
    #[error("{file}: {detail} is not an RFC 3339 timestamp (like 2026-01-02T03:04:05Z)")]
    BadTimestamp { file: String, detail: String },
    #[error("{file}: empty capture (no documents)")]
    Empty { file: String },
    #[error("{file}: no PipelineRun or Job in the capture (found: {found})")]
    NoPrimary { file: String, found: String },
    #[error("{dir}: no *.yaml, *.yml or *.json capture files in the directory")]
    EmptyDirectory { dir: String },
    #[error("{file}: {source}")]
    BadHeader {
        file: String,
        #[source]
        source: HeaderError,
    },
    #[error("{file}: more than one Capture header")]
    TwoHeaders { file: String },
}
