//! Disruption candidates: nodes capstan launched, Ready, not already being disrupted, with the
//! facts each method needs (pods to move, idle time, age, utilization, drift) and what, if
//! anything, forbids a voluntary disruption.

use std::collections::HashMap;
use std::time::Duration;

use crate::cloud::provider::Instance;
use crate::cluster::marks;
use crate::cluster::model::{ClusterNode, ClusterPod, Owner, Snapshot};
use crate::provisioning::POOL_HASH_TAG;
use crate::rules::{Reason, Rules};

use super::Request;
use crate::scheduling::pool::NODE_POOL_LABEL;

#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub node: &'a ClusterNode,
    pub instance: &'a Instance,
    /// Index into the rules' pools.
    pub pool: usize,
    /// Pods a drain would evict (DaemonSet and mirror pods excluded).
    pub pods: Vec<&'a ClusterPod>,
    /// Why voluntary disruption is not allowed now.
    pub blocked: Option<String>,
    pub age: Duration,
    /// Time since a pod last arrived or left.
    pub idle: Duration,
    /// The larger of requested cpu and memory over allocatable, all pods counted.
    pub utilization: f64,
    /// Why the node differs from its pool's current spec.
    pub drift: Option<String>,
}

/// Whether a node is being disrupted (tainted [`marks::DISRUPTED_TAINT`]).
pub fn disrupting(node: &ClusterNode) -> bool {
    marks::disrupting(node)
}

fn blocked(node: &ClusterNode, pods: &[&ClusterPod], snapshot: &Snapshot, now: Duration) -> Option<String> {
    if node.do_not_disrupt() {
        return Some(format!("node {} is annotated karpenter.sh/do-not-disrupt", node.name));
    }
    // Placeholders are never evicted: no PodDisruptionBudget or annotation of theirs counts.
    for p in pods.iter().filter(|p| !crate::provisioning::buffer::is_placeholder(&p.key())) {
        if p.do_not_disrupt {
            return Some(format!("pod {} is annotated karpenter.sh/do-not-disrupt", p.key()));
        }
        if let Some(until) = snapshot.do_not_disrupt_until.get(&p.key())
            && now < *until
        {
            return Some(format!(
                "pod {} is annotated karpenter.sh/do-not-disrupt for another {}s",
                p.key(),
                (*until - now).as_secs_f64().ceil() as u64
            ));
        }
        if p.owner == Owner::None {
            return Some(format!("pod {} has no controller; evicting it would lose it", p.key()));
        }
        if let Some(pdb) = snapshot.pdbs.iter().find(|b| b.covers(p) && b.disruptions_allowed <= 0) {
            return Some(format!(
                "PodDisruptionBudget {}/{} allows no disruption of {} now",
                pdb.namespace,
                pdb.name,
                p.key()
            ));
        }
    }
    None
}

/// Every node that could be disrupted, in the snapshot's order.
pub fn candidates<'a>(
    snapshot: &'a Snapshot,
    instances: &'a [Instance],
    rules: &Rules,
    now: Duration,
) -> Vec<Candidate<'a>> {
    let by_id: HashMap<&str, &Instance> = instances.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut pods: HashMap<&str, Vec<&ClusterPod>> = HashMap::new();
    for p in &snapshot.pods {
        if let Some(n) = &p.node {
            pods.entry(n.as_str()).or_default().push(p);
        }
    }
    let mut out = Vec::new();
    for node in &snapshot.nodes {
        let Some(pool_name) = node.labels.get(NODE_POOL_LABEL) else { continue };
        let Some((pool, _, pool_rules)) = rules.pool(pool_name) else { continue };
        let Some(instance) = node.instance_id().and_then(|id| by_id.get(id)) else { continue };
        if !node.ready || node.unschedulable || disrupting(node) {
            continue;
        }
        let all = pods.get(node.name.as_str()).cloned().unwrap_or_default();
        let mut requested = crate::scheduling::resources::Resources::default();
        for p in &all {
            requested += &p.spec.requests;
        }
        let ratio = |used: i64, have: i64| if have > 0 { used as f64 / have as f64 } else { 0.0 };
        let utilization =
            ratio(requested.cpu, node.allocatable.cpu).max(ratio(requested.memory, node.allocatable.memory));
        let movable: Vec<&ClusterPod> = all.into_iter().filter(|p| !p.is_node_bound()).collect();
        let drift = match instance.tags.get(POOL_HASH_TAG) {
            Some(h) if *h != pool_rules.hash => Some(format!(
                "NodePool {pool_name} or its EC2NodeClass changed since launch ({h} → {})",
                pool_rules.hash
            )),
            _ => None,
        };
        out.push(Candidate {
            node,
            instance,
            pool,
            blocked: blocked(node, &movable, snapshot, now),
            pods: movable,
            age: now.saturating_sub(instance.launched_at),
            idle: now.saturating_sub(node.pods_changed_at),
            utilization,
            drift,
        });
    }
    out
}

/// Candidates that have drifted or expired, oldest first, with the reason.
pub(super) fn stale<'a, 'b>(req: &Request, fixed: &'b [Candidate<'a>]) -> Vec<(&'b Candidate<'a>, Reason, String)> {
    let mut out: Vec<_> = fixed
        .iter()
        .filter_map(|c| {
            if let Some(d) = &c.drift {
                return Some((c, Reason::Drifted, d.clone()));
            }
            let expire = req.rules().pool_rules[c.pool].expire_after?;
            (c.age >= expire).then(|| (c, Reason::Expired, format!("older than expireAfter {}s", expire.as_secs())))
        })
        .collect();
    out.sort_by_key(|(c, _, _)| std::cmp::Reverse(c.age));
    out
}
