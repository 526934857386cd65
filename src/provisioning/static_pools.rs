//! Static NodePools (`spec.replicas`): kept at a node count whatever the pods ask, as
//! Karpenter's static provisioning and deprovisioning controllers do. Pure: [`plan`] takes what
//! provisioning sees and returns the launches and removals that bring each static pool to its
//! count.
//!
//! ```text
//! per static pool: members = live instances of the pool
//!                  active  = members whose node is not being disrupted (in flight included)
//!                  leaving = members whose node is being disrupted
//!   active < replicas → launch replicas − active, within limits.nodes − (active + leaving)
//!   active > replicas → remove active − replicas: not yet registered first, then empty nodes,
//!                       then the cheapest to disrupt; nodes with do-not-disrupt pods last
//! ```
//!
//! Removals ignore disruption budgets (the user asked for fewer nodes) but are drained through
//! the Eviction API. Pending pods never launch a static pool's node: provisioning leaves these
//! pools out, though their nodes take pods like any other.
//!
//! Claim names never repeat: a pool's launches are `<pool>-static-<n>` and its one-for-one
//! replacements `<pool>-replace-<n>`, `n` one above the highest of that form among every
//! listed instance of the pool, terminated ones included (EC2 lists them for about an hour).
//! A launch not listed yet is named again by a repeated pass (the provider finds it by its
//! claim tag, or CreateFleet's ClientToken answers the same), and the capacity loop passes
//! the launches it made but the cloud does not list yet among the instances, so they count
//! as members and push `n` past them.

use std::collections::HashMap;
use std::time::Duration;

use crate::cloud::provider::{Instance, InstanceState};
use crate::cluster::marks;
use crate::cluster::model::{ClusterNode, ClusterPod, Snapshot};
use crate::scheduling::catalog::INSTANCE_TYPE;
use crate::scheduling::plan::NewClaim;
use crate::scheduling::pod::pod;
use crate::scheduling::pool::{Limits, NODE_POOL_LABEL, PoolSpec, Usage};
use crate::scheduling::resources::Resources;
use crate::scheduling::view;
use crate::scheduling::{Input, Strategy, solve};

use super::{Launch, Request, launch};

/// A node (or instance not yet registered) of a static pool.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub instance: &'a Instance,
    pub node: Option<&'a ClusterNode>,
}

impl Member<'_> {
    /// Its node is being disrupted (replaced, expired or removed).
    pub fn leaving(&self) -> bool {
        self.node.is_some_and(marks::disrupting)
    }
}

/// The live instances of pool `name` with their nodes, in instance id order.
pub fn members<'a>(snapshot: &'a Snapshot, instances: &'a [Instance], name: &str) -> Vec<Member<'a>> {
    let by_id: HashMap<&str, &ClusterNode> =
        snapshot.nodes.iter().filter_map(|n| Some((n.instance_id()?, n))).collect();
    let mut out: Vec<Member> = instances
        .iter()
        .filter(|i| i.node_pool == name && !i.claim.is_empty())
        .filter(|i| matches!(i.state, InstanceState::Pending | InstanceState::Running))
        .map(|i| Member { instance: i, node: by_id.get(i.id.as_str()).copied() })
        .collect();
    out.sort_by(|a, b| a.instance.id.cmp(&b.instance.id));
    out
}

/// How many more nodes `limits.nodes` allows, counting nodes on their way out.
pub fn room(limits: &Limits, members: usize) -> u64 {
    limits.nodes.map_or(u64::MAX, |n| (n.max(0) as u64).saturating_sub(members as u64))
}

/// The cluster capacity a static launch adds to: every node and in-flight instance, none of
/// which takes the static pool's placeholder.
fn taken(req: &Request) -> Vec<crate::scheduling::node::Node> {
    let mut nodes = super::nodes::capacity(req.snapshot, req.instances, &req.rules.pools, req.catalog);
    for n in &mut nodes {
        n.unschedulable = true;
    }
    nodes
}

/// A claim for one node of static pool `spec`: the pool's cheapest offering, chosen by the
/// scheduler for a placeholder pod that only this pool can take and that tolerates its
/// taints, within the ClusterPolicy limits given the cluster's `nodes`. Named later.
pub fn claim(req: &Request, spec: &PoolSpec, nodes: Vec<crate::scheduling::node::Node>) -> Result<NewClaim, String> {
    let placeholder = pod()
        .name(&format!("static/{}", spec.name))
        .node_selector(NODE_POOL_LABEL, &spec.name)
        .tolerate("", "", None)
        .build();
    let input = Input {
        pods: vec![placeholder],
        nodes,
        daemonsets: req.snapshot.daemonsets.clone(),
        pools: vec![spec.clone()],
        catalog: req.catalog,
        cluster_limits: req.rules.cluster.limits.clone(),
        strategy: Strategy::CostOptimal,
    };
    let mut plan = solve(&input);
    if let Some(u) = plan.unschedulable.first() {
        return Err(u.reason.clone());
    }
    plan.claims.pop().ok_or_else(|| format!("NodePool {} offers no instance type", spec.name))
}

/// One above the highest `n` of the claims `<pool>-<kind>-<n>` among `instances` (any state).
pub fn next_number(instances: &[Instance], pool: &str, kind: &str) -> u64 {
    let prefix = format!("{pool}-{kind}-");
    instances
        .iter()
        .filter(|i| i.node_pool == pool)
        .filter_map(|i| i.claim.strip_prefix(&prefix)?.parse::<u64>().ok())
        .max()
        .map_or(0, |n| n + 1)
}

/// `c` launched as claim `name`.
pub fn named(c: NewClaim, rules: &crate::rules::Rules, name: String) -> Launch {
    let mut l = launch(c, rules);
    l.claim.name.clone_from(&name);
    l.plan.name = name;
    l
}

/// One node (or unregistered instance) a static pool no longer needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Removal {
    pub node_pool: String,
    pub instance: String,
    pub claim: String,
    pub instance_type: String,
    pub price: f64,
    /// `None` while the instance has not registered: it is terminated at once.
    pub node: Option<String>,
    /// Pods a drain evicts.
    pub pods: usize,
}

/// What keeps the static pools at their counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replicas {
    pub launches: Vec<Launch>,
    pub removals: Vec<Removal>,
    /// (pool, why it is not at its count) when it cannot get there now.
    pub short: Vec<(String, String)>,
}

/// Launches and removals that bring every static pool to its `replicas`.
pub fn plan(req: &Request, now: Duration) -> Replicas {
    let mut out = Replicas::default();
    let mut pods: HashMap<&str, Vec<&ClusterPod>> = HashMap::new();
    for p in req.snapshot.pods.iter().filter(|p| !p.is_node_bound()) {
        if let Some(n) = &p.node {
            pods.entry(n.as_str()).or_default().push(p);
        }
    }
    for (spec, rules) in req.rules.pools.iter().zip(&req.rules.pool_rules) {
        let Some(replicas) = rules.replicas else { continue };
        let members = members(req.snapshot, req.instances, &spec.name);
        let active: Vec<&Member> = members.iter().filter(|m| !m.leaving()).collect();
        let have = active.len() as u64;
        if have < replicas {
            let want = replicas - have;
            let granted = want.min(room(&spec.limits, members.len()));
            if granted < want {
                let limit = spec.limits.nodes.unwrap_or_default();
                out.short.push((spec.name.clone(), format!("limits.nodes {limit} reached ({} nodes)", members.len())));
            }
            let nodes = taken(req);
            let (mut used, mut pool_used) = (Usage::default(), Usage::default());
            for n in &nodes {
                let cap = node_capacity(n, req.catalog);
                used.add(&cap);
                if n.node_pool.as_deref() == Some(spec.name.as_str()) {
                    pool_used.add(&cap);
                }
            }
            let c = match claim(req, spec, nodes) {
                Ok(c) => c,
                Err(why) => {
                    out.short.push((spec.name.clone(), why));
                    continue;
                }
            };
            let cap = req.catalog.get(&c.instance_type).map_or_else(|| c.allocatable.clone(), view::capacity);
            let first = next_number(req.instances, &spec.name, "static");
            for k in 0..granted {
                if let Some(what) = req.rules.cluster.limits.exceeded_by(&used, &cap) {
                    out.short.push((spec.name.clone(), format!("cluster limit on {what} (ClusterPolicy) reached")));
                    break;
                }
                if let Some(what) = spec.limits.exceeded_by(&pool_used, &cap) {
                    out.short.push((spec.name.clone(), format!("NodePool {} limit on {what} reached", spec.name)));
                    break;
                }
                used.add(&cap);
                pool_used.add(&cap);
                out.launches.push(named(c.clone(), req.rules, format!("{}-static-{}", spec.name, first + k)));
            }
        } else if have > replicas {
            let mut ranked: Vec<(u8, f64, &Member)> = active
                .into_iter()
                .map(|m| {
                    let on = m.node.map(|n| pods.get(n.name.as_str()).map_or(&[][..], Vec::as_slice)).unwrap_or(&[]);
                    rank(m, on, req.snapshot, rules.expire_after, now)
                })
                .collect();
            ranked.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.instance.id.cmp(&b.2.instance.id)));
            for (_, _, m) in ranked.into_iter().take((have - replicas) as usize) {
                let count = m.node.map_or(0, |n| pods.get(n.name.as_str()).map_or(0, Vec::len));
                out.removals.push(Removal {
                    node_pool: spec.name.clone(),
                    instance: m.instance.id.clone(),
                    claim: m.instance.claim.clone(),
                    instance_type: m.instance.instance_type.clone(),
                    price: m.instance.price,
                    node: m.node.map(|n| n.name.clone()),
                    pods: count,
                });
            }
        }
    }
    out
}

/// What a node counts for against the cluster limits, as the scheduler counts it.
fn node_capacity(n: &crate::scheduling::node::Node, catalog: &crate::scheduling::catalog::Catalog) -> Resources {
    n.label(INSTANCE_TYPE).and_then(|t| catalog.get(t)).map_or_else(
        || Resources { cpu: n.allocatable.cpu, memory: n.allocatable.memory, ..Resources::default() },
        view::capacity,
    )
}

/// Removal order: (tier, cost). Tier 0 not registered, 1 empty, 2 with pods, 3 with a pod or
/// node that asks not to be disrupted; within a tier, pods' eviction cost times the share of
/// the node's lifetime left.
fn rank<'a>(
    m: &'a Member,
    pods: &[&ClusterPod],
    snapshot: &Snapshot,
    expire: Option<Duration>,
    now: Duration,
) -> (u8, f64, &'a Member<'a>) {
    let Some(node) = m.node else { return (0, 0.0, m) };
    let until = |p: &ClusterPod| snapshot.do_not_disrupt_until.get(&p.key()).is_some_and(|u| now < *u);
    let held = node.do_not_disrupt() || pods.iter().any(|p| p.do_not_disrupt || until(p));
    if pods.is_empty() && !held {
        return (1, 0.0, m);
    }
    let cost: f64 = pods.iter().map(|p| p.eviction.cost()).sum();
    let left = expire.filter(|e| !e.is_zero()).map_or(1.0, |e| {
        let age = now.saturating_sub(m.instance.launched_at);
        (1.0 - age.as_secs_f64() / e.as_secs_f64()).clamp(0.0, 1.0)
    });
    (if held { 3 } else { 2 }, cost * left, m)
}
