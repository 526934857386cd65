//! Keeps the status board current: every [`EVERY`] it reads the cluster, joins it with what the
//! capacity loop last saw and the status document, and publishes the JSON the page and
//! `capstan nodes` read (`GET /status/board`) when anything in it changed. Reading the cluster
//! and building the board is blocking work on a large cluster, done off the async workers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::shared::{Published, Shared};
use crate::capacity::report::Seen;
use crate::clock::Clock;
use crate::cluster::ClusterApi;
use crate::view::build::{Inputs, board};

/// How often the board is rebuilt: a change shows on the page within this plus its poll. A
/// board that takes longer than a quarter of this to build waits four times its build time.
pub const EVERY: Duration = Duration::from_millis(500);

/// The status document as the board carries it: without what changes on every pass and the
/// page does not show (the fetch count, the state-store pass, when each peer's record was read),
/// so an idle cluster's board keeps its entity tag.
pub fn steady(mut status: Value) -> Value {
    if let Some(map) = status.as_object_mut() {
        map.remove("fetches");
        map.remove("stateStore");
    }
    if let Some(peers) = status.pointer_mut("/rollout/peers").and_then(Value::as_object_mut) {
        for peer in peers.values_mut() {
            if let Some(p) = peer.as_object_mut() {
                p.retain(|k, _| k == "latest" || k == "since");
            }
        }
    }
    status
}

/// The digest of a board and a status: the body's entity tag, which `builtAt` does not change.
pub fn digest(board: &str, status: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (board, status).hash(&mut h);
    h.finish()
}

/// The JSON body: `builtAt` (when it last changed, on the daemon's clock), the board and the
/// status.
pub fn body(built_at: Duration, board: &str, status: &str) -> String {
    format!("{{\"builtAt\":{},\"board\":{board},\"status\":{status}}}", built_at.as_secs_f64())
}

/// What the board is drawn from on this replica: the capacity loop's last pass on the leader;
/// nothing on a standby, whose loop does not run.
fn seen(shared: &Shared) -> (Seen, bool) {
    let leading = *shared.leading.borrow();
    let seen = if leading { shared.capacity.lock().expect("status").as_ref().map(|s| s.seen.clone()) } else { None };
    (seen.unwrap_or_default(), leading)
}

/// One rebuild, blocking (reading a large cluster is work too): the new body and its digest,
/// or `None` when the cluster cannot be read or nothing changed since `last`.
fn rebuild<K: ClusterApi>(
    cluster: &K,
    clock: &dyn Clock,
    shared: &Shared,
    last: Option<u64>,
    rt: &tokio::runtime::Handle,
) -> Option<(u64, String)> {
    let snapshot = match rt.block_on(cluster.snapshot()) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "status board: the cluster cannot be read; the last board stays");
            return None;
        }
    };
    let (seen, leading) = seen(shared);
    let status = steady(super::status::document(shared)).to_string();
    let inputs = Inputs {
        cluster: &shared.cluster,
        snapshot: &snapshot,
        instances: &seen.instances,
        rules: seen.rules.as_deref(),
        catalog: seen.catalog.as_deref(),
        unplaced: &seen.unplaced,
        planned: &seen.planned,
        registered: &seen.registered,
        standby: !leading,
    };
    let json = serde_json::to_string(&board(&inputs)).expect("a board serializes");
    let digest = digest(&json, &status);
    (last != Some(digest)).then(|| (digest, body(clock.now(), &json, &status)))
}

/// Rebuilds the board until `stop`; a cluster that cannot be read keeps the last one.
pub async fn run<K: ClusterApi + Clone + 'static>(
    cluster: K,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let mut last = None;
    let mut wait = EVERY;
    while super::pause(wait, &stop).await {
        let started = std::time::Instant::now();
        let (cluster, clock, sh, rt) =
            (cluster.clone(), clock.clone(), shared.clone(), tokio::runtime::Handle::current());
        let built = tokio::task::spawn_blocking(move || rebuild(&cluster, &*clock, &sh, last, &rt)).await;
        // On a large cluster the board takes a while to build: at most a fifth of the time goes to it.
        wait = EVERY.max(started.elapsed() * 4);
        let Ok(Some((digest, body))) = built else { continue };
        last = Some(digest);
        let published = Published { etag: format!("\"{digest:016x}\""), body: Bytes::from(body) };
        *shared.board.lock().expect("board") = Some(Arc::new(published));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_board_leaves_out_what_changes_on_every_pass() {
        let status = json!({
            "cluster": "dev",
            "fetches": 41,
            "stateStore": {"at": "2026-12-02T01:00:00Z"},
            "rollout": {"wave": 1, "peers": {"dev": {"heartbeat": "a/7", "readAt": "t", "latest": "abc", "since": "s"}}},
        });
        let steady = super::steady(status);
        assert_eq!(
            steady,
            json!({"cluster": "dev", "rollout": {"wave": 1, "peers": {"dev": {"latest": "abc", "since": "s"}}}})
        );
        assert_ne!(super::digest("{}", &steady.to_string()), super::digest("{}", "{}"));
    }
}
