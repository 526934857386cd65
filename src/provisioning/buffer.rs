//! Placeholder pods for capacity buffers. They exist only in the scheduling simulation: the
//! provisioner sees them pending, so it launches room for them; consolidation sees them on the
//! nodes that have room for them, so it keeps that room. The cluster never sees them: nothing
//! binds, evicts or counts them, and a real pod that takes their room simply leaves them
//! pending, so the next pass launches more.
//!
//! ```text
//! Buffers + snapshot (workloads) + instances + wall time ─placeholders─► [ClusterPod marked]
//!   ├─ pending_view ─► provisioning (pending set)
//!   └─ occupied_view ─► disruption (placed on existing nodes, the rest pending)
//! ```
//!
//! Placeholder names carry a digest of every instance the cloud lists, terminated ones
//! included: a launch or a termination changes it and no earlier set comes back (instance ids
//! never repeat), so a refill after a real pod took the room asks the cloud for a new
//! NodeClaim, while a pass repeated before the cloud lists a launch asks for the same one (its
//! CreateFleet ClientToken). A buffer's placeholders are named after its kind and name
//! (`capacitybuffer-<name>`, or `headroom` for the ClusterPolicy's), so no two clash.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use std::collections::HashMap;

use crate::cloud::provider::Instance;
use crate::cluster::model::{ClusterPod, Owner, Phase, Snapshot};
use crate::digest::fnv64;
use crate::rules::Rules;
use crate::rules::buffers::{Buffer, Buffers, Chunk};
use crate::scheduling::catalog::Catalog;
use crate::scheduling::pod::Pod;
use crate::scheduling::resources::Resources;
use crate::scheduling::{Input, Strategy, solve};

/// Placeholder names start with this; `:` cannot occur in a real pod's name.
pub const MARK: &str = "capacitybuffer:";
/// Most chunks one buffer asks for, whatever its limits allow.
pub const MAX_CHUNKS: u32 = 1000;

/// Whether a scheduler pod name (`namespace/name`) is a placeholder's.
pub fn is_placeholder(key: &str) -> bool {
    key.split_once('/').is_some_and(|(_, name)| name.starts_with(MARK))
}

/// How many chunks a buffer keeps, as Karpenter's CapacityBuffer controller sizes it: the
/// larger of `replicas` and `percentage` of the workload's `of` pods (rounded up, at least one
/// when both are above zero; `percentage: 0` asks for none), capped by how many chunks of `chunk` fit in
/// `limits`; with neither count, as many as fit in the limits.
pub fn chunks(b: &Buffer, of: u32, chunk: &Resources) -> u32 {
    let pct = b.percentage.filter(|_| of > 0).map(|p| match p {
        0 => 0,
        p => (u64::from(of) * u64::from(p)).div_ceil(100).max(1),
    });
    let desired = [b.replicas.map(u64::from), pct].into_iter().flatten().max();
    let fit = b.limits.as_ref().and_then(|l| {
        let per = l.iter().filter(|(r, _)| chunk.get(r) > 0).map(|(r, v)| (v.max(&0) / chunk.get(r)) as u64);
        per.min()
    });
    let n = match (desired, fit) {
        (Some(d), Some(f)) => d.min(f),
        (None, Some(f)) => f,
        (d, None) => d.unwrap_or(0),
    };
    n.min(u64::from(MAX_CHUNKS)) as u32
}

/// The workload's pods (not placeholders) in `namespace`: owned by it, or, for a Deployment, by
/// one of its ReplicaSets (`<name>-<pod-template-hash>`).
fn workload<'a>(snapshot: &'a Snapshot, ns: &str, kind: &str, name: &str) -> Vec<&'a ClusterPod> {
    let owned = |p: &&ClusterPod| {
        let Owner::Controller(c) = &p.owner else { return false };
        let Some((k, n)) = c.split_once('/') else { return false };
        let replica_set = kind == "Deployment"
            && k == "ReplicaSet"
            && p.spec
                .labels()
                .get("pod-template-hash")
                .is_some_and(|h| n.strip_suffix(h.as_str()) == Some(&format!("{name}-")));
        p.namespace == ns && !is_placeholder(&p.spec.name) && ((k == kind && n == name) || replica_set)
    };
    snapshot.pods.iter().filter(owned).collect()
}

/// A digest of every listed instance, terminated ones included: it changes with each launch
/// and termination, and never returns to an earlier value while the cloud lists both.
pub fn generation(instances: &[Instance]) -> u64 {
    let mut ids: Vec<&str> = instances.iter().map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    fnv64(ids.join("\n").as_bytes())
}

/// The placeholder pods of every buffer in force at `now`, pending and marked.
pub fn placeholders(
    buffers: &Buffers,
    snapshot: &Snapshot,
    instances: &[Instance],
    now: DateTime<Utc>,
) -> Vec<ClusterPod> {
    let generation = generation(instances);
    let mut out = Vec::new();
    for b in &buffers.buffers {
        if b.window.as_ref().is_some_and(|w| !w.open(now)) {
            continue;
        }
        let (shape, of): (Pod, u32) = match &b.chunk {
            Chunk::Template(pod) => (pod.clone(), 0),
            Chunk::Workload { kind, name } => {
                let pods = workload(snapshot, &b.namespace, kind, name);
                let Some(newest) = pods.iter().max_by_key(|p| (p.created_at, &p.name)) else { continue };
                (newest.spec.clone(), pods.len() as u32)
            }
        };
        // `CapacityBuffer/x` becomes `capacitybuffer-x`, apart from the ClusterPolicy's `headroom`.
        let short = b.name.replace('/', "-").to_lowercase();
        for i in 0..chunks(b, of, &shape.requests) {
            let name = format!("{MARK}{short}:{generation:016x}:{i}");
            let mut spec = shape.clone();
            spec.name = format!("{}/{name}", b.namespace);
            spec.owner = Some(b.name.clone());
            out.push(ClusterPod {
                namespace: b.namespace.clone(),
                name,
                owner: Owner::Controller(b.name.clone()),
                node: None,
                phase: Phase::Pending,
                unschedulable: true,
                spec,
                do_not_disrupt: false,
                created_at: std::time::Duration::ZERO,
                eviction: Default::default(),
            });
        }
    }
    out
}

/// The snapshot provisioning solves over: the cluster's, with the placeholders pending.
pub fn pending_view<'a>(snapshot: &'a Snapshot, placeholders: &[ClusterPod]) -> Cow<'a, Snapshot> {
    if placeholders.is_empty() {
        return Cow::Borrowed(snapshot);
    }
    let mut s = snapshot.clone();
    s.pods.extend(placeholders.iter().cloned());
    Cow::Owned(s)
}

/// The snapshot disruption decides over: each placeholder bound to the registered node the
/// scheduler would put it on (existing capacity only, nothing new), so consolidation keeps that
/// room; placeholders with no room yet, or room only on an instance still launching, stay
/// pending, and do not hold consolidation back as a pending real pod does.
pub fn occupied_view<'a>(
    snapshot: &'a Snapshot,
    instances: &[Instance],
    rules: &Rules,
    catalog: &Catalog,
    placeholders: Vec<ClusterPod>,
) -> Cow<'a, Snapshot> {
    if placeholders.is_empty() {
        return Cow::Borrowed(snapshot);
    }
    let nodes = super::nodes::capacity(snapshot, instances, &rules.pools, catalog);
    let input = Input {
        pods: placeholders.iter().map(|p| p.spec.clone()).collect(),
        nodes: nodes.into_iter().filter(|n| !n.unschedulable).collect(),
        daemonsets: snapshot.daemonsets.clone(),
        pools: Vec::new(),
        catalog,
        cluster_limits: rules.cluster.limits.clone(),
        strategy: Strategy::CostOptimal,
    };
    let plan = solve(&input);
    let bound: HashMap<&str, &str> = plan.bindings.iter().map(|b| (b.pod.as_str(), b.node.as_str())).collect();
    let registered: std::collections::HashSet<&str> = snapshot.nodes.iter().map(|n| n.name.as_str()).collect();
    let mut s = snapshot.clone();
    for mut p in placeholders {
        if let Some(node) = bound.get(p.spec.name.as_str()).filter(|n| registered.contains(**n)) {
            p.node = Some(node.to_string());
            p.phase = Phase::Running;
            p.unschedulable = false;
        }
        s.pods.push(p);
    }
    Cow::Owned(s)
}

/// Leaves out of a provisioning decision what concerns placeholders only: no pod to tell, no
/// line on the status board. Launches for them stay. Real pods come first: when `alone`, the
/// decision over the real pods only, places a real pod the combined decision leaves out (the
/// room under a limit went to placeholders), `alone` is the decision of this pass and the
/// placeholders wait for the next; otherwise whether a real pod has a place is taken from it.
pub fn strip(decided: &mut super::Provision, placeholders: usize, alone: Option<super::Provision>) {
    if let Some(alone) = alone {
        let unplaced: std::collections::HashSet<&str> = alone.unschedulable.iter().map(|u| u.pod.as_str()).collect();
        let starved =
            decided.unschedulable.iter().any(|u| !is_placeholder(&u.pod) && !unplaced.contains(u.pod.as_str()));
        if starved {
            *decided = alone;
            return;
        }
        decided.unschedulable = alone.unschedulable;
    } else {
        decided.unschedulable.retain(|u| !is_placeholder(&u.pod));
    }
    decided.pending = decided.pending.saturating_sub(placeholders);
    decided.nominated.retain(|b| !is_placeholder(&b.pod));
}

#[cfg(test)]
#[path = "buffer_tests.rs"]
mod tests;
