//! Keeps the status board current: every [`EVERY`] it reads the cluster, joins it with what the
//! capacity loop last saw and the status document, and publishes the JSON the page and
//! `capstan nodes` read (`GET /status/board`) when anything in it changed. Building it is
//! blocking work, done off the async threads.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use tokio_util::sync::CancellationToken;

use super::shared::{Published, Shared};
use crate::capacity::report::Seen;
use crate::clock::Clock;
use crate::cluster::ClusterApi;
use crate::view::build::{Inputs, board};

/// How often the board is rebuilt: a change shows on the page within this plus its poll. A
/// board that takes longer than a quarter of this to build waits four times its build time.
pub const EVERY: Duration = Duration::from_millis(500);

/// The JSON body: `builtAt` (when it last changed, on the daemon's clock), the board, and the
/// status document. The digest covers all of it but `builtAt`.
pub fn publish(built_at: Duration, board: &str, status: &str) -> (u64, String) {
    let digest = crate::digest::fnv64(format!("{board}\n{status}").as_bytes());
    let body = format!("{{\"builtAt\":{},\"board\":{board},\"status\":{status}}}", built_at.as_secs_f64());
    (digest, body)
}

/// Rebuilds the board until `stop`; a cluster that cannot be read keeps the last one.
pub async fn run<K: ClusterApi>(cluster: K, clock: Arc<dyn Clock>, shared: Arc<Shared>, stop: CancellationToken) {
    let mut last = None;
    let mut wait = EVERY;
    while super::pause(wait, &stop).await {
        let started = std::time::Instant::now();
        let snapshot = match cluster.snapshot().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "status board: the cluster cannot be read; the last board stays");
                continue;
            }
        };
        let seen: Seen = shared.capacity.lock().expect("status").as_ref().map(|s| s.seen.clone()).unwrap_or_default();
        let status = super::status::document(&shared).to_string();
        let name = shared.cluster.clone();
        let built = tokio::task::spawn_blocking(move || {
            let inputs = Inputs {
                cluster: &name,
                snapshot: &snapshot,
                instances: &seen.instances,
                rules: seen.rules.as_deref(),
                catalog: seen.catalog.as_deref(),
                unplaced: &seen.unplaced,
            };
            serde_json::to_string(&board(&inputs)).expect("a board serializes")
        })
        .await;
        let Ok(json) = built else { continue };
        // On a large cluster the board takes a while to build: at most a fifth of the time goes to it.
        wait = EVERY.max(started.elapsed() * 4);
        let (digest, body) = publish(clock.now(), &json, &status);
        if last == Some(digest) {
            continue;
        }
        last = Some(digest);
        let published = Published { etag: format!("\"{digest:016x}\""), body: Bytes::from(body) };
        *shared.board.lock().expect("board") = Some(Arc::new(published));
    }
}
