//! The buffered sink: `record()` enqueues and returns at once; one writer
//! task per sink takes batches, sends them through a [`BatchWriter`] with
//! retries, and counts every record written or lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

use super::buffer::{Buffer, Push};
use super::counters::{AuditCounters, DropReason};
use super::retry::RetryPolicy;
use super::{AuditSinkError, BatchWriter, WriteError};
use crate::api::WorkflowExecution;
use crate::controller::{AuditError, AuditSink};
use crate::engine::AuditRecord;

/// Buffering, batching and retry settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditOptions {
    /// Records queued or in flight at most; more are dropped and counted.
    pub capacity: usize,
    /// Records per write.
    pub batch_size: usize,
    /// A partial batch is written once its oldest record waited this long.
    pub flush_interval: Duration,
    /// How many recent idempotency keys are remembered for deduplication.
    pub dedupe_window: usize,
    pub retry: RetryPolicy,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            capacity: 10_000,
            batch_size: 100,
            flush_interval: Duration::from_secs(1),
            dedupe_window: 10_000,
            retry: RetryPolicy::default(),
        }
    }
}

struct Shared {
    buffer: Buffer,
    counters: AuditCounters,
    task: Mutex<Option<JoinHandle<()>>>,
    target: String,
}

/// A bounded, non-blocking, batching [`AuditSink`]. Cheap to clone; all
/// clones feed the same buffer.
#[derive(Clone)]
pub struct BufferedAuditSink {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BufferedAuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedAuditSink")
            .field("target", &self.shared.target)
            .field("buffered", &self.shared.buffer.occupied())
            .finish()
    }
}

impl BufferedAuditSink {
    /// Start the writer task (needs a Tokio runtime).
    pub fn spawn<W: BatchWriter>(writer: W, options: AuditOptions) -> Result<Self, AuditSinkError> {
        let counters = AuditCounters::new()?;
        let shared = Arc::new(Shared {
            buffer: Buffer::new(
                options.capacity,
                options.batch_size,
                options.flush_interval,
                options.dedupe_window,
            ),
            counters,
            task: Mutex::new(None),
            target: writer.target(),
        });
        let handle = tokio::spawn(write_loop(writer, shared.clone(), options.retry));
        *lock(&shared.task) = Some(handle);
        Ok(BufferedAuditSink { shared })
    }

    pub fn counters(&self) -> &AuditCounters {
        &self.shared.counters
    }

    /// Register the sink's counters in the telemetry registry.
    pub fn register(&self, registry: &prometheus::Registry) -> Result<(), prometheus::Error> {
        self.shared.counters.register(registry)
    }

    /// Where the records go (file path or URL), for logs.
    pub fn target(&self) -> &str {
        &self.shared.target
    }

    /// Records queued or in flight.
    pub fn buffered(&self) -> usize {
        self.shared.buffer.occupied()
    }

    /// Enqueue one record given as its key and JSON line. Never waits.
    pub fn enqueue(&self, key: &str, line: Arc<str>) -> Result<(), AuditError> {
        let c = &self.shared.counters;
        match self.shared.buffer.push(key, line) {
            Push::Queued => {
                c.buffered.inc();
                Ok(())
            }
            Push::Duplicate => {
                c.duplicates.inc();
                Ok(())
            }
            Push::Full => {
                c.drop_n(DropReason::BufferFull, 1);
                Err(AuditError::BufferFull(key.to_string()))
            }
            Push::Closed => {
                c.drop_n(DropReason::Closed, 1);
                Err(AuditError::Closed)
            }
        }
    }

    /// Stop taking records and write what is buffered, waiting at most
    /// `timeout`. Records still unwritten then are counted as dropped
    /// (`reason="shutdown"`). A second call returns at once.
    pub async fn shutdown(&self, timeout: Duration) -> Result<(), AuditSinkError> {
        self.shared.buffer.close();
        let Some(mut handle) = lock(&self.shared.task).take() else {
            return Ok(());
        };
        match tokio::time::timeout(timeout, &mut handle).await {
            Ok(_) => Ok(()),
            Err(_) => {
                handle.abort();
                let lost = self.shared.buffer.abandon();
                let c = &self.shared.counters;
                c.drop_n(DropReason::Shutdown, lost);
                c.buffered.set(0);
                tracing::error!(
                    target_sink = %self.shared.target,
                    lost,
                    "AUDIT DATA LOSS: shutdown timed out with records unwritten"
                );
                Err(AuditSinkError::ShutdownTimeout(lost))
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only an Option is swapped under this lock; poisoning cannot corrupt it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The record as written: its payload with the idempotency key added, so a
/// receiver can deduplicate across replicas and restarts.
pub fn render(record: &AuditRecord) -> Arc<str> {
    let value = match serde_json::to_value(&record.payload).unwrap_or(Value::Null) {
        Value::Object(mut m) => {
            m.insert(
                "idempotency_key".into(),
                Value::String(record.idempotency_key.clone()),
            );
            Value::Object(m)
        }
        other => serde_json::json!({
            "idempotency_key": record.idempotency_key,
            "event_type": record.event_type,
            "payload": other,
        }),
    };
    Arc::from(value.to_string())
}

impl AuditSink for BufferedAuditSink {
    fn record(&self, _wfe: &WorkflowExecution, record: &AuditRecord) -> Result<(), AuditError> {
        self.enqueue(&record.idempotency_key, render(record))
    }
}

async fn write_loop<W: BatchWriter>(mut writer: W, shared: Arc<Shared>, retry: RetryPolicy) {
    let c = &shared.counters;
    while let Some(batch) = shared.buffer.next_batch().await {
        let lines: Vec<Arc<str>> = batch.iter().map(|e| e.line.clone()).collect();
        let n = lines.len();
        match deliver(&mut writer, &lines, &retry, c).await {
            Ok(()) => c.written.inc_by(n as u64),
            Err((reason, error)) => {
                c.drop_n(reason, n);
                let first = batch.first().map(|e| e.key.to_string()).unwrap_or_default();
                tracing::error!(
                    target_sink = %shared.target,
                    records = n,
                    first_key = %first,
                    reason = reason.as_str(),
                    %error,
                    "AUDIT DATA LOSS: batch dropped"
                );
            }
        }
        shared.buffer.settle(n);
        c.buffered.sub(n as i64);
    }
}

/// Send one batch, retrying transient failures.
async fn deliver<W: BatchWriter>(
    writer: &mut W,
    lines: &[Arc<str>],
    retry: &RetryPolicy,
    c: &AuditCounters,
) -> Result<(), (DropReason, String)> {
    let mut attempt = 0u32;
    loop {
        match writer.write(lines).await {
            Ok(()) => return Ok(()),
            Err(WriteError::Permanent(e)) => return Err((DropReason::Rejected, e)),
            Err(WriteError::Retryable(e)) => {
                if attempt >= retry.max_retries {
                    return Err((DropReason::RetriesExhausted, e));
                }
                attempt += 1;
                let wait = retry.delay(attempt);
                tracing::warn!(records = lines.len(), attempt, ?wait, error = %e, "audit write failed; retrying");
                tokio::time::sleep(wait).await;
                c.retried.inc_by(lines.len() as u64);
            }
        }
    }
}
