//! The board from plain data: pure, and free of the clock (it carries instants, not ages).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::{
    Bar, Board, Cost, LIST_PENDING_UP_TO, LIST_PODS_UP_TO, NodeState, NodeView, OWNERS_PER_NODE, OwnerCount, Pending,
    PendingPod, PodDot, PoolUsage, ReasonCount, Totals,
};
use crate::cloud::provider::{Instance, InstanceState, tags};
use crate::cluster::marks::{self, DisruptionMarks};
use crate::cluster::{ClusterNode, ClusterPod, Owner, Phase, Snapshot};
use crate::rules::Rules;
use crate::scheduling::allocatable;
use crate::scheduling::catalog::{CAPACITY_TYPE, Catalog, INSTANCE_TYPE, ZONE};
use crate::scheduling::pool::NODE_POOL_LABEL;

/// What a board is built from.
pub struct Inputs<'a> {
    pub cluster: &'a str,
    pub snapshot: &'a Snapshot,
    /// The cloud's instances as the capacity loop last listed them.
    pub instances: &'a [Instance],
    /// The policy in force; none before the first.
    pub rules: Option<&'a Rules>,
    /// For the capacity of instance types, as limits count it.
    pub catalog: Option<&'a Catalog>,
    /// Pods the loop could not place, with the reason it gave (`namespace/name` → reason).
    pub unplaced: &'a BTreeMap<String, String>,
    /// Pods the loop has planned a node for, with what they wait for (`namespace/name` →
    /// `NodeClaim … launching`, `nominated to node …`).
    pub planned: &'a BTreeMap<String, String>,
    /// Instances the loop last saw with a node: listed without one now, they are terminating.
    pub registered: &'a HashSet<String>,
    /// This replica does not lead: the capacity loop runs elsewhere, so nothing above is known.
    pub standby: bool,
}

/// Why a pending pod waits, when the loop gave no reason of its own.
pub const WAITING_FOR_LAUNCH: &str = "waiting for a node being launched";
pub const WAITING_FOR_PASS: &str = "waiting for the next capacity pass";
pub const NO_POLICY: &str = "no policy in force yet";
pub const STANDBY: &str = "this replica is a standby: the leader's capacity loop decides";

pub fn board(i: &Inputs) -> Board {
    let snapshot = i.snapshot;
    let by_instance: HashMap<&str, &Instance> = i.instances.iter().map(|x| (x.id.as_str(), x)).collect();
    let defaults = allocatable::KubeletSettings::default();
    let types: HashMap<&str, i64> = i
        .catalog
        .map(|c| c.types.iter().map(|t| (t.name.as_str(), allocatable::max_pods(t, &defaults))).collect())
        .unwrap_or_default();
    let bound = snapshot.pods.iter().filter(|p| p.node.is_some()).count();
    let listed = bound <= LIST_PODS_UP_TO;
    let mut on_node: HashMap<&str, Vec<&ClusterPod>> = HashMap::new();
    for p in &snapshot.pods {
        if let Some(n) = &p.node {
            on_node.entry(n.as_str()).or_default().push(p);
        }
    }
    let mut nodes = Vec::with_capacity(snapshot.nodes.len());
    let mut seen_instances = HashSet::new();
    let claims = Claims::of(snapshot, i.instances);
    for n in &snapshot.nodes {
        let instance = n.instance_id().and_then(|id| by_instance.get(id).copied());
        if let Some(x) = instance {
            seen_instances.insert(x.id.as_str());
        }
        let pods = on_node.remove(n.name.as_str()).unwrap_or_default();
        nodes.push(node_view(n, instance, &pods, listed, &claims));
    }
    for x in i.instances {
        if seen_instances.contains(x.id.as_str()) || x.state == InstanceState::Terminated {
            continue;
        }
        nodes.push(unregistered(x, &types, i.registered.contains(x.id.as_str())));
    }
    nodes.sort_by(|a, b| (&a.node_pool, &a.zone, &a.name).cmp(&(&b.node_pool, &b.zone, &b.name)));
    let launching = nodes.iter().any(|n| matches!(n.state, NodeState::Launching | NodeState::Registered));
    let pending = pending(i, launching);
    let mut totals = Totals { nodes: nodes.len(), pods: bound, pending: pending.total, ..Totals::default() };
    totals.running = snapshot.pods.iter().filter(|p| p.node.is_some() && p.phase == Phase::Running).count();
    for n in &nodes {
        totals.cpu.add(n.cpu);
        totals.memory.add(n.memory);
    }
    let cost = Cost::hourly(nodes.iter().filter_map(|n| n.price_per_hour).fold(0.0, |a, b| a + b));
    Board {
        cluster: i.cluster.to_string(),
        revision: i.rules.map(|r| r.revision.to_string()),
        pools: pools(i, &nodes),
        nodes,
        pending,
        cost,
        pods_listed: listed,
        totals,
    }
}

fn secs(t: Duration) -> f64 {
    t.as_secs_f64()
}

fn owner(p: &ClusterPod) -> Option<String> {
    match &p.owner {
        Owner::Controller(name) | Owner::DaemonSet(name) => Some(format!("{}/{name}", p.namespace)),
        Owner::Mirror | Owner::None => None,
    }
}

fn requested(pods: &[&ClusterPod]) -> (i64, i64) {
    pods.iter().fold((0, 0), |(c, m), p| (c + p.spec.requests.cpu, m + p.spec.requests.memory))
}

/// What node states are judged against, computed once per board: the claims whose node is
/// initialized, and those of instances still alive.
pub struct Claims<'a> {
    initialized: HashSet<&'a str>,
    live: HashSet<&'a str>,
}

impl<'a> Claims<'a> {
    pub fn of(snapshot: &'a Snapshot, instances: &'a [Instance]) -> Claims<'a> {
        let initialized = snapshot.nodes.iter().filter(|n| marks::initialized(n)).filter_map(marks::claim).collect();
        let alive = |x: &&Instance| !matches!(x.state, InstanceState::ShuttingDown | InstanceState::Terminated);
        let live = instances.iter().filter(alive).map(|x| x.claim.as_str()).collect();
        Claims { initialized, live }
    }
}

/// A node's state and, when cordoned or draining, why: its instance first (shutting down), then
/// disruption marks as the drain reads them, then readiness.
pub fn state(n: &ClusterNode, instance: Option<&Instance>, claims: &Claims) -> (NodeState, Option<String>) {
    if instance.is_some_and(|x| matches!(x.state, InstanceState::ShuttingDown | InstanceState::Terminated)) {
        return (NodeState::Terminating, None);
    }
    if marks::disrupting(n) {
        let Some(record) = DisruptionMarks::read(n) else {
            // The drain hands capstan's node back, and leaves anyone else's alone.
            let why =
                if marks::claim(n).is_some() { "no disruption record; being handed back" } else { "not capstan's" };
            return (NodeState::Cordoned, Some(why.into()));
        };
        let pending: Vec<&String> =
            record.replacements.iter().filter(|c| !claims.initialized.contains(c.as_str())).collect();
        if pending.iter().any(|c| !claims.live.contains(c.as_str())) {
            return (
                NodeState::Cordoned,
                Some(format!("{}; a replacement was lost, being handed back", record.reason)),
            );
        }
        if !pending.is_empty() {
            return (NodeState::Cordoned, Some(format!("{}; waiting for its replacement", record.reason)));
        }
        return (NodeState::Draining, Some(record.reason));
    }
    if n.unschedulable {
        return (NodeState::Cordoned, None);
    }
    // capstan's node: it carries the claim once registered, and has an instance of a claim before.
    let managed = marks::claim(n).is_some() || instance.is_some_and(|x| !x.claim.is_empty());
    let state = match (n.ready, managed && !marks::initialized(n)) {
        (true, false) => NodeState::Ready,
        (_, true) => NodeState::Registered,
        (false, false) => NodeState::NotReady,
    };
    (state, None)
}

fn node_view(
    n: &ClusterNode,
    instance: Option<&Instance>,
    pods: &[&ClusterPod],
    listed: bool,
    claims: &Claims,
) -> NodeView {
    let label = |k: &str| n.labels.get(k).cloned();
    let (cpu, memory) = requested(pods);
    let (state, reason) = state(n, instance, claims);
    let revision = match state {
        NodeState::Cordoned | NodeState::Draining => n.annotations.get(marks::DISRUPTION_REVISION).cloned(),
        _ => None,
    }
    .or_else(|| n.annotations.get(marks::POLICY_REVISION).cloned())
    .or_else(|| instance.and_then(|x| x.tags.get(tags::POLICY_REVISION).cloned()));
    NodeView {
        name: n.name.clone(),
        claim: marks::claim(n).map(String::from).or_else(|| instance.map(|x| x.claim.clone())),
        instance: n.instance_id().map(String::from),
        node_pool: label(NODE_POOL_LABEL).or_else(|| instance.map(|x| x.node_pool.clone())),
        zone: label(ZONE).or_else(|| instance.map(|x| x.zone.clone())),
        instance_type: label(INSTANCE_TYPE).or_else(|| instance.map(|x| x.instance_type.clone())),
        capacity_type: label(CAPACITY_TYPE).or_else(|| instance.map(|x| x.capacity_type.label().to_string())),
        price_per_hour: instance.map(|x| x.price),
        since: secs(instance.map_or(n.created_at, |x| x.launched_at.min(n.created_at))),
        state,
        reason,
        revision,
        cpu: Bar { requested: cpu, allocatable: n.allocatable.cpu },
        memory: Bar { requested: memory, allocatable: n.allocatable.memory },
        pods: pods.len(),
        max_pods: (n.allocatable.pods > 0).then_some(n.allocatable.pods),
        pod_list: if listed { pods.iter().map(|p| dot(p)).collect() } else { Vec::new() },
        owners: if listed { Vec::new() } else { owners(pods) },
    }
}

fn dot(p: &ClusterPod) -> PodDot {
    PodDot {
        name: p.key(),
        owner: owner(p),
        running: p.phase == Phase::Running,
        daemon: matches!(p.owner, Owner::DaemonSet(_) | Owner::Mirror),
    }
}

/// Pods by owner, the most first; beyond [`OWNERS_PER_NODE`] summed as `other`.
fn owners(pods: &[&ClusterPod]) -> Vec<OwnerCount> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for p in pods {
        *counts.entry(owner(p).unwrap_or_else(|| "(none)".into())).or_default() += 1;
    }
    let mut all: Vec<OwnerCount> = counts.into_iter().map(|(owner, pods)| OwnerCount { owner, pods }).collect();
    all.sort_by(|a, b| b.pods.cmp(&a.pods).then_with(|| a.owner.cmp(&b.owner)));
    if all.len() > OWNERS_PER_NODE {
        let rest: usize = all.drain(OWNERS_PER_NODE - 1..).map(|o| o.pods).sum();
        all.push(OwnerCount { owner: "other".into(), pods: rest });
    }
    all
}

/// An instance without a node: launching, or on its way out when it is shutting down or had a
/// node when the loop last looked (the instances listed are as of the loop's last pass, the
/// nodes as of now).
fn unregistered(x: &Instance, types: &HashMap<&str, i64>, had_node: bool) -> NodeView {
    let (state, reason) = if x.state == InstanceState::ShuttingDown {
        (NodeState::Terminating, None)
    } else if had_node {
        (NodeState::Terminating, Some("its node is gone".to_string()))
    } else {
        (NodeState::Launching, None)
    };
    NodeView {
        name: x.claim.clone(),
        claim: Some(x.claim.clone()),
        instance: Some(x.id.clone()),
        node_pool: Some(x.node_pool.clone()),
        zone: Some(x.zone.clone()),
        instance_type: Some(x.instance_type.clone()),
        capacity_type: Some(x.capacity_type.label().to_string()),
        price_per_hour: Some(x.price),
        since: secs(x.launched_at),
        state,
        reason,
        revision: x.tags.get(tags::POLICY_REVISION).cloned(),
        max_pods: types.get(x.instance_type.as_str()).copied(),
        ..NodeView::default()
    }
}

fn pending(i: &Inputs, launching: bool) -> Pending {
    let mut waiting: Vec<&ClusterPod> = i.snapshot.pending().collect();
    waiting.sort_by(|a, b| (a.created_at, &a.namespace, &a.name).cmp(&(b.created_at, &b.namespace, &b.name)));
    let reason = |p: &ClusterPod| -> String {
        let key = p.key();
        if let Some(r) = i.unplaced.get(&key) {
            return r.clone();
        }
        if let Some(w) = i.planned.get(&key) {
            return format!("waiting for {w}");
        }
        let why = if i.standby {
            STANDBY
        } else if i.rules.is_none() {
            NO_POLICY
        } else if launching {
            WAITING_FOR_LAUNCH
        } else {
            WAITING_FOR_PASS
        };
        why.to_string()
    };
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    let mut pods = Vec::new();
    for p in &waiting {
        let why = reason(p);
        if pods.len() < LIST_PENDING_UP_TO {
            pods.push(PendingPod { name: p.key(), owner: owner(p), since: secs(p.created_at), reason: why.clone() });
        }
        *by_reason.entry(why).or_default() += 1;
    }
    let mut by_reason: Vec<ReasonCount> =
        by_reason.into_iter().map(|(reason, pods)| ReasonCount { reason, pods }).collect();
    by_reason.sort_by(|a, b| b.pods.cmp(&a.pods).then_with(|| a.reason.cmp(&b.reason)));
    Pending { total: waiting.len(), pods, by_reason }
}

/// Each NodePool of the policy with its nodes' capacity (the catalog's, as limits count it, else
/// the node's allocatable), launching ones included; pools no longer in the policy that still
/// have nodes come after, without limits.
fn pools(i: &Inputs, nodes: &[NodeView]) -> Vec<PoolUsage> {
    let capacity: HashMap<&str, (i64, i64)> = i
        .catalog
        .map(|c| {
            c.types
                .iter()
                .map(|t| {
                    let cap = crate::scheduling::view::capacity(t);
                    (t.name.as_str(), (cap.cpu, cap.memory))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out: Vec<PoolUsage> = i
        .rules
        .map(|r| {
            r.pools
                .iter()
                .map(|p| PoolUsage {
                    name: p.name.clone(),
                    limit_nodes: p.limits.nodes,
                    limit_cpu: p.limits.cpu,
                    limit_memory: p.limits.memory,
                    ..PoolUsage::default()
                })
                .collect()
        })
        .unwrap_or_default();
    for n in nodes {
        let Some(pool) = &n.node_pool else { continue };
        let at = match out.iter().position(|p| &p.name == pool) {
            Some(at) => at,
            None => {
                out.push(PoolUsage { name: pool.clone(), ..PoolUsage::default() });
                out.len() - 1
            }
        };
        let (cpu, memory) = n
            .instance_type
            .as_deref()
            .and_then(|t| capacity.get(t).copied())
            .unwrap_or((n.cpu.allocatable, n.memory.allocatable));
        let p = &mut out[at];
        p.nodes += 1;
        p.cpu += cpu;
        p.memory += memory;
        p.cost = Cost::hourly(p.cost.per_hour + n.price_per_hour.unwrap_or(0.0));
    }
    out
}
