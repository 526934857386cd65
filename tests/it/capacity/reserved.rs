//! Reserved capacity on the simulated world: a NodePool that allows `reserved` fills a capacity
//! reservation of its EC2NodeClass first, only as far as it has room, labels those nodes with
//! the reservation, and launches on-demand for the rest; a NodePool that does not allow it, or
//! whose class does not select the reservation, never touches it. And the simulated EC2 itself:
//! a full reservation refuses (without launching another capacity type in the same call, as
//! CreateFleet does not), a termination frees its place, another class's launch never goes in.

use std::collections::BTreeMap;

use capstan::cloud::CloudError;
use capstan::cloud::OfferingKey;
use capstan::cloud::provider::{Avoid, CloudProvider, NodeClaim};
use capstan::cloud::sim::{SimCloud, VirtualClock};
use capstan::scheduling::catalog::CapacityType;
use capstan::scheduling::plan::LaunchOption;
use capstan::scheduling::reserved::{RESERVATION_ID_LABEL, RESERVATION_TYPE_LABEL};

use super::*;

const WHEN_EMPTY: &str = "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30s";

/// Pods of 1.5 vCPU, one per node: each replica needs a node of its own.
fn web(replicas: u32) -> String {
    deployment("web", replicas, "1500m", &one_per_node("web"), "")
}

/// A pool of m5 and c6i whose capacity types are `types`.
fn pool_of(types: &str) -> String {
    pool("general", &["m5", "c6i"], WHEN_EMPTY, "").replace("values: [on-demand]", &format!("values: [{types}]"))
}

/// (capacity type, reservation id) of every live node, sorted.
async fn node_capacity(h: &Harness) -> Vec<(String, Option<String>)> {
    let snap = h.world.cluster.snapshot().await.unwrap();
    let mut out: Vec<(String, Option<String>)> = snap
        .nodes
        .iter()
        .map(|n| {
            let ct = n.labels.get("karpenter.sh/capacity-type").cloned().unwrap_or_default();
            (ct, n.labels.get(RESERVATION_ID_LABEL).cloned())
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_two_instance_reservation_takes_two_of_three_nodes_and_labels_them() {
    let p = base(&[pool_of("on-demand, reserved")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.world.cloud.add_reservation("default", "cr-0123456789abcdef0", "m5.large", "us-east-1b", 2);
    h.apply(&web(3));
    assert!(h.until(300, |w| w.cluster.running("default", "web") == 3).await, "{}", h.timeline());
    let reserved = Some("cr-0123456789abcdef0".to_string());
    assert_eq!(
        node_capacity(&h).await,
        vec![("on-demand".into(), None), ("reserved".into(), reserved.clone()), ("reserved".into(), reserved)],
        "{}",
        h.timeline()
    );
    let snap = h.world.cluster.snapshot().await.unwrap();
    for n in snap.nodes.iter().filter(|n| n.labels.contains_key(RESERVATION_ID_LABEL)) {
        assert_eq!(n.labels.get(RESERVATION_TYPE_LABEL).map(String::as_str), Some("default"));
        assert_eq!(n.labels.get("node.kubernetes.io/instance-type").map(String::as_str), Some("m5.large"));
        assert_eq!(n.labels.get("topology.kubernetes.io/zone").map(String::as_str), Some("us-east-1b"));
    }
    // Exactly three launches: the plan never sent a third node to a full reservation.
    assert_eq!(h.count("launch"), 3, "{}", h.timeline());
    // The reservation is full now: one more replica goes on-demand.
    h.scale("web", 4);
    assert!(h.until(300, |w| w.cluster.running("default", "web") == 4).await, "{}", h.timeline());
    let kinds = node_capacity(&h).await;
    assert_eq!(kinds.iter().filter(|(ct, _)| ct == "reserved").count(), 2, "{kinds:?}");
    assert_eq!(h.count("launch"), 4, "{}", h.timeline());
}

#[tokio::test]
async fn a_pool_that_does_not_allow_reserved_leaves_the_reservation_alone() {
    let p = base(&[pool_of("on-demand")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.world.cloud.add_reservation("default", "cr-1", "m5.large", "us-east-1b", 5);
    h.apply(&web(2));
    assert!(h.until(300, |w| w.cluster.running("default", "web") == 2).await, "{}", h.timeline());
    assert_eq!(node_capacity(&h).await, vec![("on-demand".into(), None), ("on-demand".into(), None)]);
}

fn claim(name: &str, options: &[(CapacityType, f64)]) -> NodeClaim {
    let option = |&(capacity_type, price): &(CapacityType, f64)| LaunchOption {
        instance_type: "m5.large".into(),
        zone: "us-east-1a".into(),
        capacity_type,
        price,
    };
    NodeClaim {
        name: name.into(),
        node_pool: "general".into(),
        node_class: "default".into(),
        options: options.iter().map(option).collect(),
        policy_revision: "main@sha1:1".into(),
        tags: BTreeMap::new(),
    }
}

/// The free count the simulated EC2's catalog gives the reserved m5.large in us-east-1a.
async fn free(cloud: &SimCloud) -> Option<u32> {
    let c = cloud.catalog().await.unwrap();
    let t = c.get("m5.large").unwrap();
    let o = t.offerings.iter().find(|o| o.capacity_type == CapacityType::Reserved)?;
    o.reservation.as_ref().map(|r| r.available)
}

#[tokio::test]
async fn the_simulated_reservation_fills_refuses_when_full_and_frees_on_termination() {
    let cloud = SimCloud::new("test.example.com", VirtualClock::default());
    cloud.add_reservation("default", "cr-1", "m5.large", "us-east-1a", 1);
    let (reserved, on_demand) = ((CapacityType::Reserved, 0.096 / 1e7), (CapacityType::OnDemand, 0.096));
    assert_eq!(free(&cloud).await, Some(1));
    let first = cloud.create(&claim("a", &[reserved]), &Avoid::new()).await.unwrap();
    assert_eq!(first.instance.capacity_type, CapacityType::Reserved);
    assert_eq!(first.instance.tags.get(RESERVATION_ID_LABEL).map(String::as_str), Some("cr-1"));
    assert_eq!(free(&cloud).await, Some(0));
    let key = OfferingKey::new("m5.large", "us-east-1a", CapacityType::Reserved);
    // Full: the reserved option is refused, and nothing else is launched in the same call (one
    // capacity type per CreateFleet); the caller avoids it and asks again.
    let second = cloud.create(&claim("b", &[reserved, on_demand]), &Avoid::new()).await;
    assert_eq!(second.err(), Some(CloudError::InsufficientCapacity { offerings: vec![key.clone()] }));
    let avoid = Avoid::from([key.clone()]);
    let second = cloud.create(&claim("b", &[reserved, on_demand]), &avoid).await.unwrap();
    assert_eq!(second.instance.capacity_type, CapacityType::OnDemand);
    assert!(second.refused.is_empty(), "what the caller avoids is not reported");
    let only = cloud.create(&claim("c", &[reserved]), &Avoid::new()).await;
    assert_eq!(only.err(), Some(CloudError::InsufficientCapacity { offerings: vec![key.clone()] }));
    cloud.delete(&first.instance.id).await.unwrap();
    assert_eq!(free(&cloud).await, Some(1), "a termination frees its place");
    // Another class's launch never goes into it.
    let mut theirs = claim("d", &[reserved]);
    theirs.node_class = "gpu".into();
    let refused = cloud.create(&theirs, &Avoid::new()).await;
    assert_eq!(refused.err(), Some(CloudError::InsufficientCapacity { offerings: vec![key] }));
    let again = cloud.create(&claim("c", &[reserved]), &Avoid::new()).await.unwrap();
    assert_eq!(again.instance.capacity_type, CapacityType::Reserved);
}

#[tokio::test]
async fn a_pool_whose_class_does_not_select_the_reservation_leaves_it_alone() {
    let p = base(&[pool_of("on-demand, reserved")], "  dryRun: false");
    let mut h = Harness::new(&p);
    // Another class's reservation: the pool (class `default`) allows reserved capacity, yet
    // plans no node into it, so no launch fails and nothing is avoided.
    h.world.cloud.add_reservation("gpu", "cr-1", "m5.large", "us-east-1b", 5);
    h.apply(&web(2));
    assert!(h.until(300, |w| w.cluster.running("default", "web") == 2).await, "{}", h.timeline());
    assert_eq!(node_capacity(&h).await, vec![("on-demand".into(), None), ("on-demand".into(), None)]);
    assert_eq!(h.count("launch-failed"), 0, "{}", h.timeline());
    assert_eq!(h.count("launch"), 2, "{}", h.timeline());
}
