//! What the capacity loop tells the world: a timeline of events (for `capstan demo`, logs and
//! tests), the status page's numbers, and Prometheus metrics.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Serialize;
use serde_json::Value;

use crate::cloud::provider::{Instance, InstanceState};
use crate::cluster::Snapshot;
use crate::kops::decisions::Decision;
use crate::rules::Rules;
use crate::scheduling::catalog::{Catalog, INSTANCE_TYPE};
use crate::scheduling::pool::NODE_POOL_LABEL;

/// One thing that happened, at a time on the loop's clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopEvent {
    /// Time since the epoch of the loop's clock.
    #[serde(skip)]
    pub at: Duration,
    /// `scale-up-decision`, `launch`, `node-registered`, `node-ready`, `disruption-decision`,
    /// `cordon`, `evict`, `evict-blocked`, `terminate`, `unschedulable`, …
    pub event: String,
    /// A sentence for people.
    pub message: String,
    pub detail: Value,
}

/// Most recent decisions kept for the status page.
pub const RECENT_DECISIONS: usize = 50;

/// The loop's state for `/status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoopStatus {
    pub revision: String,
    pub pending_pods: usize,
    pub nodes_per_node_pool: BTreeMap<String, usize>,
    /// NodeClaims launched whose node is not initialized yet.
    pub in_flight: Vec<String>,
    /// Nodes being drained.
    pub draining: Vec<String>,
    pub recent_decisions: VecDeque<Decision>,
    pub last_error: Option<String>,
    /// The oldest pod waiting for capacity: when it was created (loop clock) and its name.
    #[serde(skip)]
    pub oldest_pending: Option<(Duration, String)>,
    /// The last launch that failed for lack of any usable offering: when and why.
    #[serde(skip)]
    pub last_unserved: Option<(Duration, String)>,
    /// What the status board is drawn from, as of the last pass: the cloud's instances, the
    /// catalog, the rules in force, and the pods the loop could not place with its reason.
    #[serde(skip)]
    pub seen: Seen,
}

/// The last pass's inputs, shared rather than copied.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The cloud's instances as listed at the start of the pass, with what the pass itself did
    /// to them: instances it launched are added, and those it terminated are `ShuttingDown`.
    pub instances: Arc<Vec<Instance>>,
    pub catalog: Option<Arc<Catalog>>,
    pub rules: Option<Arc<Rules>>,
    /// `namespace/name` → why the loop cannot place the pod: the scheduler found no place for
    /// it, or the launch planned for it failed (or was not carried out, in a dry run).
    pub unplaced: Arc<BTreeMap<String, String>>,
    /// `namespace/name` → what the pending pod waits for, from the latest provisioning verdict:
    /// a NodeClaim launched for it, or the node or launching NodeClaim it was nominated to. A
    /// pending pod is in at most one of `unplaced` and `planned`; pods no longer pending are in
    /// neither. Each map is replaced (a new `Arc`) only when it changes.
    pub planned: Arc<BTreeMap<String, String>>,
    /// The instances whose node the pass's snapshot held. One listed here and without a node
    /// now is on its way out (the pass may have terminated it after the board last heard), not
    /// launching: a node never goes back to launching.
    pub registered: Arc<HashSet<String>>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub nodepool: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TerminationLabels {
    pub nodepool: String,
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolResourceLabels {
    pub nodepool: String,
    /// `cpu` (cores), `memory` (bytes) or `nodes`.
    pub resource: &'static str,
}

/// A gauge holding a float (cores, dollars, seconds since the epoch).
type FloatGauge = Gauge<f64, AtomicU64>;

/// What one NodePool holds as its limits are checked: its registered nodes and the instances
/// still launching for it, each counted at its instance type's capacity (a node's allocatable
/// when its type is not in the catalog).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCount {
    pub nodes: i64,
    /// Millicores.
    pub cpu: i64,
    /// Bytes.
    pub memory: i64,
}

/// Each NodePool's nodes, cpu and memory, from a pass's snapshot and instances: a node counts
/// for the pool its label names (or, before capstan labels it, its instance's pool); an
/// instance without a node yet counts while it is pending or running.
pub fn pool_counts(snapshot: &Snapshot, instances: &[Instance], catalog: &Catalog) -> BTreeMap<String, PoolCount> {
    let capacity: HashMap<&str, (i64, i64)> = catalog
        .types
        .iter()
        .map(|t| {
            let c = crate::scheduling::view::capacity(t);
            (t.name.as_str(), (c.cpu, c.memory))
        })
        .collect();
    let by_id: HashMap<&str, &Instance> = instances.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut out: BTreeMap<String, PoolCount> = BTreeMap::new();
    let mut add = |pool: &str, (cpu, memory): (i64, i64)| {
        let p = out.entry(pool.to_string()).or_default();
        p.nodes += 1;
        p.cpu += cpu;
        p.memory += memory;
    };
    for n in &snapshot.nodes {
        let instance = n.instance_id().and_then(|id| by_id.get(id)).copied();
        let Some(pool) = n.labels.get(NODE_POOL_LABEL).or(instance.map(|i| &i.node_pool)) else { continue };
        let kind = n.labels.get(INSTANCE_TYPE).or(instance.map(|i| &i.instance_type));
        let own = (n.allocatable.cpu, n.allocatable.memory);
        add(pool, kind.and_then(|t| capacity.get(t.as_str()).copied()).unwrap_or(own));
    }
    let registered: HashSet<&str> = snapshot.nodes.iter().filter_map(|n| n.instance_id()).collect();
    for i in instances.iter().filter(|i| !registered.contains(i.id.as_str()) && live(i)) {
        if let Some(c) = capacity.get(i.instance_type.as_str()) {
            add(&i.node_pool, *c);
        }
    }
    out
}

/// Launched and not on its way out.
fn live(i: &Instance) -> bool {
    matches!(i.state, InstanceState::Pending | InstanceState::Running)
}

/// Dollars per hour of the instances capstan runs (launching or running), as the status
/// board's header adds them.
pub fn cost_per_hour(instances: &[Instance]) -> f64 {
    // Folded from +0.0: an empty `sum` of floats is -0.0, which a scrape shows as such.
    instances.iter().filter(|i| live(i)).fold(0.0, |sum, i| sum + i.price)
}

/// The label sets a family was last given, so that series of a NodePool gone are removed.
#[derive(Debug, Default)]
struct Shown {
    nodes: HashSet<PoolLabels>,
    usage: HashSet<PoolResourceLabels>,
    limit: HashSet<PoolResourceLabels>,
}

/// Sets `family` to `values` and removes the series `shown` had that `values` lacks.
fn publish<L, G>(family: &Family<L, G>, shown: &mut HashSet<L>, values: Vec<(L, f64)>, set: impl Fn(&G, f64))
where
    L: Clone + Hash + Eq,
{
    let now: HashSet<L> = values.iter().map(|(l, _)| l.clone()).collect();
    for gone in shown.difference(&now) {
        family.remove(gone);
    }
    for (l, v) in values {
        set(&*family.get_or_create(&l), v);
    }
    *shown = now;
}

/// Prometheus metrics of the capacity loop.
#[derive(Debug, Clone)]
pub struct LoopMetrics {
    pub launched: Family<PoolLabels, Counter>,
    pub terminated: Family<TerminationLabels, Counter>,
    pub pending_pods: Gauge,
    /// Seconds spent in the scheduler per provisioning pass.
    pub solve_seconds: Histogram,
    /// Seconds from a pod turning unschedulable to the launch request for it.
    pub decision_latency_seconds: Histogram,
    /// Passes run: with passes driven by change, a quiet cluster adds about one per
    /// `wake::IDLE_PASS_BOUND` or disruption poll.
    pub passes: Counter,
    /// Per NodePool, as of the last pass: nodes (launching included), cpu and memory counted
    /// as for its limits, and the limits it sets.
    pub nodepool_nodes: Family<PoolLabels, Gauge>,
    pub nodepool_usage: Family<PoolResourceLabels, FloatGauge>,
    pub nodepool_limit: Family<PoolResourceLabels, FloatGauge>,
    /// Dollars per hour of the instances capstan runs, as of the last pass.
    pub cost_per_hour: FloatGauge,
    /// Seconds since the Unix epoch (the loop's clock) at the start of the last pass that
    /// succeeded; 0 until one has.
    pub last_success: FloatGauge,
    shown: Arc<Mutex<Shown>>,
}

impl Default for LoopMetrics {
    fn default() -> Self {
        LoopMetrics {
            launched: Family::default(),
            terminated: Family::default(),
            pending_pods: Gauge::default(),
            solve_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            decision_latency_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            passes: Counter::default(),
            nodepool_nodes: Family::default(),
            nodepool_usage: Family::default(),
            nodepool_limit: Family::default(),
            cost_per_hour: FloatGauge::default(),
            last_success: FloatGauge::default(),
            shown: Arc::default(),
        }
    }
}

impl LoopMetrics {
    /// What a replica that stopped leading no longer knows: its NodePools' nodes and the cost,
    /// which the new leader now reports (two replicas would count them twice).
    pub fn forget_cluster_state(&self) {
        self.nodepool_nodes.clear();
        self.nodepool_usage.clear();
        self.nodepool_limit.clear();
        self.cost_per_hour.set(0.0);
    }

    pub fn register(registry: &mut Registry) -> LoopMetrics {
        let m = LoopMetrics::default();
        registry.register("capstan_nodeclaims_launched", "NodeClaims launched, by NodePool", m.launched.clone());
        registry.register(
            "capstan_nodeclaims_terminated",
            "Nodes terminated, by NodePool and reason",
            m.terminated.clone(),
        );
        registry.register("capstan_pending_pods", "Pods waiting for capacity", m.pending_pods.clone());
        registry.register("capstan_solve_seconds", "Time spent in the scheduler per pass", m.solve_seconds.clone());
        registry.register(
            "capstan_decision_latency_seconds",
            "From a pod turning unschedulable to the launch request for it",
            m.decision_latency_seconds.clone(),
        );
        registry.register("capstan_capacity_passes", "Capacity loop passes run", m.passes.clone());
        registry.register(
            "capstan_nodepool_nodes",
            "Nodes of each NodePool, launching included, as of the last capacity pass",
            m.nodepool_nodes.clone(),
        );
        registry.register(
            "capstan_nodepool_usage",
            "Capacity of each NodePool's nodes as its limits count it: cpu in cores, memory in bytes",
            m.nodepool_usage.clone(),
        );
        registry.register(
            "capstan_nodepool_limit",
            "Each NodePool's limits that are set: cpu in cores, memory in bytes, nodes",
            m.nodepool_limit.clone(),
        );
        registry.register(
            "capstan_cost_per_hour_dollars",
            "Price per hour of the instances capstan runs, launching included",
            m.cost_per_hour.clone(),
        );
        registry.register(
            "capstan_last_successful_pass_timestamp_seconds",
            "When the last capacity pass that succeeded started (Unix time, loop clock)",
            m.last_success.clone(),
        );
        m
    }

    /// Sets the NodePool gauges and the cost from a pass: every pool the rules name (at 0 when
    /// it has no node) and every pool a node counts for; the launch counter of each pool starts
    /// at 0.
    pub fn observe_pools(&self, rules: &Rules, counts: &BTreeMap<String, PoolCount>, cost_per_hour: f64) {
        let mut pools: BTreeMap<&str, PoolCount> =
            rules.pools.iter().map(|p| (p.name.as_str(), PoolCount::default())).collect();
        pools.extend(counts.iter().map(|(k, v)| (k.as_str(), *v)));
        let (mut nodes, mut usage, mut limit) = (Vec::new(), Vec::new(), Vec::new());
        let on = |nodepool: &str, resource| PoolResourceLabels { nodepool: nodepool.to_string(), resource };
        for (pool, c) in &pools {
            let _ = self.launched.get_or_create(&PoolLabels { nodepool: pool.to_string() });
            nodes.push((PoolLabels { nodepool: pool.to_string() }, c.nodes as f64));
            usage.push((on(pool, "cpu"), c.cpu as f64 / 1000.0));
            usage.push((on(pool, "memory"), c.memory as f64));
        }
        for p in &rules.pools {
            let l = &p.limits;
            let set = [
                ("cpu", l.cpu.map(|m| m as f64 / 1000.0)),
                ("memory", l.memory.map(|b| b as f64)),
                ("nodes", l.nodes.map(|n| n as f64)),
            ];
            limit.extend(set.into_iter().filter_map(|(r, v)| Some((on(&p.name, r), v?))));
        }
        let mut shown = self.shown.lock().expect("shown");
        publish(&self.nodepool_nodes, &mut shown.nodes, nodes, |g, v| {
            g.set(v as i64);
        });
        publish(&self.nodepool_usage, &mut shown.usage, usage, |g, v| {
            g.set(v);
        });
        publish(&self.nodepool_limit, &mut shown.limit, limit, |g, v| {
            g.set(v);
        });
        self.cost_per_hour.set(cost_per_hour);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterNode;
    use crate::scheduling::catalog::CapacityType;

    fn instance(id: &str, pool: &str, kind: &str, state: InstanceState) -> Instance {
        Instance {
            id: id.into(),
            claim: format!("{pool}-claim"),
            node_pool: pool.into(),
            instance_type: kind.into(),
            zone: "us-east-1a".into(),
            capacity_type: CapacityType::OnDemand,
            price: 0.5,
            state,
            launched_at: Duration::ZERO,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn a_pool_counts_its_nodes_and_launching_instances_at_their_types_capacity() {
        let catalog = crate::scheduling::builtin::catalog();
        let t = &catalog.types[0];
        let (cpu, memory) = (t.vcpu as i64 * 1000, t.memory_mib as i64 * (1 << 20));
        let mut labelled = ClusterNode::joined("n1", "us-east-1a", "i-1");
        labelled.labels.insert(NODE_POOL_LABEL.into(), "general".into());
        labelled.labels.insert(INSTANCE_TYPE.into(), t.name.clone());
        // Registered before capstan labelled it: its instance names the pool and type.
        let unlabelled = ClusterNode::joined("n2", "us-east-1a", "i-2");
        // Not capstan's, no pool: not counted.
        let other = ClusterNode::joined("kops-1", "us-east-1a", "i-9");
        let snapshot = Snapshot { nodes: vec![labelled, unlabelled, other], ..Snapshot::default() };
        let instances = vec![
            instance("i-1", "general", &t.name, InstanceState::Running),
            instance("i-2", "general", &t.name, InstanceState::Running),
            instance("i-3", "batch", &t.name, InstanceState::Pending),
            instance("i-4", "batch", &t.name, InstanceState::ShuttingDown),
        ];
        let counts = pool_counts(&snapshot, &instances, &catalog);
        assert_eq!(counts["general"], PoolCount { nodes: 2, cpu: 2 * cpu, memory: 2 * memory });
        assert_eq!(counts["batch"], PoolCount { nodes: 1, cpu, memory });
        assert_eq!(counts.len(), 2);
        assert_eq!(cost_per_hour(&instances), 1.5, "the instance shutting down costs nothing more");
        assert_eq!(cost_per_hour(&[]).to_string(), "0", "not -0");
    }
}
