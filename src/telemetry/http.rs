//! The HTTP endpoints: `/metrics` (Prometheus text), `/healthz` (the process
//! serves requests), `/readyz` (a rule set is active, the caller's caches
//! are synced, and nothing in the environment keeps the controller from
//! working, such as a missing execution namespace) and `/rules` (the reload
//! status as JSON).
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
use crate::controller::Readiness;
use crate::reload::ReloadHandle;

/// What the endpoints read. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    /// The reloader, once a rule set is active; `None` means not ready.
    pub rules: Option<ReloadHandle>,
    /// Set by the controller when its watch caches have synced.
    pub caches_synced: Arc<AtomicBool>,
    /// What the controller reports as keeping it from working.
    pub readiness: Arc<Readiness>,
}

impl AppState {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        AppState {
            metrics,
            rules: None,
            caches_synced: Arc::new(AtomicBool::new(false)),
            readiness: Arc::default(),
        }
    }

    pub fn with_readiness(mut self, readiness: Arc<Readiness>) -> Self {
        self.readiness = readiness;
        self
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
    let mut why: Vec<String> = Vec::new();
    if state.rules.is_none() {
        why.push("no rule set loaded".into());
    }
    if !state.caches_synced.load(Ordering::Acquire) {
        why.push("caches not synced".into());
    }
    why.extend(state.readiness.problems());
    if why.is_empty() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, why.join("; ")).into_response()
    }
}

async fn rules(State(state): State<AppState>) -> Response {
    match &state.rules {
        Some(handle) => Json(handle.status()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no rule set loaded").into_response(),
    }
}
