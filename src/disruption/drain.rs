//! Draining the nodes marked for disruption, decided as values: [`steps`] reads the snapshot
//! and the instances and says what to do; the capacity loop only executes the steps. Pure and
//! level-triggered: everything it needs is on the nodes (the taint and the
//! [`DisruptionMarks`]), so a restarted daemon finishes what the last one started.
//!
//! ```text
//! node tainted karpenter.sh/disrupted
//!   ─► marked for an interruption                 ─► Evict at once (replacements or not)
//!      (a node replaced on a rebalance recommendation is voluntary: it goes below)
//!   ─► no complete record, launched by capstan  ─► Return (marked by a torn write)
//!   ─► no complete record, not capstan's        ─► nothing (someone else's drain)
//!   ─► a replacement gone without becoming a node ─► Return
//!   ─► a replacement still launching/registering  ─► nothing yet
//!   ─► every replacement initialized (or none)    ─► Evict each movable pod,
//!                                                    or Terminate once none is left
//! ```

use crate::cloud::provider::{Instance, InstanceState};
use crate::cluster::marks::{self, DisruptionMarks};
use crate::cluster::model::{ClusterNode, Snapshot};
use crate::rules::Reason;

/// Why a node marked for disruption is given back to service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnCause {
    /// The replacement with this claim name is gone without becoming an initialized node.
    ReplacementLost(String),
    /// The node is capstan's and tainted, but its disruption record is missing or incomplete
    /// (left by a version that cordoned and annotated in two writes): its replacements are
    /// unknown, so it is not drained.
    Unrecorded,
}

/// One drain step to take.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Undo the disruption marks: the node serves again, and disruption decides anew.
    Return { node: String, cause: ReturnCause },
    /// Evict a pod through the Eviction API (a PodDisruptionBudget may refuse it: retried).
    Evict { node: String, namespace: String, pod: String },
    /// Only DaemonSet and mirror pods are left: terminate the instance, then delete the node.
    Terminate {
        node: String,
        /// The node's instance, when the cloud still lists it (boxed: the step stays small).
        instance: Option<Box<Instance>>,
        marks: DisruptionMarks,
        /// The NodeClaim the node was launched for.
        claim: Option<String>,
        node_pool: Option<String>,
    },
}

/// Where a marked node's replacements stand.
enum Replacements {
    /// None, or all initialized: drain.
    Ready,
    /// Still launching or registering.
    Waiting,
    /// A replacement is gone without becoming a node.
    Lost(String),
}

fn replacements(marks: &DisruptionMarks, snapshot: &Snapshot, instances: &[Instance]) -> Replacements {
    let mut waiting = false;
    for claim in &marks.replacements {
        let initialized =
            snapshot.nodes.iter().any(|n| marks::claim(n) == Some(claim.as_str()) && marks::initialized(n));
        if initialized {
            continue;
        }
        let live = instances
            .iter()
            .any(|i| i.claim == *claim && !matches!(i.state, InstanceState::Terminated | InstanceState::ShuttingDown));
        if live {
            waiting = true;
        } else {
            return Replacements::Lost(claim.clone());
        }
    }
    if waiting { Replacements::Waiting } else { Replacements::Ready }
}

fn drain_node(node: &ClusterNode, snapshot: &Snapshot, instances: &[Instance], out: &mut Vec<Step>) {
    let Some(record) = DisruptionMarks::read(node) else {
        if marks::claim(node).is_some() {
            out.push(Step::Return { node: node.name.clone(), cause: ReturnCause::Unrecorded });
        }
        return;
    };
    // An interrupted node goes in two minutes whatever happens: it is drained at once, while
    // its replacements launch, and never given back.
    let interrupted = record.reason == Reason::Interrupted.label();
    match if interrupted { Replacements::Ready } else { replacements(&record, snapshot, instances) } {
        Replacements::Waiting => return,
        Replacements::Lost(claim) => {
            out.push(Step::Return { node: node.name.clone(), cause: ReturnCause::ReplacementLost(claim) });
            return;
        }
        Replacements::Ready => {}
    }
    let before = out.len();
    for p in snapshot.pods_on(&node.name).filter(|p| !p.is_node_bound()) {
        out.push(Step::Evict { node: node.name.clone(), namespace: p.namespace.clone(), pod: p.name.clone() });
    }
    if out.len() == before {
        out.push(Step::Terminate {
            node: node.name.clone(),
            instance: node.instance_id().and_then(|id| instances.iter().find(|i| i.id == id)).cloned().map(Box::new),
            marks: record,
            claim: marks::claim(node).map(str::to_string),
            node_pool: node.labels.get(marks::NODE_POOL).cloned(),
        });
    }
}

/// What to do now for every node marked for disruption, in the snapshot's order. A node is
/// evicted from only once each replacement recorded on it is initialized, unless it is marked
/// for an interruption: then at once.
pub fn steps(snapshot: &Snapshot, instances: &[Instance]) -> Vec<Step> {
    let mut out = Vec::new();
    for node in snapshot.nodes.iter().filter(|n| marks::disrupting(n)) {
        drain_node(node, snapshot, instances, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cloud::provider::InstanceState;
    use crate::cluster::model::{ClusterPod, Owner, Phase};
    use crate::policy::meta::Labels;
    use crate::scheduling::catalog::CapacityType;

    /// A node named after its instance (`i-…`), launched by capstan for `claim`.
    struct NodeBuilder(ClusterNode);

    fn node(id: &str, claim: &str) -> NodeBuilder {
        NodeBuilder(ClusterNode {
            name: id.into(),
            provider_id: format!("aws:///us-east-1a/{id}"),
            labels: Labels::from([(marks::NODE_POOL.to_string(), "general".to_string())]),
            taints: Vec::new(),
            annotations: Labels::from([(marks::CLAIM.to_string(), claim.to_string())]),
            allocatable: Default::default(),
            ready: true,
            unschedulable: false,
            created_at: Duration::ZERO,
            pods_changed_at: Duration::ZERO,
        })
    }

    impl NodeBuilder {
        fn initialized(mut self) -> Self {
            self.0.annotations.insert(marks::INITIALIZED.into(), "true".into());
            self
        }
        /// Marked as `ClusterApi::mark_for_disruption` marks it.
        fn marked(mut self, replacements: &[&str]) -> Self {
            let m = DisruptionMarks {
                reason: "underutilized".into(),
                revision: "main@sha1:1".into(),
                replacements: replacements.iter().map(|c| c.to_string()).collect(),
            };
            self = self.tainted();
            self.0.annotations.extend(m.annotations());
            self
        }
        /// Cordoned and tainted without the record: what a torn two-write marking left.
        fn tainted(mut self) -> Self {
            self.0.unschedulable = true;
            self.0.taints.push(marks::disrupted_taint());
            self
        }
        fn foreign(mut self) -> Self {
            self.0.annotations.remove(marks::CLAIM);
            self
        }
        fn build(self) -> ClusterNode {
            self.0
        }
    }

    fn instance(id: &str, claim: &str, state: InstanceState) -> Instance {
        Instance {
            id: id.into(),
            claim: claim.into(),
            node_pool: "general".into(),
            instance_type: "c6i.large".into(),
            zone: "us-east-1a".into(),
            capacity_type: CapacityType::OnDemand,
            price: 0.085,
            state,
            launched_at: Duration::ZERO,
            tags: Default::default(),
        }
    }

    fn pod(name: &str, node: &str, owner: Owner) -> ClusterPod {
        ClusterPod {
            namespace: "default".into(),
            name: name.into(),
            owner,
            node: Some(node.into()),
            phase: Phase::Running,
            unschedulable: false,
            spec: crate::scheduling::pod::pod().name(&format!("default/{name}")).build(),
            do_not_disrupt: false,
            created_at: Duration::ZERO,
            eviction: Default::default(),
        }
    }

    fn web(name: &str, node: &str) -> ClusterPod {
        pod(name, node, Owner::Controller("Deployment/web".into()))
    }

    fn snapshot(nodes: Vec<ClusterNode>, pods: Vec<ClusterPod>) -> Snapshot {
        Snapshot { nodes, pods, ..Snapshot::default() }
    }

    fn evicted(steps: &[Step]) -> Vec<&str> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Evict { pod, .. } => Some(pod.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn unmarked_nodes_are_left_alone() {
        let s = snapshot(vec![node("i-1", "c-1").initialized().build()], vec![web("a", "i-1")]);
        assert_eq!(steps(&s, &[instance("i-1", "c-1", InstanceState::Running)]), []);
    }

    #[test]
    fn nothing_is_evicted_while_a_replacement_is_launching_or_registering() {
        let old = node("i-1", "c-1").initialized().marked(&["c-2"]).build();
        let pods = vec![web("a", "i-1")];
        let launching =
            [instance("i-1", "c-1", InstanceState::Running), instance("i-2", "c-2", InstanceState::Pending)];
        assert_eq!(steps(&snapshot(vec![old.clone()], pods.clone()), &launching), []);
        // Registered but not initialized yet: still waiting.
        let registered = node("i-2", "c-2").build();
        assert_eq!(steps(&snapshot(vec![old, registered], pods), &launching), []);
    }

    #[test]
    fn pods_are_evicted_once_every_replacement_is_initialized() {
        let old = node("i-1", "c-1").initialized().marked(&["c-2", "c-3"]).build();
        let two = node("i-2", "c-2").initialized().build();
        let three = node("i-3", "c-3").build();
        let pods = vec![web("a", "i-1"), pod("ds", "i-1", Owner::DaemonSet("ds".into())), web("b", "i-1")];
        let instances = [
            instance("i-1", "c-1", InstanceState::Running),
            instance("i-2", "c-2", InstanceState::Running),
            instance("i-3", "c-3", InstanceState::Running),
        ];
        let s = snapshot(vec![old.clone(), two.clone(), three], pods.clone());
        assert_eq!(steps(&s, &instances), [], "one of two replacements is not initialized");
        let three = node("i-3", "c-3").initialized().build();
        let s = snapshot(vec![old, two, three], pods);
        let out = steps(&s, &instances);
        assert_eq!(evicted(&out), ["a", "b"], "DaemonSet pods stay: {out:?}");
        assert!(out.iter().all(|s| matches!(s, Step::Evict { node, .. } if node == "i-1")));
    }

    #[test]
    fn a_node_with_only_node_bound_pods_is_terminated_with_its_record() {
        let old = node("i-1", "c-1").initialized().marked(&[]).build();
        let pods = vec![pod("ds", "i-1", Owner::DaemonSet("ds".into())), pod("static", "i-1", Owner::Mirror)];
        let i = instance("i-1", "c-1", InstanceState::Running);
        let out = steps(&snapshot(vec![old], pods), std::slice::from_ref(&i));
        let [Step::Terminate { node, instance, marks, claim, node_pool }] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(node, "i-1");
        assert_eq!(instance.as_deref(), Some(&i));
        assert_eq!(marks.reason, "underutilized");
        assert_eq!(marks.revision, "main@sha1:1");
        assert_eq!(claim.as_deref(), Some("c-1"));
        assert_eq!(node_pool.as_deref(), Some("general"));
    }

    #[test]
    fn an_interrupted_node_is_evicted_at_once_and_never_returned() {
        let mut old = node("i-1", "c-1").initialized().marked(&["c-2"]).build();
        old.annotations.insert(marks::DISRUPTION_REASON.into(), "interrupted".into());
        let pods = vec![web("a", "i-1"), pod("ds", "i-1", Owner::DaemonSet("ds".into()))];
        let s = snapshot(vec![old.clone()], pods);
        // The replacement still launching, lost, or never launched: the pods go all the same.
        for replacement in [Some(InstanceState::Pending), Some(InstanceState::Terminated), None] {
            let mut instances = vec![instance("i-1", "c-1", InstanceState::Running)];
            instances.extend(replacement.map(|st| instance("i-2", "c-2", st)));
            let out = steps(&s, &instances);
            assert_eq!(evicted(&out), ["a"], "{replacement:?}: {out:?}");
            assert!(!out.iter().any(|s| matches!(s, Step::Return { .. })), "{out:?}");
        }
        let only_ds = snapshot(vec![old], vec![pod("ds", "i-1", Owner::DaemonSet("ds".into()))]);
        let out = steps(&only_ds, &[instance("i-2", "c-2", InstanceState::Pending)]);
        assert!(matches!(out.as_slice(), [Step::Terminate { node, .. }] if node == "i-1"), "{out:?}");
    }

    #[test]
    fn a_node_replaced_on_a_rebalance_recommendation_waits_for_its_replacement() {
        let mut old = node("i-1", "c-1").initialized().marked(&["c-2"]).build();
        old.annotations.insert(marks::DISRUPTION_REASON.into(), Reason::Rebalance.label().into());
        let s = snapshot(vec![old], vec![web("a", "i-1")]);
        let launching =
            [instance("i-1", "c-1", InstanceState::Running), instance("i-2", "c-2", InstanceState::Pending)];
        assert_eq!(steps(&s, &launching), []);
        let lost = [instance("i-1", "c-1", InstanceState::Running)];
        assert!(matches!(steps(&s, &lost).as_slice(), [Step::Return { .. }]));
    }

    #[test]
    fn a_lost_replacement_returns_the_node() {
        let old = node("i-1", "c-1").initialized().marked(&["c-2"]).build();
        let pods = vec![web("a", "i-1")];
        let expected = [Step::Return { node: "i-1".into(), cause: ReturnCause::ReplacementLost("c-2".into()) }];
        // Never launched (the launch failed after the marking), or terminated before registering.
        for replacement in [None, Some(InstanceState::ShuttingDown), Some(InstanceState::Terminated)] {
            let mut instances = vec![instance("i-1", "c-1", InstanceState::Running)];
            instances.extend(replacement.map(|st| instance("i-2", "c-2", st)));
            assert_eq!(steps(&snapshot(vec![old.clone()], pods.clone()), &instances), expected, "{replacement:?}");
        }
    }

    #[test]
    fn a_capstan_node_tainted_without_its_record_is_returned_not_drained() {
        let torn = node("i-1", "c-1").initialized().tainted().build();
        let s = snapshot(vec![torn], vec![web("a", "i-1")]);
        let out = steps(&s, &[instance("i-1", "c-1", InstanceState::Running)]);
        assert_eq!(out, [Step::Return { node: "i-1".into(), cause: ReturnCause::Unrecorded }]);
        // Half a record is no record.
        let mut half = node("i-1", "c-1").initialized().tainted().build();
        half.annotations.insert(marks::DISRUPTION_REASON.into(), "empty".into());
        let s = snapshot(vec![half], vec![]);
        assert_eq!(steps(&s, &[]), [Step::Return { node: "i-1".into(), cause: ReturnCause::Unrecorded }]);
    }

    #[test]
    fn a_node_someone_else_tainted_is_not_touched() {
        let theirs = node("i-9", "x").tainted().foreign().build();
        assert_eq!(steps(&snapshot(vec![theirs], vec![web("a", "i-9")]), &[]), []);
    }

    #[test]
    fn steps_follow_the_snapshot_order() {
        let a = node("i-1", "c-1").initialized().marked(&[]).build();
        let b = node("i-2", "c-2").initialized().marked(&[]).build();
        let s = snapshot(vec![a, b], vec![web("p", "i-2")]);
        let out = steps(&s, &[]);
        assert!(matches!(&out[0], Step::Terminate { node, instance: None, .. } if node == "i-1"), "{out:?}");
        assert!(matches!(&out[1], Step::Evict { node, pod, .. } if node == "i-2" && pod == "p"), "{out:?}");
    }
}
