//! The status document (`GET /status`, and the `status` of the status board): the policy in
//! force and the newest seen, the rollout, the capacity loop's numbers, the last state-store pass.

use serde_json::{Value, json};

use super::shared::Shared;

/// The status document: the policy in force and the newest seen, the capacity loop's numbers,
/// the last state-store pass.
pub fn document(s: &Shared) -> Value {
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
            "peers": r.observations,
            "error": rollout.error,
        },
        "policyError": git.last_error,
        "policyErrors": git.last_errors,
        "fetchError": git.fetch_error,
        "fetches": git.fetches,
        "pendingPods": capacity.pending_pods,
        "nodesPerNodePool": capacity.nodes_per_node_pool,
        "inFlight": capacity.in_flight,
        "draining": capacity.draining,
        "recentDecisions": capacity.recent_decisions,
        "capacityError": capacity.last_error,
        "blockedBy": s.blocked_by.lock().expect("status").clone(),
        "stateStore": s.state_store.lock().expect("status").clone(),
    })
}
