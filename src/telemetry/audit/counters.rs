//! What the audit sink counts, as Prometheus collectors the telemetry layer
//! registers in its registry.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Why a record was lost (the `reason` label; bounded set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The buffer was full when the record arrived.
    BufferFull,
    /// The endpoint kept failing until the retries ran out.
    RetriesExhausted,
    /// The endpoint refused the batch (a 4xx other than 408/429).
    Rejected,
    /// Still buffered when the shutdown timeout ran out.
    Shutdown,
    /// Arrived after the sink was closed.
    Closed,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        DropReason::BufferFull,
        DropReason::RetriesExhausted,
        DropReason::Rejected,
        DropReason::Shutdown,
        DropReason::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::BufferFull => "buffer_full",
            DropReason::RetriesExhausted => "retries_exhausted",
            DropReason::Rejected => "rejected",
            DropReason::Shutdown => "shutdown",
            DropReason::Closed => "closed",
        }
    }
}

/// The sink's counters. Cloning shares the series.
#[derive(Clone, Debug)]
pub struct AuditCounters {
    /// `wfe_audit_records_written_total`
    pub written: IntCounter,
    /// `wfe_audit_records_dropped_total{reason}`
    pub dropped: IntCounterVec,
    /// `wfe_audit_records_retried_total`: records sent again after a failed attempt.
    pub retried: IntCounter,
    /// `wfe_audit_records_duplicate_total`: records suppressed by idempotency key.
    pub duplicates: IntCounter,
    /// `wfe_audit_buffer_records`: queued plus in-flight records.
    pub buffered: IntGauge,
}

impl AuditCounters {
    pub fn new() -> Result<Self, prometheus::Error> {
        let dropped = IntCounterVec::new(
            Opts::new(
                "wfe_audit_records_dropped_total",
                "Audit records lost, by reason.",
            ),
            &["reason"],
        )?;
        // Every reason exists from the start so alerts see a zero, not absence.
        for r in DropReason::ALL {
            dropped.with_label_values(&[r.as_str()]);
        }
        Ok(AuditCounters {
            written: IntCounter::new(
                "wfe_audit_records_written_total",
                "Audit records delivered to the sink's destination.",
            )?,
            dropped,
            retried: IntCounter::new(
                "wfe_audit_records_retried_total",
                "Audit records sent again after a failed attempt.",
            )?,
            duplicates: IntCounter::new(
                "wfe_audit_records_duplicate_total",
                "Audit records suppressed because their idempotency key was seen recently.",
            )?,
            buffered: IntGauge::new(
                "wfe_audit_buffer_records",
                "Audit records queued or in flight.",
            )?,
        })
    }

    /// Register every series in `registry`.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.written.clone()))?;
        registry.register(Box::new(self.dropped.clone()))?;
        registry.register(Box::new(self.retried.clone()))?;
        registry.register(Box::new(self.duplicates.clone()))?;
        registry.register(Box::new(self.buffered.clone()))?;
        Ok(())
    }

    pub fn drop_n(&self, reason: DropReason, n: usize) {
        self.dropped
            .with_label_values(&[reason.as_str()])
            .inc_by(n as u64);
    }

    /// Records lost for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.with_label_values(&[reason.as_str()]).get()
    }

    /// Records lost for any reason so far.
    pub fn dropped_total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.dropped(*r)).sum()
    }
}
