//! The audit trail's destinations (reference §11): a bounded, non-blocking,
//! batching [`BufferedAuditSink`] in front of a JSON-lines file
//! ([`FileWriter`]) or an HTTP endpoint ([`HttpWriter`]).
//!
//! `record()` runs on the reconcile path right after a status write, so it
//! only enqueues: a full buffer drops the record and counts it, a key seen
//! recently is suppressed, and a writer task does the I/O with retries.
//! Every record ends up counted exactly once as written, duplicate or
//! dropped (by reason).

mod args;
mod buffer;
mod counters;
mod file_sink;
mod http_sink;
mod retry;
mod sink;

use std::future::Future;
use std::sync::Arc;

pub use args::AuditArgs;
pub use counters::{AuditCounters, DropReason};
pub use file_sink::FileWriter;
pub use http_sink::HttpWriter;
pub use retry::RetryPolicy;
pub use sink::{render, AuditOptions, BufferedAuditSink};

/// Errors of the audit sinks (setup and shutdown; record-time failures are
/// counted, not returned).
#[derive(Debug, thiserror::Error)]
pub enum AuditSinkError {
    #[error("opening audit file {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid audit endpoint {0:?}: {1}")]
    Endpoint(String, String),
    #[error("reading {path}: {source}")]
    ReadToken {
        path: String,
        source: std::io::Error,
    },
    #[error("--audit-file and --audit-url are exclusive; choose one destination")]
    TwoDestinations,
    #[error("audit shutdown timed out; {0} records were not written")]
    ShutdownTimeout(usize),
    #[error("registering audit metrics: {0}")]
    Register(#[from] prometheus::Error),
}

/// Why one write attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// Worth another attempt (I/O error, timeout, 408/429/5xx).
    Retryable(String),
    /// Will fail the same way again (a 4xx refusal): dropped at once.
    Permanent(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Retryable(e) | WriteError::Permanent(e) => f.write_str(e),
        }
    }
}

/// A destination that takes a batch of JSON lines in one write.
pub trait BatchWriter: Send + 'static {
    /// Write every line or fail; a failed batch may be sent again whole.
    fn write(&mut self, lines: &[Arc<str>]) -> impl Future<Output = Result<(), WriteError>> + Send;
    /// Where the records go, for logs.
    fn target(&self) -> String;
}
