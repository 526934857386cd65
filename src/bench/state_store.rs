//! The state-store reconcile at fleet scale: many clusters' InstanceGroups planned and applied
//! at once, then a pass with nothing to do, then a pass that changes every IG.

use std::collections::BTreeMap;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};

use crate::kops::reconcile::{ReconcileError, Report, Target, reconcile_once};
use crate::kops::{Cache, StateStore, object};

/// Clusters reconciled at once.
const CLUSTERS_AT_ONCE: usize = 8;

#[derive(Debug, Clone, Serialize)]
pub struct StateStoreResult {
    pub clusters: usize,
    pub instance_groups: usize,
    /// Every IG created (plan + apply + status), all clusters.
    pub create_ms: f64,
    /// A second pass: everything listed and planned, nothing written but status; what the
    /// first pass wrote is not read again (the daemon's cache).
    pub noop_ms: f64,
    /// The same with an empty cache: every IG read, as a freshly started process does.
    pub cold_noop_ms: f64,
    /// Every IG changed (one field each), with backups.
    pub update_ms: f64,
}

fn instance_group(cluster: &str, name: &str, max_size: usize) -> Value {
    json!({
        "apiVersion": "kops.k8s.io/v1alpha2",
        "kind": "InstanceGroup",
        "metadata": {"name": name, "labels": {object::CLUSTER_LABEL: cluster, object::OWNER_LABEL: object::OWNER_VALUE}},
        "spec": {
            "role": "Node", "manager": "Karpenter", "image": "ami-0123456789abcdef0",
            "machineType": "m6i.large,m6i.xlarge", "maxSize": max_size, "subnets": ["us-east-1a", "us-east-1b"],
            "nodeLabels": {"example.com/pool": name}, "taints": ["example.com/dedicated=batch:NoSchedule"],
            "kubelet": {"maxPods": 58}, "rootVolumeSize": 64, "rootVolumeType": "gp3",
        },
    })
}

fn targets(run: &str, clusters: usize, igs: usize, max_size: usize) -> Vec<Target> {
    (0..clusters)
        .map(|c| {
            let cluster = format!("bench-{run}-{c:03}.example.com");
            let desired: BTreeMap<String, Value> = (c..igs)
                .step_by(clusters)
                .map(|i| {
                    let name = format!("nodes-{i:04}");
                    (name.clone(), instance_group(&cluster, &name, max_size))
                })
                .collect();
            Target { cluster, revision: format!("bench@{max_size}"), desired, prune: false }
        })
        .collect()
}

async fn pass<S: StateStore>(store: &S, targets: &[Target], caches: &[Cache]) -> Result<f64, ReconcileError> {
    let start = Instant::now();
    let reports: Vec<Result<Report, ReconcileError>> = stream::iter(targets.iter().zip(caches))
        .map(|(t, cache)| reconcile_once(store, t, cache, chrono::Utc::now()))
        .buffer_unordered(CLUSTERS_AT_ONCE)
        .collect()
        .await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    for r in reports {
        let r = r?;
        if !r.ok() {
            return Err(ReconcileError::Store(crate::kops::StoreError::Io(format!(
                "{}: pass did not apply cleanly: {:?}",
                r.plan.cluster, r.outcome
            ))));
        }
    }
    Ok(ms)
}

/// Seeds `clusters` kOps clusters (a `config` each) under fresh names, then measures.
pub async fn run<S: StateStore>(store: &S, clusters: usize, igs: usize) -> Result<StateStoreResult, ReconcileError> {
    let run = format!("{:x}", chrono::Utc::now().timestamp_millis());
    let first = targets(&run, clusters, igs, 10);
    for t in &first {
        let spec = format!(
            "apiVersion: kops.k8s.io/v1alpha2\nkind: Cluster\nmetadata:\n  name: {}\nspec:\n  karpenter:\n    enabled: false\n  serviceAccountIssuerDiscovery:\n    enableAWSOIDCProvider: true\n",
            t.cluster
        );
        store.put_if_absent(&object::config_key(&t.cluster), spec.as_bytes()).await?;
    }
    // One cache per cluster, kept across passes as the daemon keeps it.
    let caches: Vec<Cache> = first.iter().map(|_| Cache::default()).collect();
    let create_ms = pass(store, &first, &caches).await?;
    let noop_ms = pass(store, &first, &caches).await?;
    let cold: Vec<Cache> = first.iter().map(|_| Cache::default()).collect();
    let cold_noop_ms = pass(store, &first, &cold).await?;
    let update_ms = pass(store, &targets(&run, clusters, igs, 20), &caches).await?;
    Ok(StateStoreResult { clusters, instance_groups: igs, create_ms, noop_ms, cold_noop_ms, update_ms })
}
