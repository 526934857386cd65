//! The daemon's HTTP surface: `/metrics` (Prometheus), `/healthz`, `/readyz`, `/status` (JSON),
//! the Git webhook ([`super::hook`]), and, with the simulated cluster, `/sim/scale` to drive
//! workloads ([`super::scale`]). None of these routes reads a body: they keep a small limit.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub use super::shared::Shared;

/// The body limit of the routes here (they read none).
const BODY_LIMIT: usize = 64 * 1024;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/sim/scale", post(super::scale::handler))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// 503 once a task has failed.
async fn healthz(State(s): State<Arc<Shared>>) -> (StatusCode, String) {
    match s.failure.get() {
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("failed: {why}\n")),
        None => (StatusCode::OK, "ok\n".into()),
    }
}

async fn readyz(State(s): State<Arc<Shared>>) -> (StatusCode, String) {
    if let Some(why) = s.failure.get() {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n"))
    } else if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no policy in force yet, or the last capacity pass failed\n".into(),
        )
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &s.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// The status document: the policy in force and the newest seen, the capacity loop's numbers,
/// the last state-store pass.
pub fn status_document(s: &Shared) -> Value {
    let git = s.git.borrow().clone();
    let capacity = s.capacity.lock().expect("status").clone().unwrap_or_default();
    let rollout = s.rollout.lock().expect("status").clone().unwrap_or_default();
    let r = &rollout.record;
    json!({
        "cluster": s.cluster,
        "leader": *s.leading.borrow(),
        "appliedRevision": r.in_force.as_ref().map(|h| h.revision.clone()),
        "lastKnownGood": r.last_known_good.as_ref().map(|h| h.revision.clone()),
        "acceptedRevision": git.applied_revision.as_ref().map(ToString::to_string),
        "lastRevision": git.last_revision.as_ref().map(ToString::to_string),
        "rollout": {
            "wave": r.wave,
            "state": r.phase.label(),
            "reason": r.reason,
            "healthy": r.healthy,
            "healthReasons": r.health_reasons,
            "soak": r.soak,
            "soakSeconds": r.soak_seconds,
            "halted": r.halted,
            "recentSteps": rollout.steps,
            "error": rollout.error,
        },
        "policyError": git.last_error,
        "policyErrors": git.last_errors,
        "fetches": git.fetches,
        "pendingPods": capacity.pending_pods,
        "nodesPerNodePool": capacity.nodes_per_node_pool,
        "inFlight": capacity.in_flight,
        "draining": capacity.draining,
        "recentDecisions": capacity.recent_decisions,
        "capacityError": capacity.last_error,
        "stateStore": s.state_store.lock().expect("status").clone(),
    })
}

async fn status(State(s): State<Arc<Shared>>) -> axum::Json<Value> {
    axum::Json(status_document(&s))
}
