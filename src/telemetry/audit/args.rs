//! Command-line flags of the audit sink (flatten into `wfe-engine run`).

use std::path::PathBuf;
use std::time::Duration;

use super::{AuditOptions, AuditSinkError, BufferedAuditSink, FileWriter, HttpWriter, RetryPolicy};

#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Append audit records as JSON lines to this file.
    #[arg(long, env = "WFE_AUDIT_FILE", value_name = "PATH")]
    pub audit_file: Option<PathBuf>,
    /// POST audit records in batches (a JSON array) to this http:// URL.
    #[arg(long, env = "WFE_AUDIT_URL", value_name = "URL")]
    pub audit_url: Option<String>,
    /// File holding a bearer token sent with every POST (re-read at startup only).
    #[arg(long, env = "WFE_AUDIT_TOKEN_FILE", value_name = "PATH")]
    pub audit_token_file: Option<PathBuf>,
    /// Records buffered at most; more are dropped and counted.
    #[arg(long, env = "WFE_AUDIT_BUFFER", default_value_t = 10_000)]
    pub audit_buffer: usize,
    /// Records per write.
    #[arg(long, env = "WFE_AUDIT_BATCH", default_value_t = 100)]
    pub audit_batch: usize,
    /// A partial batch is written after this many milliseconds.
    #[arg(long, env = "WFE_AUDIT_FLUSH_MS", default_value_t = 1000)]
    pub audit_flush_ms: u64,
    /// Limit of one HTTP attempt, in milliseconds.
    #[arg(long, env = "WFE_AUDIT_TIMEOUT_MS", default_value_t = 10_000)]
    pub audit_timeout_ms: u64,
    /// Retries of a failed batch before it is dropped.
    #[arg(long, env = "WFE_AUDIT_MAX_RETRIES", default_value_t = 5)]
    pub audit_max_retries: u32,
    /// On shutdown, wait this long for buffered records to be written.
    #[arg(long, env = "WFE_AUDIT_SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub audit_shutdown_timeout_secs: u64,
}

impl AuditArgs {
    pub fn options(&self) -> AuditOptions {
        AuditOptions {
            capacity: self.audit_buffer.max(1),
            batch_size: self.audit_batch.max(1),
            flush_interval: Duration::from_millis(self.audit_flush_ms.max(1)),
            dedupe_window: self.audit_buffer.max(1),
            retry: RetryPolicy {
                max_retries: self.audit_max_retries,
                ..RetryPolicy::default()
            },
        }
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.audit_shutdown_timeout_secs)
    }

    /// The configured sink, or `None` when no destination is set (records
    /// are then dropped silently, as with the no-op sink). Needs a Tokio runtime.
    pub fn build(&self) -> Result<Option<BufferedAuditSink>, AuditSinkError> {
        match (&self.audit_file, &self.audit_url) {
            (Some(_), Some(_)) => Err(AuditSinkError::TwoDestinations),
            (Some(path), None) => {
                BufferedAuditSink::spawn(FileWriter::open(path)?, self.options()).map(Some)
            }
            (None, Some(url)) => {
                let mut w =
                    HttpWriter::new(url, Duration::from_millis(self.audit_timeout_ms.max(1)))?;
                if let Some(p) = &self.audit_token_file {
                    let token =
                        std::fs::read_to_string(p).map_err(|source| AuditSinkError::ReadToken {
                            path: p.display().to_string(),
                            source,
                        })?;
                    w = w.with_bearer_token(&token)?;
                }
                BufferedAuditSink::spawn(w, self.options()).map(Some)
            }
            (None, None) => Ok(None),
        }
    }
}
