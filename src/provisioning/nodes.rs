//! The capacity the scheduler can place pods on: registered nodes with their pods, and
//! instances still launching (in flight), with the labels capstan gives their nodes.

use std::collections::{HashMap, HashSet};

use crate::cloud::provider::Instance;
use crate::cluster::marks;
use crate::cluster::model::{ClusterPod, Snapshot};
use crate::policy::meta::Labels;
use crate::scheduling::allocatable::allocatable;
use crate::scheduling::catalog::{CAPACITY_TYPE, CapacityType, Catalog, HOSTNAME, InstanceType, ZONE};
use crate::scheduling::node::Node;
use crate::scheduling::pool::{NODE_POOL_LABEL, PoolSpec};
use crate::scheduling::reserved::RESERVATION_LABELS;
use crate::scheduling::view::daemonset_overhead;

/// Labels of instance-type facts capstan puts on every node it launches.
const TYPE_LABELS: [&str; 9] = [
    "node.kubernetes.io/instance-type",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "karpenter.k8s.aws/instance-category",
    "karpenter.k8s.aws/instance-family",
    "karpenter.k8s.aws/instance-generation",
    "karpenter.k8s.aws/instance-size",
    "karpenter.k8s.aws/instance-cpu",
    "karpenter.k8s.aws/instance-memory",
];

/// The labels a node of `instance` gets: the pool's, the type's, zone and capacity type, and
/// the capacity reservation it was launched into (from the instance's tags).
pub fn node_labels(instance: &Instance, t: Option<&InstanceType>, pool: Option<&PoolSpec>) -> Labels {
    let mut labels = pool.map(|p| p.labels.clone()).unwrap_or_default();
    if let Some(t) = t {
        for k in TYPE_LABELS {
            if let Some(v) = t.label(k) {
                labels.insert(k.to_string(), v);
            }
        }
    }
    labels.insert(ZONE.to_string(), instance.zone.clone());
    labels.insert(CAPACITY_TYPE.to_string(), instance.capacity_type.label().to_string());
    if instance.capacity_type == CapacityType::Reserved {
        for k in RESERVATION_LABELS {
            if let Some(v) = instance.tags.get(k) {
                labels.insert(k.to_string(), v.clone());
            }
        }
    }
    labels.insert(NODE_POOL_LABEL.to_string(), instance.node_pool.clone());
    labels
}

/// Registered nodes and in-flight instances as the scheduler sees them. A node not yet Ready
/// counts as in flight: pods may be planned onto it, but the scheduler will bind them later.
/// Until capstan has initialized a node it launched, the node is seen as its NodeClaim makes
/// it: with its pool's labels and taints (a kubelet registers the Node before capstan applies
/// them) and without its pool's startup taints, so the pods it was launched for still fit it.
pub fn capacity(snapshot: &Snapshot, instances: &[Instance], pools: &[PoolSpec], catalog: &Catalog) -> Vec<Node> {
    let mut by_node: HashMap<&str, Vec<&ClusterPod>> = HashMap::new();
    for p in &snapshot.pods {
        if let Some(n) = &p.node {
            by_node.entry(n.as_str()).or_default().push(p);
        }
    }
    let by_id: HashMap<&str, &Instance> = instances.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut out: Vec<Node> = Vec::with_capacity(snapshot.nodes.len() + 8);
    for n in &snapshot.nodes {
        let instance = n.instance_id().and_then(|id| by_id.get(id)).copied();
        let p = instance.map_or(0.0, |i| i.price);
        let mut node = n.scheduling_node(by_node.get(n.name.as_str()).into_iter().flatten().copied(), p);
        if let Some(i) = instance
            && !marks::initialized(n)
        {
            as_claimed(&mut node, i, pools, catalog);
        }
        if !n.ready && !n.unschedulable {
            node.in_flight = true;
            node.unschedulable = false;
            node.taints.retain(|t| t.key != crate::cluster::model::NOT_READY_TAINT);
        }
        out.push(node);
    }
    let registered: HashSet<&str> = snapshot.nodes.iter().filter_map(|n| n.instance_id()).collect();
    for i in instances {
        if registered.contains(&i.id.as_str()) {
            continue;
        }
        let t = catalog.get(&i.instance_type);
        let pool = pools.iter().find(|p| p.name == i.node_pool);
        let Some(t) = t else { continue };
        let mut labels = node_labels(i, Some(t), pool);
        labels.insert(HOSTNAME.to_string(), i.id.clone());
        let kubelet = pool.map(|p| p.kubelet.clone()).unwrap_or_default();
        let overhead = pool.map(|p| daemonset_overhead(p, &snapshot.daemonsets)).unwrap_or_default();
        out.push(Node {
            name: i.id.clone(),
            labels,
            taints: pool.map(|p| p.taints.clone()).unwrap_or_default(),
            allocatable: allocatable(t, &kubelet),
            requested: overhead,
            pods: Vec::new(),
            host_ports: Vec::new(),
            in_flight: true,
            unschedulable: false,
            node_pool: Some(i.node_pool.clone()),
            price: i.price,
        });
    }
    out
}

/// A node of `instance` not yet initialized, as its NodeClaim makes it: the labels and taints
/// capstan registers it with (present or not yet), without the startup taints.
fn as_claimed(node: &mut Node, instance: &Instance, pools: &[PoolSpec], catalog: &Catalog) {
    let pool = pools.iter().find(|p| p.name == instance.node_pool);
    if !node.labels.contains_key(NODE_POOL_LABEL) {
        node.labels.extend(node_labels(instance, catalog.get(&instance.instance_type), pool));
        node.node_pool = Some(instance.node_pool.clone());
    }
    let Some(pool) = pool else { return };
    for t in &pool.taints {
        if !node.taints.iter().any(|x| x.key == t.key && x.effect == t.effect) {
            node.taints.push(t.clone());
        }
    }
    node.taints.retain(|t| !pool.startup_taints.iter().any(|s| s.key == t.key && s.effect == t.effect));
}
