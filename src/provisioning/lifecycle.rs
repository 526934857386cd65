//! The NodeClaim lifecycle, derived each pass from the cloud and the cluster:
//! launched (an instance) → registered (a Node with its providerID; capstan applies the
//! NodePool's labels and taints and removes `karpenter.sh/unregistered`) → initialized (Ready, startup taints gone). An instance that
//! does not register within [`REGISTRATION_TTL`] is terminated.

use std::collections::HashMap;
use std::time::Duration;

use crate::cloud::provider::{Instance, InstanceState, tags};
use crate::cluster::marks;
use crate::cluster::model::{ClusterNode, Snapshot};
use crate::policy::meta::{Labels, Taint};
use crate::scheduling::catalog::Catalog;
use crate::scheduling::pool::{NODE_POOL_LABEL, PoolSpec};

use super::nodes::node_labels;

/// How long a launched instance may take to become a Node.
pub const REGISTRATION_TTL: Duration = Duration::from_secs(15 * 60);
/// Node annotations capstan writes, defined with every other node mark in
/// [`crate::cluster::marks`]; the names here are kept for the loop's callers.
pub use crate::cluster::marks::{
    CLAIM as CLAIM_ANNOTATION, INITIALIZED as INITIALIZED_ANNOTATION, POLICY_REVISION as REVISION_ANNOTATION,
};

/// One lifecycle step to take.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A node appeared for `instance`: give it its pool's labels, taints and annotations, and
    /// take off the unregistered taint ([`marks::UNREGISTERED_TAINT`]). Also taken again for a
    /// registered node that still carries that taint (registered by an older capstan).
    Register { node: String, claim: String, labels: Labels, taints: Vec<Taint>, annotations: Labels },
    /// The node is Ready and its startup taints are gone.
    Initialized { node: String, claim: String, since_launch: Duration },
    /// The instance never registered: terminate it.
    Timeout { instance: String, claim: String, age: Duration },
}

pub fn steps(
    snapshot: &Snapshot,
    instances: &[Instance],
    pools: &[PoolSpec],
    catalog: &Catalog,
    now: Duration,
) -> Vec<Step> {
    let mut out = Vec::new();
    let by_instance: HashMap<&str, &ClusterNode> =
        snapshot.nodes.iter().filter_map(|n| Some((n.instance_id()?, n))).collect();
    // An instance without a NodeClaim is not capstan's (the cloud lists only capstan's; this
    // holds even if it did not): its node is never registered as a NodePool's, nor the
    // instance terminated.
    for i in instances.iter().filter(|i| i.state != InstanceState::Terminated && !i.claim.is_empty()) {
        let pool = pools.iter().find(|p| p.name == i.node_pool);
        let node = by_instance.get(i.id.as_str()).copied();
        match node {
            None if now >= i.launched_at + REGISTRATION_TTL && i.state != InstanceState::ShuttingDown => {
                out.push(Step::Timeout { instance: i.id.clone(), claim: i.claim.clone(), age: now - i.launched_at });
            }
            None => {}
            Some(n) if !n.labels.contains_key(NODE_POOL_LABEL) || marks::unregistered(n) => {
                let mut annotations = Labels::new();
                annotations.insert(marks::CLAIM.into(), i.claim.clone());
                if let Some(r) = i.tags.get(tags::POLICY_REVISION) {
                    annotations.insert(marks::POLICY_REVISION.into(), r.clone());
                }
                let taints =
                    pool.map(|p| p.taints.iter().chain(&p.startup_taints).cloned().collect()).unwrap_or_default();
                out.push(Step::Register {
                    node: n.name.clone(),
                    claim: i.claim.clone(),
                    labels: node_labels(i, catalog.get(&i.instance_type), pool),
                    taints,
                    annotations,
                });
            }
            Some(n) => {
                let startup_left =
                    pool.is_some_and(|p| p.startup_taints.iter().any(|s| n.taints.iter().any(|t| t.key == s.key)));
                if n.ready && !startup_left && !marks::initialized(n) {
                    out.push(Step::Initialized {
                        node: n.name.clone(),
                        claim: i.claim.clone(),
                        since_launch: now.saturating_sub(i.launched_at),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::catalog::CapacityType;

    const NOW: Duration = Duration::from_secs(3600);

    /// An instance launched an hour ago for `claim` (empty: one capstan did not launch).
    fn instance(id: &str, claim: &str) -> Instance {
        Instance {
            id: id.into(),
            claim: claim.into(),
            node_pool: if claim.is_empty() { String::new() } else { "general".into() },
            instance_type: "c6i.large".into(),
            zone: "us-east-1a".into(),
            capacity_type: CapacityType::OnDemand,
            price: 0.085,
            state: InstanceState::Running,
            launched_at: Duration::ZERO,
            tags: Default::default(),
        }
    }

    /// A node of instance `id` as its kubelet registers it: no NodePool label yet.
    fn unregistered(id: &str) -> ClusterNode {
        ClusterNode::joined(&format!("node-{id}"), "us-east-1a", id)
    }

    fn run(nodes: Vec<ClusterNode>, instances: &[Instance]) -> Vec<Step> {
        let snapshot = Snapshot { nodes, ..Snapshot::default() };
        steps(&snapshot, instances, &[], &Catalog::default(), NOW)
    }

    #[test]
    fn a_node_of_an_instance_without_a_claim_is_never_registered() {
        let out = run(
            vec![unregistered("i-kops"), unregistered("i-ours")],
            &[instance("i-kops", ""), instance("i-ours", "general-1")],
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            matches!(&out[0], Step::Register { node, claim, .. } if node == "node-i-ours" && claim == "general-1"),
            "{out:?}"
        );
    }

    #[test]
    fn a_node_keeping_the_unregistered_taint_is_registered_until_it_is_gone() {
        let tainted = |mut n: ClusterNode| {
            n.taints.push(Taint {
                key: marks::UNREGISTERED_TAINT.into(),
                value: None,
                effect: crate::policy::meta::TaintEffect::NoExecute,
                time_added: None,
            });
            n
        };
        let mut registered = unregistered("i-ours");
        registered.labels.insert(NODE_POOL_LABEL.into(), "general".into());
        let out = run(vec![tainted(registered.clone())], &[instance("i-ours", "general-1")]);
        assert!(matches!(&out[..], [Step::Register { node, .. }] if node == "node-i-ours"), "{out:?}");
        // Once it is gone, registration is done.
        let out = run(vec![registered], &[instance("i-ours", "general-1")]);
        assert!(!out.iter().any(|s| matches!(s, Step::Register { .. })), "{out:?}");
        // A node capstan did not launch keeps its taints.
        let out = run(vec![tainted(unregistered("i-kops"))], &[instance("i-kops", "")]);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn an_instance_without_a_claim_and_without_a_node_is_never_timed_out() {
        let out = run(Vec::new(), &[instance("i-bastion", ""), instance("i-ours", "general-1")]);
        assert_eq!(out, [Step::Timeout { instance: "i-ours".into(), claim: "general-1".into(), age: NOW }]);
    }
}
