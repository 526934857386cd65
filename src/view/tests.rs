//! The board from hand-built snapshots: states, pending reasons, pools against limits, and pods
//! counted rather than listed on a large cluster.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use super::build::{Inputs, WAITING_FOR_LAUNCH, WAITING_FOR_PASS, board};
use super::{LIST_PODS_UP_TO, NodeState};
use crate::cloud::provider::{Instance, InstanceState};
use crate::cluster::marks::{self, DisruptionMarks};
use crate::cluster::{ClusterNode, ClusterPod, Owner, Phase, Snapshot};
use crate::rules::Rules;
use crate::scheduling::builtin;
use crate::scheduling::catalog::CapacityType;
use crate::scheduling::pod::pod;
use crate::scheduling::pool::{Limits, PoolSpec};
use crate::scheduling::resources::Resources;

fn instance(id: &str, claim: &str, state: InstanceState) -> Instance {
    Instance {
        id: id.into(),
        claim: claim.into(),
        node_pool: "default".into(),
        instance_type: "m6i.large".into(),
        zone: "us-east-1a".into(),
        capacity_type: CapacityType::Spot,
        price: 0.05,
        state,
        launched_at: Duration::from_secs(100),
        tags: BTreeMap::new(),
    }
}

/// A node of `instance`, launched by capstan for `claim`, Ready and initialized.
fn node(instance: &str, claim: &str) -> ClusterNode {
    ClusterNode {
        name: format!("node-{instance}"),
        provider_id: format!("aws:///us-east-1a/{instance}"),
        labels: [(marks::NODE_POOL.to_string(), "default".to_string())].into(),
        taints: Vec::new(),
        annotations: [(marks::CLAIM.to_string(), claim.to_string()), (marks::INITIALIZED.to_string(), "true".into())]
            .into(),
        allocatable: Resources { cpu: 2000, memory: 8 << 30, pods: 29, ..Resources::default() },
        ready: true,
        unschedulable: false,
        created_at: Duration::from_secs(150),
        pods_changed_at: Duration::ZERO,
    }
}

fn running(name: &str, node: Option<&str>, cpu: &str) -> ClusterPod {
    ClusterPod {
        namespace: "default".into(),
        name: name.into(),
        owner: Owner::Controller(format!("Deployment/{}", name.split('-').next().unwrap())),
        node: node.map(String::from),
        phase: if node.is_some() { Phase::Running } else { Phase::Pending },
        unschedulable: node.is_none(),
        spec: pod().name(&format!("default/{name}")).cpu(cpu).build(),
        do_not_disrupt: false,
        created_at: Duration::from_secs(200),
        eviction: Default::default(),
    }
}

/// The benchmark's rules with one pool `default` of `limits`.
fn rules(limits: Limits) -> Rules {
    let mut pool = PoolSpec::named("default");
    pool.limits = limits;
    let (_, _, mut r) = crate::bench::consolidation::cluster(0, 0, 1);
    r.revision = "main@sha1:abc".into();
    r.pools = vec![pool];
    r
}

fn build(
    snapshot: &Snapshot,
    instances: &[Instance],
    rules: Option<&Rules>,
    unplaced: &BTreeMap<String, String>,
) -> super::Board {
    let catalog = builtin::catalog();
    board(&Inputs {
        cluster: "dev",
        snapshot,
        instances,
        rules,
        catalog: Some(&catalog),
        unplaced,
        planned: &BTreeMap::new(),
        registered: &HashSet::new(),
        standby: false,
    })
}

#[test]
fn each_node_has_its_state_pods_and_price() {
    let mut draining = node("i-3", "c3");
    draining.unschedulable = true;
    draining.taints.push(marks::disrupted_taint());
    let m = DisruptionMarks { reason: "empty".into(), revision: "main@sha1:def".into(), replacements: vec![] };
    draining.annotations.extend(m.annotations());
    let mut waiting = node("i-4", "c4");
    waiting.unschedulable = true;
    waiting.taints.push(marks::disrupted_taint());
    let m =
        DisruptionMarks { reason: "drifted".into(), revision: "main@sha1:def".into(), replacements: vec!["c9".into()] };
    waiting.annotations.extend(m.annotations());
    let mut registered = node("i-2", "c2");
    registered.annotations.remove(marks::INITIALIZED);
    let snapshot = Snapshot {
        nodes: vec![node("i-1", "c1"), registered, draining, waiting],
        pods: vec![running("web-1", Some("node-i-1"), "500m"), running("web-2", Some("node-i-1"), "250m")],
        ..Snapshot::default()
    };
    let instances: Vec<Instance> =
        (1..=5).map(|i| instance(&format!("i-{i}"), &format!("c{i}"), InstanceState::Running)).collect();
    let b = build(&snapshot, &instances, None, &BTreeMap::new());
    let by_name = |n: &str| b.nodes.iter().find(|x| x.name == n).unwrap_or_else(|| panic!("{n}: {:?}", b.nodes));
    let ready = by_name("node-i-1");
    assert_eq!(ready.state, NodeState::Ready);
    assert_eq!((ready.cpu.requested, ready.cpu.allocatable, ready.pods), (750, 2000, 2));
    assert_eq!(ready.pod_list.len(), 2);
    assert_eq!(ready.capacity_type.as_deref(), Some("spot"));
    assert_eq!(ready.price_per_hour, Some(0.05));
    assert_eq!(ready.since, 100.0, "the launch, not the registration");
    assert_eq!(by_name("node-i-2").state, NodeState::Registered);
    let d = by_name("node-i-3");
    assert_eq!(
        (d.state, d.reason.as_deref(), d.revision.as_deref()),
        (NodeState::Draining, Some("empty"), Some("main@sha1:def"))
    );
    assert_eq!(by_name("node-i-4").state, NodeState::Cordoned, "waits for its replacement c9");
    let launching = by_name("c5");
    assert_eq!((launching.state, launching.instance.as_deref()), (NodeState::Launching, Some("i-5")));
    assert_eq!(b.cost.per_hour, 0.25);
    assert_eq!(b.cost.per_month, 0.25 * 730.0);
    assert_eq!((b.totals.nodes, b.totals.pods, b.totals.running), (5, 2, 2));
}

#[test]
fn pending_pods_carry_the_loops_reason_or_what_they_wait_for() {
    let mut snapshot =
        Snapshot { pods: vec![running("big-1", None, "64"), running("web-3", None, "1")], ..Snapshot::default() };
    let unplaced = BTreeMap::from([("default/big-1".to_string(), "no instance type has 64 cpu".to_string())]);
    let r = rules(Limits::default());
    let b = build(&snapshot, &[], Some(&r), &unplaced);
    assert_eq!(b.pending.total, 2);
    let why: BTreeMap<&str, &str> = b.pending.pods.iter().map(|p| (p.name.as_str(), p.reason.as_str())).collect();
    assert_eq!(why["default/big-1"], "no instance type has 64 cpu");
    assert_eq!(why["default/web-3"], WAITING_FOR_PASS);
    snapshot.nodes.clear();
    let b = build(&snapshot, &[instance("i-9", "c9", InstanceState::Pending)], Some(&r), &unplaced);
    let why: BTreeMap<&str, &str> = b.pending.pods.iter().map(|p| (p.name.as_str(), p.reason.as_str())).collect();
    assert_eq!(why["default/web-3"], WAITING_FOR_LAUNCH);
    assert_eq!(b.pending.by_reason.iter().map(|r| r.pods).sum::<usize>(), 2);
}

#[test]
fn pools_count_capacity_against_their_limits() {
    let r = rules(Limits { cpu: Some(10_000), nodes: Some(3), ..Limits::default() });
    let snapshot = Snapshot { nodes: vec![node("i-1", "c1")], ..Snapshot::default() };
    let instances = [instance("i-1", "c1", InstanceState::Running), instance("i-2", "c2", InstanceState::Pending)];
    let b = build(&snapshot, &instances, Some(&r), &BTreeMap::new());
    let p = &b.pools[0];
    assert_eq!(p.name, "default");
    assert_eq!((p.nodes, p.limit_nodes, p.limit_cpu), (2, Some(3), Some(10_000)));
    assert_eq!(p.cpu, 4000, "two m6i.large by the catalog's vCPUs, the launching one included");
    assert_eq!(b.revision.as_deref(), Some("main@sha1:abc"));
}

#[test]
fn a_large_cluster_counts_pods_by_owner() {
    let n = node("i-1", "c1");
    let pods: Vec<ClusterPod> =
        (0..=LIST_PODS_UP_TO).map(|i| running(&format!("app{}-{i}", i % 9), Some("node-i-1"), "1m")).collect();
    let snapshot = Snapshot { nodes: vec![n], pods, ..Snapshot::default() };
    let b = build(&snapshot, &[], None, &BTreeMap::new());
    assert!(!b.pods_listed);
    let node = &b.nodes[0];
    assert!(node.pod_list.is_empty());
    assert_eq!(node.owners.len(), super::OWNERS_PER_NODE);
    assert_eq!(node.owners.last().unwrap().owner, "other");
    assert_eq!(node.owners.iter().map(|o| o.pods).sum::<usize>(), LIST_PODS_UP_TO + 1);
}

#[test]
fn a_terminated_instance_without_a_node_is_left_out() {
    let b = build(&Snapshot::default(), &[instance("i-1", "c1", InstanceState::Terminated)], None, &BTreeMap::new());
    assert!(b.nodes.is_empty());
    assert_eq!(b.cost.per_hour, 0.0);
    assert!(b.cost.per_hour.is_sign_positive(), "no -0 on the page");
}

#[test]
fn states_follow_what_the_drain_and_the_lifecycle_do() {
    // Joined, not registered by capstan yet: its instance names a claim.
    let mut joined = node("i-1", "c1");
    joined.annotations.clear();
    // Disrupted taint without a record: capstan's is handed back, anyone else's left alone.
    let mut unrecorded = node("i-2", "c2");
    unrecorded.unschedulable = true;
    unrecorded.taints.push(marks::disrupted_taint());
    let mut foreign = unrecorded.clone();
    foreign.name = "foreign".into();
    foreign.provider_id = "aws:///us-east-1a/i-9".into();
    foreign.annotations.clear();
    // Waits for a replacement whose instance is gone.
    let mut lost = node("i-3", "c3");
    lost.unschedulable = true;
    lost.taints.push(marks::disrupted_taint());
    let m = DisruptionMarks { reason: "drifted".into(), revision: "r".into(), replacements: vec!["gone".into()] };
    lost.annotations.extend(m.annotations());
    // Its instance is shutting down while the node is still there.
    let ending = node("i-4", "c4");
    let snapshot = Snapshot { nodes: vec![joined, unrecorded, foreign, lost, ending], ..Snapshot::default() };
    let mut instances: Vec<Instance> =
        (1..=4).map(|i| instance(&format!("i-{i}"), &format!("c{i}"), InstanceState::Running)).collect();
    instances[3].state = InstanceState::ShuttingDown;
    let b = build(&snapshot, &instances, None, &BTreeMap::new());
    let of = |n: &str| {
        let v = b.nodes.iter().find(|x| x.name == n).unwrap_or_else(|| panic!("{n}"));
        (v.state, v.reason.clone().unwrap_or_default())
    };
    assert_eq!(of("node-i-1").0, NodeState::Registered);
    assert_eq!(of("node-i-2"), (NodeState::Cordoned, "no disruption record; being handed back".into()));
    assert_eq!(of("foreign"), (NodeState::Cordoned, "not capstan's".into()));
    assert_eq!(of("node-i-3"), (NodeState::Cordoned, "drifted; a replacement was lost, being handed back".into()));
    assert_eq!(of("node-i-4").0, NodeState::Terminating);
    assert!(b.nodes.iter().all(|n| n.state != NodeState::Launching), "{:?}", b.nodes);
}

#[test]
fn a_standby_says_the_leader_decides() {
    let snapshot = Snapshot { pods: vec![running("web-1", None, "1")], ..Snapshot::default() };
    let catalog = builtin::catalog();
    let unplaced = BTreeMap::new();
    let inputs = Inputs {
        cluster: "dev",
        snapshot: &snapshot,
        instances: &[],
        rules: None,
        catalog: Some(&catalog),
        unplaced: &unplaced,
        planned: &unplaced,
        registered: &HashSet::new(),
        standby: true,
    };
    let b = board(&inputs);
    assert_eq!(b.pending.pods[0].reason, super::build::STANDBY);
}

#[test]
fn a_pod_planned_on_a_claim_says_which() {
    let snapshot = Snapshot { pods: vec![running("web-1", None, "1")], ..Snapshot::default() };
    let catalog = builtin::catalog();
    let (unplaced, r) = (BTreeMap::new(), rules(Limits::default()));
    let planned =
        BTreeMap::from([("default/web-1".to_string(), "NodeClaim default-abc (m6i.large) launching".to_string())]);
    let inputs = Inputs {
        cluster: "dev",
        snapshot: &snapshot,
        instances: &[],
        rules: Some(&r),
        catalog: Some(&catalog),
        unplaced: &unplaced,
        planned: &planned,
        registered: &HashSet::new(),
        standby: false,
    };
    assert_eq!(board(&inputs).pending.pods[0].reason, "waiting for NodeClaim default-abc (m6i.large) launching");
}

#[test]
fn an_instance_whose_node_is_gone_is_terminating_not_launching() {
    // The loop's last pass saw i-1 with its node and i-2 without; the drain then deleted i-1's
    // node, and the board hears of it before the loop's next pass lists i-1 as shutting down.
    let snapshot = Snapshot::default();
    let instances = [instance("i-1", "c1", InstanceState::Running), instance("i-2", "c2", InstanceState::Running)];
    let catalog = builtin::catalog();
    let (none, registered) = (BTreeMap::new(), HashSet::from(["i-1".to_string()]));
    let b = board(&Inputs {
        cluster: "dev",
        snapshot: &snapshot,
        instances: &instances,
        rules: None,
        catalog: Some(&catalog),
        unplaced: &none,
        planned: &none,
        registered: &registered,
        standby: false,
    });
    let of = |c: &str| b.nodes.iter().find(|n| n.name == c).map(|n| (n.state, n.reason.clone()));
    assert_eq!(of("c1"), Some((NodeState::Terminating, Some("its node is gone".into()))));
    assert_eq!(of("c2"), Some((NodeState::Launching, None)));
}
