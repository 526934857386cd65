//! The status board benchmark: the board of a large synthetic cluster (the consolidation
//! benchmark's: 5,000 nodes and 150,000 pods by default) built and serialized as the daemon
//! does each time the cluster changes, with the size of what the page then downloads.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use serde::Serialize;

use crate::scheduling::builtin;
use crate::view::build::{Inputs, board};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BoardResult {
    pub nodes: usize,
    pub pods: usize,
    /// Building the board from the snapshot, in milliseconds.
    pub build_ms: f64,
    /// Serializing it to JSON, in milliseconds.
    pub serialize_ms: f64,
    pub bytes: usize,
    pub pods_listed: bool,
}

/// Builds the board `rounds` times (the fastest is reported) and returns the last body: the
/// page's JSON document, with an empty status.
pub fn run(nodes: usize, pods_per_node: usize, seed: u64, rounds: usize) -> (BoardResult, String) {
    let (snapshot, instances, rules) = super::consolidation::cluster(nodes, pods_per_node, seed);
    let catalog = builtin::catalog();
    let (unplaced, planned) = (BTreeMap::new(), BTreeMap::new());
    let inputs = Inputs {
        cluster: "bench",
        snapshot: &snapshot,
        instances: &instances,
        rules: Some(&rules),
        catalog: Some(&catalog),
        unplaced: &unplaced,
        planned: &planned,
        registered: &HashSet::new(),
        standby: false,
    };
    let (mut build_ms, mut serialize_ms, mut json, mut listed) = (f64::MAX, f64::MAX, String::new(), false);
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        let b = board(&inputs);
        build_ms = build_ms.min(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        json = serde_json::to_string(&b).expect("a board serializes");
        serialize_ms = serialize_ms.min(started.elapsed().as_secs_f64() * 1e3);
        listed = b.pods_listed;
    }
    let body = format!("{{\"builtAt\":0,\"board\":{json},\"status\":{{\"cluster\":\"bench\"}}}}");
    let result = BoardResult {
        nodes: snapshot.nodes.len(),
        pods: snapshot.pods.len(),
        build_ms: super::round(build_ms, 1),
        serialize_ms: super::round(serialize_ms, 1),
        bytes: body.len(),
        pods_listed: listed,
    };
    (result, body)
}
