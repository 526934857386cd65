//! The memory benchmark: what the daemon holds for a large cluster, built in this process, and
//! the resident memory that costs (VmRSS, and the peak VmHWM, from `/proc/self/status`).
//!
//! - `kube`: realistic Pods and Nodes ([`objects`]) go into the reflector stores as list events
//!   do, kept as the daemon keeps them (pods converted, nodes trimmed) or, for comparison, whole
//!   or trimmed; one snapshot is assembled from the stores as the loop does.
//! - `sim`: the simulated cluster's pods and nodes (the consolidation benchmark's cluster) and
//!   one snapshot taken from them.
//!
//! Run one configuration per process so that the peaks do not mix.

pub mod objects;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::watcher::Event;
use serde::Serialize;

use crate::cluster::kube::stored::Sharing;
use crate::cluster::kube::{StoredPod, snapshot_of, trim};
use crate::cluster::model::Snapshot;

/// The resident memory goal at 5,000 nodes and 150,000 pods.
pub const BUDGET_MIB: f64 = 300.0;

/// Where the cluster is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Reflector stores of a Kubernetes API server.
    Kube,
    /// The simulated cluster.
    Sim,
}

/// What the `kube` stores keep of each object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kept {
    /// Whole objects, as a reflector keeps them untouched.
    Full,
    /// Pods and nodes trimmed in place, still `k8s_openapi` objects.
    Trimmed,
    /// What the daemon keeps: pods converted, nodes trimmed.
    Converted,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryResult {
    pub backend: Backend,
    /// What the stores keep (`kube` only).
    pub kept: Option<Kept>,
    /// Pods and nodes held by the backend (stores or simulated cluster).
    pub stored_pods: usize,
    pub stored_nodes: usize,
    /// Pods and nodes in the snapshot.
    pub pods: usize,
    pub nodes: usize,
    /// Resident memory before anything was built, with the backend's objects, and with the
    /// snapshot too; `None` where `/proc/self/status` is not readable.
    pub start_mib: Option<f64>,
    pub stored_mib: Option<f64>,
    pub rss_mib: Option<f64>,
    /// The most resident memory the process reached (VmHWM).
    pub peak_mib: Option<f64>,
    pub build_ms: f64,
}

impl MemoryResult {
    /// One line for people.
    pub fn summary(&self) -> String {
        let mib = |m: Option<f64>| m.map_or("n/a".to_string(), |m| format!("{m:.1} MiB"));
        let what = match self.kept {
            Some(Kept::Full) => "kube, whole objects",
            Some(Kept::Trimmed) => "kube, trimmed objects",
            Some(Kept::Converted) => "kube, as the daemon keeps them",
            None => "sim",
        };
        let verdict = match self.peak_mib {
            Some(p) if p <= BUDGET_MIB => format!("within the {BUDGET_MIB:.0} MiB budget"),
            Some(_) => format!("over the {BUDGET_MIB:.0} MiB budget"),
            None => "budget not checked".to_string(),
        };
        format!(
            "{what}: {} nodes and {} pods held, a snapshot of {} nodes and {} pods: RSS {} (at start {}, with the held objects {}), peak {}, {verdict}; built in {:.0} ms",
            self.stored_nodes,
            self.stored_pods,
            self.nodes,
            self.pods,
            mib(self.rss_mib),
            mib(self.start_mib),
            mib(self.stored_mib),
            mib(self.peak_mib),
            self.build_ms
        )
    }
}

/// VmRSS and VmHWM in MiB.
fn rss() -> Option<(f64, f64)> {
    Some((super::status_mib("VmRSS:")?, super::status_mib("VmHWM:")?))
}

/// Builds what `backend` holds for `nodes` nodes of `pods_per_node` pods (`kept` says what the
/// `kube` stores keep) and measures it.
pub fn run(nodes: usize, pods_per_node: usize, seed: u64, backend: Backend, kept: Kept) -> MemoryResult {
    let start = rss().map(|r| round(r.0));
    let started = Instant::now();
    let held = match backend {
        Backend::Kube => kube(nodes, pods_per_node, kept),
        Backend::Sim => sim(nodes, pods_per_node, seed),
    };
    let build_ms = (started.elapsed().as_secs_f64() * 1000.0).round();
    let now = rss();
    let result = MemoryResult {
        backend,
        kept: (backend == Backend::Kube).then_some(kept),
        stored_pods: held.stored_pods,
        stored_nodes: held.stored_nodes,
        pods: held.snapshot.pods.len(),
        nodes: held.snapshot.nodes.len(),
        start_mib: start,
        stored_mib: held.stored_mib.map(round),
        rss_mib: now.map(|r| round(r.0)),
        peak_mib: now.map(|r| round(r.1)),
        build_ms,
    };
    drop(held);
    result
}

/// Everything built, held until it is measured, as the daemon holds it during a pass.
struct Held {
    stored_pods: usize,
    stored_nodes: usize,
    /// Resident memory with the backend's objects only.
    stored_mib: Option<f64>,
    snapshot: Snapshot,
    _objects: Box<dyn Any>,
}

fn round(mib: f64) -> f64 {
    super::round(mib, 1)
}

fn sim(nodes: usize, pods_per_node: usize, seed: u64) -> Held {
    let (snapshot, instances, _) = super::consolidation::cluster(nodes, pods_per_node, seed);
    let pods: BTreeMap<String, _> = snapshot.pods.into_iter().map(|p| (p.key(), p)).collect();
    let nodes: BTreeMap<String, _> = snapshot.nodes.into_iter().map(|n| (n.name.clone(), n)).collect();
    let stored_mib = rss().map(|r| r.0);
    // What the simulated cluster's `snapshot` returns: copies of its pods and nodes.
    let snapshot = Snapshot {
        pods: pods.values().cloned().collect(),
        nodes: nodes.values().cloned().collect(),
        ..Snapshot::default()
    };
    Held {
        stored_pods: pods.len(),
        stored_nodes: nodes.len(),
        stored_mib,
        snapshot,
        _objects: Box::new((pods, nodes, instances)),
    }
}

fn kube(nodes: usize, pods_per_node: usize, kept: Kept) -> Held {
    let node_store = store((0..nodes).map(objects::node), |mut n| {
        if kept != Kept::Full {
            trim::node(&mut n);
        }
        n
    });
    let replicas: Vec<Pod> = (0..objects::APPS).map(objects::replica).collect();
    let pods = (0..nodes).flat_map(|n| {
        let node = objects::node_name(n);
        let replicas = &replicas;
        (0..pods_per_node).map(move |j| {
            let i = n * pods_per_node + j;
            let mut pod = replicas[i % objects::APPS].clone();
            objects::name_pod(&mut pod, i % objects::APPS, i, &node);
            pod
        })
    });
    let mut sharing = Sharing::default();
    let node_state = node_store.state();
    match kept {
        Kept::Converted => {
            let pod_store = store(pods, |p| StoredPod::of(&p, &mut sharing));
            let stored_mib = rss().map(|r| r.0);
            let snapshot = snapshot_of(&pod_store.state(), &node_state, &[], &[]);
            let stored_pods = pod_store.len();
            Held { stored_pods, stored_nodes: nodes, stored_mib, snapshot, _objects: Box::new((pod_store, node_store)) }
        }
        Kept::Full | Kept::Trimmed => {
            let pod_store = store(pods, |mut p| {
                if kept == Kept::Trimmed {
                    trim::pod(&mut p);
                }
                p
            });
            let stored_mib = rss().map(|r| r.0);
            // Converted for the snapshot only, as a store of `Pod`s must be at every pass.
            let converted: Vec<Arc<StoredPod>> =
                pod_store.state().iter().map(|p| Arc::new(StoredPod::of(p, &mut sharing))).collect();
            let snapshot = snapshot_of(&converted, &node_state, &[], &[]);
            let stored_pods = pod_store.len();
            Held { stored_pods, stored_nodes: nodes, stored_mib, snapshot, _objects: Box::new((pod_store, node_store)) }
        }
    }
}

/// A store after its first listing of `objects`, each kept as `keep` makes it, as the
/// reflectors store list events.
fn store<K, T>(objects: impl Iterator<Item = K>, mut keep: impl FnMut(K) -> T) -> Store<T>
where
    T: Lookup<DynamicType = ()> + Clone + 'static,
{
    let (reader, mut writer) = reflector::store::<T>();
    writer.apply_watcher_event(&Event::Init);
    for k in objects {
        writer.apply_watcher_event(&Event::InitApply(keep(k)));
    }
    writer.apply_watcher_event(&Event::InitDone);
    reader
}
