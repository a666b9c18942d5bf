//! The HTTP endpoints: `/metrics` (Prometheus text), `/healthz` (the process
//! serves requests), `/readyz` (a rule set is active and the caller's caches
//! are synced) and `/rules` (the reload status as JSON).
//!
//! Later layers add routes with `router(state).merge(their_router)`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;

use super::{Metrics, TelemetryError};
use crate::reload::ReloadHandle;

/// What the endpoints read. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    /// The reloader, once a rule set is active; `None` means not ready.
    pub rules: Option<ReloadHandle>,
    /// Set by the controller when its watch caches have synced.
    pub caches_synced: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        AppState {
            metrics,
            rules: None,
            caches_synced: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn with_rules(mut self, handle: ReloadHandle) -> Self {
        self.rules = Some(handle);
        self
    }

    pub fn with_caches_synced(mut self, flag: Arc<AtomicBool>) -> Self {
        self.caches_synced = flag;
        self
    }
}

/// The router with the basic endpoints.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/rules", get(rules))
        .with_state(state)
}

/// Serve `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), TelemetryError> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        state.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    let rules = state.rules.is_some();
    let caches = state.caches_synced.load(Ordering::Acquire);
    if rules && caches {
        (StatusCode::OK, "ok").into_response()
    } else {
        let mut why = Vec::new();
        if !rules {
            why.push("no rule set loaded");
        }
        if !caches {
            why.push("caches not synced");
        }
        (StatusCode::SERVICE_UNAVAILABLE, why.join("; ")).into_response()
    }
}

async fn rules(State(state): State<AppState>) -> Response {
    match &state.rules {
        Some(handle) => Json(handle.status()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no rule set loaded").into_response(),
    }
}
