//! The request log: one entry per HTTP request, queryable by tests and benches.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The Kubernetes verb of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
    /// `/api`, `/apis`, `/version`, `/openapi/...`.
    Discovery,
}

impl Verb {
    /// Whether the verb changes state.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Verb::Create | Verb::Update | Verb::Patch | Verb::Delete | Verb::DeleteCollection
        )
    }
}

/// One served request.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub verb: Verb,
    pub method: String,
    pub path: String,
    pub query: String,
    /// Kind name (`PipelineRun`), empty for discovery.
    pub kind: String,
    pub group: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// `status` for `/status` requests.
    pub subresource: Option<String>,
    pub status: u16,
    /// Time to the response head (for watches: until the stream opened).
    pub duration: Duration,
    pub at: Instant,
}

/// Shared, append-only log.
#[derive(Default)]
pub struct RequestLog {
    entries: Mutex<Vec<LogEntry>>,
}

impl RequestLog {
    pub fn push(&self, e: LogEntry) {
        if let Ok(mut g) = self.entries.lock() {
            g.push(e);
        }
    }

    /// A copy of every entry so far.
    pub fn entries(&self) -> Vec<LogEntry> {
        self.entries.lock().map(|g| g.clone()).unwrap_or_default()
    }

    pub fn clear(&self) {
        if let Ok(mut g) = self.entries.lock() {
            g.clear();
        }
    }

    /// Number of entries matching a predicate.
    pub fn count(&self, pred: impl Fn(&LogEntry) -> bool) -> usize {
        self.entries
            .lock()
            .map(|g| g.iter().filter(|e| pred(e)).count())
            .unwrap_or(0)
    }

    /// Successful requests of a verb on a kind, e.g. `count_ok(Verb::Create, "PipelineRun")`.
    pub fn count_ok(&self, verb: Verb, kind: &str) -> usize {
        self.count(|e| e.verb == verb && e.kind == kind && e.status < 300)
    }

    /// Every request of a verb on a kind, whatever its outcome.
    pub fn count_verb(&self, verb: Verb, kind: &str) -> usize {
        self.count(|e| e.verb == verb && e.kind == kind)
    }

    /// All write requests (any kind, any outcome).
    pub fn writes(&self) -> usize {
        self.count(|e| e.verb.is_write())
    }
}
