//! The verdict a provisioning pass publishes, and the reasons it gives.

use super::*;
use crate::cloud::provider::{InstanceState, NodeClaim};
use crate::cluster::model::ClusterNode;
use crate::provisioning::Provision;
use crate::scheduling::catalog::CapacityType;
use crate::scheduling::plan::{NewClaim, Unschedulable};

/// A c6g.large in us-east-1a planned as NodeClaim `claim` for `pods`.
fn launch(claim: &str, pods: &[&str]) -> Launch {
    let pods: Vec<String> = pods.iter().map(|p| p.to_string()).collect();
    Launch {
        claim: NodeClaim {
            name: claim.into(),
            node_pool: "general".into(),
            node_class: "default".into(),
            options: Vec::new(),
            policy_revision: "main@sha1:1".into(),
            tags: Default::default(),
        },
        plan: NewClaim {
            name: claim.into(),
            node_pool: "general".into(),
            instance_type: "c6g.large".into(),
            zone: "us-east-1a".into(),
            capacity_type: CapacityType::OnDemand,
            price: 0.068,
            options: Default::default(),
            requirements: Default::default(),
            pods,
            requests: Default::default(),
            allocatable: Default::default(),
        },
    }
}

fn instance(id: &str, claim: &str) -> Instance {
    Instance {
        id: id.into(),
        claim: claim.into(),
        node_pool: "general".into(),
        instance_type: "c6g.large".into(),
        zone: "us-east-1a".into(),
        capacity_type: CapacityType::OnDemand,
        price: 0.068,
        state: InstanceState::Pending,
        launched_at: Duration::ZERO,
        tags: Default::default(),
    }
}

fn node(name: &str) -> ClusterNode {
    ClusterNode::joined(name, "us-east-1a", "i-1")
}

#[test]
fn a_failed_launch_names_the_type_and_the_error() {
    let l = launch("general-1", &["default/a"]);
    let e = CloudError::Unauthorized("CreateFleet: UnauthorizedOperation: not allowed (request id 1f2e)".into());
    assert_eq!(
        failure(&l, &e),
        "launching a c6g.large for it failed: not authorised: CreateFleet: UnauthorizedOperation: not allowed (request id 1f2e)"
    );
}

#[test]
fn a_dry_run_says_what_would_have_launched() {
    let l = launch("general-1", &["default/a"]);
    let e = CloudError::DryRun { operation: "create", target: "NodeClaim/general-1".into() };
    assert_eq!(failure(&l, &e), "dry run: capstan would launch a c6g.large (on-demand, us-east-1a) for it");
}

#[test]
fn capacity_running_out_everywhere_is_said_without_listing_every_offering() {
    let l = launch("general-1", &["default/a"]);
    let offerings = vec![OfferingKey::new("c6g.large", "us-east-1a", CapacityType::OnDemand); 2];
    let why = failure(&l, &CloudError::InsufficientCapacity { offerings });
    assert!(why.starts_with("every offering tried ran out of capacity (InsufficientInstanceCapacity)"), "{why}");
    assert!(why.contains("2 offerings of NodeClaim general-1"), "{why}");
}

#[test]
fn access_key_ids_never_reach_the_board() {
    let l = launch("general-1", &["default/a"]);
    let e = CloudError::Api("key AKIAIOSFODNN7EXAMPLE, (ASIAIOSFODNN7EXAMPLE) request id AKIA-1".into());
    let why = failure(&l, &e);
    assert!(!why.contains("IOSFODNN7EXAMPLE"), "{why}");
    assert!(why.ends_with("key [redacted], ([redacted]) request id AKIA-1"), "{why}");
}

#[test]
fn a_verdict_says_what_each_pod_waits_for_or_why_it_cannot_be_placed() {
    let snapshot = Snapshot { nodes: vec![node("ip-10-0-0-1")], ..Snapshot::default() };
    let decided = Provision {
        pending: 5,
        launches: Vec::new(),
        nominated: vec![
            Binding { pod: "default/on-node".into(), node: "ip-10-0-0-1".into() },
            Binding { pod: "default/on-claim".into(), node: "i-2".into() },
        ],
        unschedulable: vec![Unschedulable { pod: "default/big".into(), reason: "no type has 64 cpu".into() }],
    };
    let mut v = Verdict::of(&decided, &snapshot, &[instance("i-2", "general-0")]);
    v.launched(&launch("general-1", &["default/new"]), &instance("i-3", "general-1"));
    v.failed(&launch("general-2", &["default/failed"]), "launching a c6g.large for it failed: quota");
    let planned: Vec<(&str, &str)> = v.planned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        planned,
        [
            ("default/new", "NodeClaim general-1 (c6g.large) launching"),
            ("default/on-claim", "nominated to NodeClaim general-0 (c6g.large) launching"),
            ("default/on-node", "nominated to node ip-10-0-0-1"),
        ]
    );
    let unplaced: Vec<(&str, &str)> = v.unplaced.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        unplaced,
        [("default/big", "no type has 64 cpu"), ("default/failed", "launching a c6g.large for it failed: quota"),]
    );
}
