//! Telemetry: the Prometheus registry and metrics, and the HTTP endpoints
//! (`/metrics`, `/healthz`, `/readyz`, `/rules`, `/rules/shadow`).
//!
//! Every metric lives in one [`Metrics`] value that owns its registry, so tests
//! and several engines in one process never share global state. Later layers
//! add their own metric groups as fields of [`Metrics`] and their own routes by
//! merging a router into [`http::router`]'s.

pub mod audit;
pub mod controller_metrics;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod pending_age;
pub mod shadow_metrics;
pub mod shadow_route;

pub use controller_metrics::ControllerMetrics;
pub use http::{router, serve, AppState};
pub use logging::{init_logging, LogFormat};
pub use metrics::{Metrics, ReloadMetrics};
pub use pending_age::{PendingAge, PendingSource};
pub use shadow_metrics::ShadowMetrics;
pub use shadow_route::shadow_router;

/// Errors of the telemetry layer.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("registering metric: {0}")]
    Register(#[from] prometheus::Error),
    #[error("serving HTTP: {0}")]
    Serve(#[from] std::io::Error),
}
