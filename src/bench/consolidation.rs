//! The consolidation benchmark: one full disruption decision over a large synthetic cluster
//! (Karpenter's users report 10–30 minutes on large clusters).
//!
//! The cluster: `nodes` m6i/c6i/r6i nodes of 2xlarge–8xlarge, each running between a third and
//! five thirds of `pods_per_node` pods from 40 Deployment templates of 50m–250m cpu and 64Mi–512Mi, all idle for
//! an hour, so every node is a candidate and the decision has to search.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::capacity::wall;
use crate::cloud::provider::{Instance, InstanceState, tags};
use crate::cluster::model::{ClusterNode, ClusterPod, Owner, Phase, Snapshot};
use crate::disruption::{self, Request};
use crate::policy::nodepool::{BALANCED_THRESHOLD, BudgetNodes, ConsolidationPolicy};
use crate::provisioning::{POOL_HASH_TAG, nodes::node_labels};
use crate::rules::{Budget, ClusterRules, PoolRules, Rules};
use crate::scheduling::allocatable::allocatable;
use crate::scheduling::builtin;
use crate::scheduling::catalog::{CapacityType, HOSTNAME, InstanceType};
use crate::scheduling::pod::{Pod, pod};
use crate::scheduling::pool::{Limits, PoolSpec};

#[derive(Debug, Clone, Serialize)]
pub struct ConsolidationResult {
    pub nodes: usize,
    pub pods: usize,
    pub decide_ms: f64,
    pub nodes_removed: usize,
    pub replacements: usize,
    pub savings_per_hour: f64,
    pub reason: Option<String>,
}

const TYPES: [&str; 9] = [
    "m6i.2xlarge",
    "m6i.4xlarge",
    "m6i.8xlarge",
    "c6i.2xlarge",
    "c6i.4xlarge",
    "c6i.8xlarge",
    "r6i.2xlarge",
    "r6i.4xlarge",
    "r6i.8xlarge",
];

fn templates(rng: &mut SmallRng, count: usize) -> Vec<Pod> {
    let cpus = ["50m", "100m", "200m", "250m"];
    let mems = ["64Mi", "128Mi", "256Mi", "512Mi"];
    (0..count.max(1))
        .map(|i| {
            pod()
                .name(&format!("app-{i}"))
                .cpu(cpus[rng.random_range(0..cpus.len())])
                .memory(mems[rng.random_range(0..mems.len())])
                .label("app", &format!("app-{i}"))
                .build()
        })
        .collect()
}

/// The synthetic cluster: snapshot, instances and rules.
pub fn cluster(nodes: usize, pods_per_node: usize, seed: u64) -> (Snapshot, Vec<Instance>, Rules) {
    cluster_of(nodes, pods_per_node, seed, TEMPLATES)
}

/// Deployment templates of the benchmark's cluster.
pub const TEMPLATES: usize = 40;

/// The synthetic cluster with pods from `templates` Deployment templates (fewer templates, fewer
/// distinct pod shapes).
pub fn cluster_of(nodes: usize, pods_per_node: usize, seed: u64, templates: usize) -> (Snapshot, Vec<Instance>, Rules) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let catalog = builtin::catalog();
    let pool = PoolSpec::named("default");
    let rules = Rules {
        revision: "main@sha1:bench".into(),
        pools: vec![pool.clone()],
        pool_rules: vec![PoolRules {
            name: "default".into(),
            consolidation: ConsolidationPolicy::WhenEmptyOrUnderutilized,
            consolidate_after: Some(Duration::from_secs(30)),
            expire_after: None,
            budgets: vec![Budget { nodes: BudgetNodes::Percent(10), schedule: None, duration: None, reasons: None }],
            hash: "bench".into(),
            replicas: None,
            balanced_threshold: BALANCED_THRESHOLD,
        }],
        cluster: ClusterRules {
            batch_idle: Duration::from_secs(1),
            batch_max: Duration::from_secs(10),
            utilization_threshold: None,
            min_node_lifetime: None,
            limits: Limits::default(),
            dry_run: false,
        },
        pricing: Default::default(),
        buffers: Default::default(),
    };
    let templates = self::templates(&mut rng, templates);
    let zones = ["us-east-1a", "us-east-1b", "us-east-1c"];
    let mut snapshot = Snapshot::default();
    let mut instances = Vec::with_capacity(nodes);
    for n in 0..nodes {
        let t = catalog.get(TYPES[rng.random_range(0..TYPES.len())]).expect("built-in type");
        let zone = zones[n % zones.len()];
        let price = t
            .offerings
            .iter()
            .find(|o| o.zone == zone && o.capacity_type == CapacityType::OnDemand)
            .map_or(0.0, |o| o.price);
        let id = format!("i-{n:017x}");
        let instance = Instance {
            id: id.clone(),
            claim: format!("default-{n:010x}"),
            node_pool: "default".into(),
            instance_type: t.name.clone(),
            zone: zone.into(),
            capacity_type: CapacityType::OnDemand,
            price,
            state: InstanceState::Running,
            launched_at: Duration::ZERO,
            tags: BTreeMap::from([
                (POOL_HASH_TAG.to_string(), "bench".to_string()),
                (tags::NODE_POOL.to_string(), "default".into()),
            ]),
        };
        let node = node_of(&instance, t, &pool, Duration::ZERO);
        let alloc = node.allocatable.clone();
        let count = rng.random_range(pods_per_node / 3..=pods_per_node * 5 / 3).min(alloc.pods as usize);
        let mut used = crate::scheduling::resources::Resources::default();
        let (mut i, mut tries) = (0, 0);
        while i < count && tries < count * 3 {
            tries += 1;
            let tpl = &templates[rng.random_range(0..templates.len())];
            let mut next = used.clone();
            next += &tpl.requests;
            if !next.fits(&alloc) {
                continue;
            }
            used = next;
            let mut spec = tpl.clone();
            spec.name = format!("default/{}-{n}-{i}", tpl.name);
            snapshot.pods.push(ClusterPod {
                namespace: "default".into(),
                name: format!("{}-{n}-{i}", tpl.name),
                owner: Owner::Controller(format!("Deployment/{}", tpl.name)),
                node: Some(id.clone()),
                phase: Phase::Running,
                unschedulable: false,
                spec,
                do_not_disrupt: false,
                created_at: Duration::ZERO,
                eviction: Default::default(),
            });
            i += 1;
        }
        snapshot.nodes.push(node);
        instances.push(instance);
    }
    (snapshot, instances, rules)
}

/// The registered, Ready node of a running `instance` of type `t` in `pool`, created at `at`.
pub fn node_of(instance: &Instance, t: &InstanceType, pool: &PoolSpec, at: Duration) -> ClusterNode {
    let mut labels = node_labels(instance, Some(t), Some(pool));
    labels.insert(HOSTNAME.into(), instance.id.clone());
    ClusterNode {
        name: instance.id.clone(),
        provider_id: instance.provider_id(),
        labels,
        taints: Vec::new(),
        annotations: BTreeMap::new(),
        allocatable: allocatable(t, &pool.kubelet),
        ready: true,
        unschedulable: false,
        created_at: at,
        pods_changed_at: at,
    }
}

/// Builds the cluster and times one disruption decision over it.
pub fn run(nodes: usize, pods_per_node: usize, seed: u64) -> ConsolidationResult {
    run_of(nodes, pods_per_node, seed, TEMPLATES)
}

/// [`run`] over a cluster of `templates` Deployment templates.
pub fn run_of(nodes: usize, pods_per_node: usize, seed: u64, templates: usize) -> ConsolidationResult {
    let (snapshot, instances, rules) = cluster_of(nodes, pods_per_node, seed, templates);
    let catalog = builtin::catalog();
    let rules = Arc::new(rules);
    let now = Duration::from_secs(1_767_592_800);
    let started = Instant::now();
    let view =
        crate::provisioning::Request { snapshot: &snapshot, instances: &instances, rules: &rules, catalog: &catalog };
    let plan = disruption::plan(Request { view, now, wall: wall(now) });
    let decide_ms = started.elapsed().as_secs_f64() * 1000.0;
    let cmd = plan.commands.first();
    ConsolidationResult {
        nodes,
        pods: snapshot.pods.len(),
        decide_ms: (decide_ms * 10.0).round() / 10.0,
        nodes_removed: cmd.map_or(0, |c| c.targets.len()),
        replacements: cmd.map_or(0, |c| c.replacements.len()),
        savings_per_hour: cmd.map_or(0.0, |c| (c.savings * 10_000.0).round() / 10_000.0),
        reason: cmd.map(|c| c.reason.label().to_string()),
    }
}
