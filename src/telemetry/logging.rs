//! Structured logs: JSON (one object per line, for log pipelines) or text
//! (for people), filtered by `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

/// `--log-format` / `WFE_LOG_FORMAT`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

/// The filter from `RUST_LOG`, or `info` when unset or invalid (an invalid
/// filter is reported once logging works).
fn filter() -> (EnvFilter, Option<String>) {
    match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::try_new(&spec) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new("info"),
                Some(format!("invalid RUST_LOG {spec:?} ({e}); using info")),
            ),
        },
        _ => (EnvFilter::new("info"), None),
    }
}

/// Install the global subscriber. A second call (tests, embedding) keeps
/// the first subscriber.
pub fn init_logging(format: LogFormat) {
    let (filter, warning) = filter();
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
}
