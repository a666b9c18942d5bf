//! Where audit records go. The controller hands each record (with its
//! idempotency key `<wfe uid>/<event type>`) to an [`AuditSink`] after the
//! status write that made the transition succeeded. Sinks must not block;
//! the telemetry layer provides buffered ones.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::{
    find_condition, set_condition, WorkflowExecution, WorkflowExecutionStatus, COND_AUDIT_RECORDED,
};
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

/// The `AuditRecorded` condition owed to a WFE by an earlier reconcile.
///
/// Records are offered to the sink only after the status write of their
/// transition succeeded (so a retried write can never duplicate them), which
/// means a refusal is known only after that write. Rather than a second
/// write in the same reconcile, the outcome is remembered here and carried by
/// the next status write of that WFE; the controller requeues it promptly so
/// that next write happens even for a WFE that is otherwise settled. Kept in
/// memory: a restart forgets a pending condition (the refusal is logged).
#[derive(Debug, Default)]
pub(crate) struct AuditConditions {
    pending: Mutex<HashMap<String, PendingCondition>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingCondition {
    status: &'static str,
    reason: &'static str,
    message: String,
}

impl AuditConditions {
    /// Remember how offering `record` to the sink went. A success is worth a
    /// write only when it replaces an `AuditRecorded=False`.
    pub(crate) fn offered(
        &self,
        wfe: &WorkflowExecution,
        record: &AuditRecord,
        result: &Result<(), AuditError>,
    ) {
        let Some(uid) = wfe.uid() else { return };
        let shown_false = wfe
            .status
            .as_ref()
            .and_then(|s| find_condition(&s.conditions, COND_AUDIT_RECORDED))
            .is_some_and(|c| c.status == "False");
        let cond = match result {
            // Already shown: a further refusal is not worth another write.
            Err(_) if shown_false => return,
            Err(e) => PendingCondition {
                status: "False",
                reason: "AuditFailed",
                message: format!("Failed to record audit event {}: {e}", record.event_type),
            },
            Ok(()) => {
                let pending_false = self.lock().get(&uid).is_some_and(|c| c.status == "False");
                if !shown_false || pending_false {
                    // Nothing to correct, or an earlier refusal in this same
                    // batch must stay visible.
                    return;
                }
                PendingCondition {
                    status: "True",
                    reason: "AuditSucceeded",
                    message: format!("Audit event {} recorded", record.event_type),
                }
            }
        };
        self.lock().insert(uid, cond);
    }

    /// Whether a condition is owed to this WFE.
    pub(crate) fn is_pending(&self, wfe: &WorkflowExecution) -> bool {
        wfe.uid().is_some_and(|uid| self.lock().contains_key(&uid))
    }

    /// Put the owed condition into `desired`; returns whether it changed it.
    pub(crate) fn merge_into(
        &self,
        wfe: &WorkflowExecution,
        desired: &mut WorkflowExecutionStatus,
    ) -> bool {
        let Some(uid) = wfe.uid() else { return false };
        let Some(cond) = self.lock().get(&uid).cloned() else {
            return false;
        };
        let before = desired.conditions.clone();
        set_condition(
            &mut desired.conditions,
            COND_AUDIT_RECORDED,
            cond.status,
            cond.reason,
            &cond.message,
            wfe.metadata.generation,
            Time(Timestamp::now()),
        );
        desired.conditions != before
    }

    /// The status write carrying the owed condition succeeded (or the WFE is
    /// gone): forget it.
    pub(crate) fn written(&self, wfe: &WorkflowExecution) {
        if let Some(uid) = wfe.uid() {
            self.lock().remove(&uid);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingCondition>> {
        // Each update is a single insert/remove: a poisoned map is consistent.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
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
            payload: serde_json::json!({}).into(),
        };
        sink.record(&w, &rec).unwrap();
        sink.record(&w, &rec).unwrap();
        assert_eq!(sink.records().len(), 1);
        assert_eq!(sink.duplicates(), 1);
    }
}
