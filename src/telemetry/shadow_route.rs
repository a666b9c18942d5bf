//! `GET /rules/shadow`: the last decisions the candidate rule set in shadow
//! made differently from the active set, newest first, each in the record
//! format of `wfe-engine diff -o json`. Merge into the main router with
//! `router(state).merge(shadow_router(shadow))`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::controller::Shadow;

/// The `/rules/shadow` route; `None`: no candidate configured (404).
pub fn shadow_router(shadow: Option<Arc<Shadow>>) -> Router {
    Router::new()
        .route("/rules/shadow", get(recent))
        .with_state(shadow)
}

async fn recent(State(shadow): State<Option<Arc<Shadow>>>) -> Response {
    match shadow {
        Some(s) => Json(s.recent()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no candidate rules in shadow: run with --shadow-rules-configmap NAMESPACE/NAME or --shadow-rules DIR",
        )
            .into_response(),
    }
}
