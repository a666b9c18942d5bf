//! Where audit records go. The controller hands each record (with its
//! idempotency key `<wfe uid>/<event type>`) to an [`AuditSink`] after the
//! status write that made the transition succeeded. Sinks must not block;
//! the telemetry layer provides buffered ones.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::api::WorkflowExecution;
use crate::engine::AuditRecord;

/// An audit record could not be enqueued (it never blocks a transition).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit buffer full: record {0} dropped")]
    BufferFull(String),
    #[error("audit sink closed")]
    Closed,
}

/// Receives audit records. Implementations deduplicate by idempotency key.
pub trait AuditSink: Send + Sync {
    fn record(&self, wfe: &WorkflowExecution, record: &AuditRecord) -> Result<(), AuditError>;
}

/// Drops every record.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopAuditSink;

impl AuditSink for NoopAuditSink {
    fn record(&self, _: &WorkflowExecution, _: &AuditRecord) -> Result<(), AuditError> {
        Ok(())
    }
}

/// Keeps records in memory, once per idempotency key, and counts repeats
/// (what the tests assert on).
#[derive(Debug, Default)]
pub struct InMemoryAuditSink {
    inner: Mutex<InMemory>,
}

#[derive(Debug, Default)]
struct InMemory {
    keys: HashSet<String>,
    records: Vec<AuditRecord>,
    duplicates: u64,
}

impl InMemoryAuditSink {
    /// Records kept, in arrival order.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.lock().records.clone()
    }

    /// How many records arrived with a key already seen.
    pub fn duplicates(&self) -> u64 {
        self.lock().duplicates
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InMemory> {
        // A panic while holding this lock cannot leave the data inconsistent
        // (each update is a single push/insert), so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AuditSink for InMemoryAuditSink {
    fn record(&self, _: &WorkflowExecution, record: &AuditRecord) -> Result<(), AuditError> {
        let mut g = self.lock();
        if g.keys.insert(record.idempotency_key.clone()) {
            g.records.push(record.clone());
        } else {
            g.duplicates += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::testing::wfe;

    #[test]
    fn in_memory_sink_keeps_one_record_per_key() {
        let sink = InMemoryAuditSink::default();
        let w = wfe("w", "ns", "ns/Pod/p");
        let rec = AuditRecord {
            event_type: "workflowexecution.workflow.completed".into(),
            idempotency_key: "uid-1/workflowexecution.workflow.completed".into(),
            payload: serde_json::json!({}),
        };
        sink.record(&w, &rec).unwrap();
        sink.record(&w, &rec).unwrap();
        assert_eq!(sink.records().len(), 1);
        assert_eq!(sink.duplicates(), 1);
    }
}
