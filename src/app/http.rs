//! The daemon's HTTP surface: `/metrics` (Prometheus), `/healthz`, `/readyz`, `/status` (JSON),
//! the Git webhook, and, with the simulated cluster, `/sim/scale` to drive workloads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::capacity::report::LoopStatus;
use crate::cluster::sim::SimCluster;
use crate::gitops::GitStatus;

/// State the HTTP handlers read; the daemon's tasks write it.
pub struct Shared {
    pub cluster: String,
    pub git: watch::Receiver<GitStatus>,
    pub capacity: Mutex<Option<LoopStatus>>,
    /// The last kOps state-store pass.
    pub state_store: Mutex<Value>,
    /// A policy is in force and the last capacity pass succeeded.
    pub ready: AtomicBool,
    /// This replica holds the leader Lease (always, with the simulated cluster).
    pub leading: watch::Receiver<bool>,
    pub registry: Registry,
    pub sim: Option<SimCluster>,
    /// The fleet rollout on this cluster.
    pub rollout: Mutex<Option<crate::fleet::driver::RolloutView>>,
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/sim/scale", post(scale))
        .with_state(shared)
}

async fn readyz(State(s): State<Arc<Shared>>) -> (StatusCode, &'static str) {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: no policy in force yet, or the last capacity pass failed\n")
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

async fn scale(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> (StatusCode, String) {
    let Some(sim) = &s.sim else {
        return (StatusCode::NOT_FOUND, "only the simulated cluster can be driven\n".into());
    };
    let ns = q.get("namespace").map_or("default", String::as_str);
    let (Some(name), Some(replicas)) = (q.get("deployment"), q.get("replicas").and_then(|r| r.parse().ok())) else {
        return (StatusCode::BAD_REQUEST, "give deployment=NAME&replicas=N\n".into());
    };
    match sim.scale(ns, name, replicas) {
        Ok(()) => (StatusCode::OK, format!("deployment {ns}/{name} scaled to {replicas}\n")),
        Err(e) => (StatusCode::NOT_FOUND, format!("{e}\n")),
    }
}
