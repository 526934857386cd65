//! Pure tests of `disruption::plan`: a snapshot, instances and rules built with builders, no
//! simulated world. One test per rule, split by concern:
//!
//! ```text
//! balanced.rs       Balanced consolidation: the score, the threshold, the record of moves
//! emptiness.rs      empty nodes, consolidateAfter, WhenEmpty
//! consolidation.rs  delete, replace, multi-node, Balanced, utilizationThreshold, minNodeLifetime
//! drift.rs          drift (pool hash) and expiration (expireAfter)
//! budgets.rs        count, percent, per reason, cron window, nodes not Ready
//! blocking.rs       do-not-disrupt, bare pods, PodDisruptionBudgets
//! priority.rs       command order and pending pods
//! static_pools.rs   static NodePools: count, scale, drift one for one, limits (sim world too)
//! ```

#![allow(dead_code)]

mod balanced;
mod blocking;
mod budgets;
mod consolidation;
mod drift;
mod emptiness;
mod priority;
mod static_pools;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use capstan::capacity::wall;
use capstan::cloud::provider::{Instance, InstanceState};
use capstan::cluster::model::{ClusterNode, ClusterPod, DISRUPTED_TAINT, DO_NOT_DISRUPT, Owner, Pdb, Phase, Snapshot};
use capstan::disruption::{self, Command, Plan, Request};
use capstan::policy::meta::{Taint, TaintEffect};
use capstan::policy::nodepool::{BALANCED_THRESHOLD, BudgetNodes, ConsolidationPolicy};
use capstan::provisioning::POOL_HASH_TAG;
use capstan::provisioning::nodes::node_labels;
use capstan::rules::{Budget, ClusterRules, PoolRules, Reason, Rules};
use capstan::scheduling::allocatable::allocatable;
use capstan::scheduling::builtin;
use capstan::scheduling::catalog::{CapacityType, Catalog, HOSTNAME};
use capstan::scheduling::pod::{PodBuilder, Selector};
use capstan::scheduling::pool::{Limits, NODE_POOL_LABEL, PoolSpec};

/// Monday 2026-01-05 06:00 UTC.
pub const NOW: Duration = Duration::from_secs(1_767_592_800);
/// The drift digest of every pool unless a test changes it.
pub const HASH: &str = "h1";
pub const HOUR: u64 = 3600;

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Disruption rules of a pool: consolidate empty or underutilized nodes after 30s, no expiry,
/// a budget that allows every node.
pub fn pool_rules(name: &str) -> PoolRules {
    PoolRules {
        name: name.into(),
        consolidation: ConsolidationPolicy::WhenEmptyOrUnderutilized,
        consolidate_after: Some(secs(30)),
        expire_after: None,
        budgets: vec![budget(BudgetNodes::Percent(100))],
        hash: HASH.into(),
        replicas: None,
        balanced_threshold: BALANCED_THRESHOLD,
    }
}

/// An always-active budget for every reason.
pub fn budget(nodes: BudgetNodes) -> Budget {
    Budget { nodes, schedule: None, duration: None, reasons: None }
}

/// A registered node of capstan's (or, `unmanaged`, of a kOps instance group) and its instance.
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    name: String,
    instance_type: String,
    zone: String,
    pool: Option<String>,
    age: Duration,
    idle: Duration,
    hash: String,
    annotations: BTreeMap<String, String>,
    ready: bool,
    disrupting: bool,
}

/// An m6i.xlarge in us-east-1a of pool `default`, a day old, no pod change for an hour.
pub fn node(name: &str) -> NodeBuilder {
    NodeBuilder {
        name: name.into(),
        instance_type: "m6i.xlarge".into(),
        zone: "us-east-1a".into(),
        pool: Some("default".into()),
        age: secs(24 * HOUR),
        idle: secs(HOUR),
        hash: HASH.into(),
        annotations: BTreeMap::new(),
        ready: true,
        disrupting: false,
    }
}

impl NodeBuilder {
    pub fn of_type(mut self, t: &str) -> Self {
        self.instance_type = t.into();
        self
    }
    pub fn zone(mut self, z: &str) -> Self {
        self.zone = z.into();
        self
    }
    pub fn pool(mut self, p: &str) -> Self {
        self.pool = Some(p.into());
        self
    }
    /// Not launched by capstan: no NodePool label, no instance of capstan's.
    pub fn unmanaged(mut self) -> Self {
        self.pool = None;
        self
    }
    /// Time since launch.
    pub fn age(mut self, d: Duration) -> Self {
        self.age = d;
        self
    }
    /// Time since a pod last arrived or left.
    pub fn idle(mut self, d: Duration) -> Self {
        self.idle = d;
        self
    }
    /// The pool digest the instance was launched under.
    pub fn hash(mut self, h: &str) -> Self {
        self.hash = h.into();
        self
    }
    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        self.annotations.insert(k.into(), v.into());
        self
    }
    pub fn do_not_disrupt(self) -> Self {
        self.annotation(DO_NOT_DISRUPT, "true")
    }
    pub fn not_ready(mut self) -> Self {
        self.ready = false;
        self
    }
    /// Already cordoned by capstan for a disruption.
    pub fn disrupting(mut self) -> Self {
        self.disrupting = true;
        self
    }
}

/// A cluster and its rules, planned at [`NOW`].
pub struct Case {
    pub catalog: Catalog,
    pub rules: Rules,
    pub snapshot: Snapshot,
    pub instances: Vec<Instance>,
    pub now: Duration,
    /// Wall-clock time for budget schedules.
    pub wall: DateTime<Utc>,
}

impl Default for Case {
    fn default() -> Self {
        Case::new()
    }
}

impl Case {
    /// One pool, `default`, with [`pool_rules`]; no nodes.
    pub fn new() -> Case {
        Case {
            catalog: builtin::catalog(),
            rules: Rules {
                revision: "main@sha1:test".into(),
                pools: vec![PoolSpec::named("default")],
                pool_rules: vec![pool_rules("default")],
                cluster: ClusterRules {
                    batch_idle: secs(1),
                    batch_max: secs(10),
                    utilization_threshold: None,
                    min_node_lifetime: None,
                    limits: Limits::default(),
                    dry_run: false,
                },
                pricing: Default::default(),
                buffers: Default::default(),
            },
            snapshot: Snapshot::default(),
            instances: Vec::new(),
            now: NOW,
            wall: wall(NOW),
        }
    }

    /// The rules of pool `default`.
    pub fn pool(&mut self) -> &mut PoolRules {
        self.pool_named("default")
    }

    pub fn pool_named(&mut self, name: &str) -> &mut PoolRules {
        self.rules.pool_rules.iter_mut().find(|p| p.name == name).expect("pool exists")
    }

    pub fn spec(&mut self) -> &mut PoolSpec {
        &mut self.rules.pools[0]
    }

    /// Adds a second (third…) pool with the default rules.
    pub fn add_pool(&mut self, name: &str) -> &mut PoolRules {
        self.rules.pools.push(PoolSpec::named(name));
        self.rules.pool_rules.push(pool_rules(name));
        self.rules.pool_rules.last_mut().unwrap()
    }

    pub fn cluster(&mut self) -> &mut ClusterRules {
        &mut self.rules.cluster
    }

    pub fn node(&mut self, b: NodeBuilder) -> &mut Self {
        let t = self.catalog.get(&b.instance_type).unwrap_or_else(|| panic!("no type {}", b.instance_type));
        let price = t
            .offerings
            .iter()
            .find(|o| o.zone == b.zone && o.capacity_type == CapacityType::OnDemand)
            .map(|o| o.price)
            .expect("on-demand offering");
        let launched = self.now.saturating_sub(b.age);
        let id = format!("i-{}", b.name);
        let instance = Instance {
            id: id.clone(),
            claim: format!("claim-{}", b.name),
            node_pool: b.pool.clone().unwrap_or_default(),
            instance_type: t.name.clone(),
            zone: b.zone.clone(),
            capacity_type: CapacityType::OnDemand,
            price,
            state: InstanceState::Running,
            launched_at: launched,
            tags: BTreeMap::from([(POOL_HASH_TAG.to_string(), b.hash.clone())]),
        };
        let spec = b.pool.as_ref().and_then(|p| self.rules.pools.iter().find(|s| &s.name == p));
        let mut labels = node_labels(&instance, Some(t), spec);
        labels.insert(HOSTNAME.into(), b.name.clone());
        if b.pool.is_none() {
            labels.remove(NODE_POOL_LABEL);
        }
        let kubelet = spec.map(|s| s.kubelet.clone()).unwrap_or_default();
        let mut taints = Vec::new();
        if b.disrupting {
            taints.push(Taint {
                key: DISRUPTED_TAINT.into(),
                value: None,
                effect: TaintEffect::NoSchedule,
                time_added: None,
            });
        }
        self.snapshot.nodes.push(ClusterNode {
            name: b.name.clone(),
            provider_id: instance.provider_id(),
            labels,
            taints,
            annotations: b.annotations,
            allocatable: allocatable(t, &kubelet),
            ready: b.ready,
            unschedulable: false,
            created_at: launched,
            pods_changed_at: self.now.saturating_sub(b.idle),
        });
        if b.pool.is_some() {
            self.instances.push(instance);
        }
        self
    }

    /// Binds `p` to `node`, owned by a ReplicaSet; returns it for changes
    /// (`.owner = Owner::None`, `.do_not_disrupt = true`).
    pub fn pod(&mut self, node: &str, p: PodBuilder) -> &mut ClusterPod {
        let name = format!("{node}-{}", self.snapshot.pods.len());
        self.push(Some(node), &name, p)
    }

    /// `n` pods like `p` on `node`.
    pub fn pods(&mut self, node: &str, n: usize, p: PodBuilder) -> &mut Self {
        for _ in 0..n {
            self.pod(node, p.clone());
        }
        self
    }

    /// An unschedulable pod waiting for a node.
    pub fn pending(&mut self, p: PodBuilder) -> &mut ClusterPod {
        let name = format!("pending-{}", self.snapshot.pods.len());
        let pod = self.push(None, &name, p);
        pod.phase = Phase::Pending;
        pod.unschedulable = true;
        pod
    }

    fn push(&mut self, node: Option<&str>, name: &str, p: PodBuilder) -> &mut ClusterPod {
        let mut spec = p.owner("ReplicaSet/app").build();
        spec.name = format!("{}/{name}", spec.namespace());
        self.snapshot.pods.push(ClusterPod {
            namespace: spec.namespace().to_string(),
            name: name.to_string(),
            owner: Owner::Controller("ReplicaSet/app".into()),
            node: node.map(str::to_string),
            phase: Phase::Running,
            unschedulable: false,
            spec,
            do_not_disrupt: false,
            created_at: self.now.saturating_sub(secs(HOUR)),
            eviction: Default::default(),
        });
        self.snapshot.pods.last_mut().unwrap()
    }

    /// A PodDisruptionBudget over pods labelled `app=<app>` in `default`.
    pub fn pdb(&mut self, app: &str, disruptions_allowed: i64) -> &mut Self {
        self.snapshot.pdbs.push(Pdb {
            namespace: "default".into(),
            name: app.into(),
            selector: Selector::labels(&[("app", app)]),
            disruptions_allowed,
        });
        self
    }

    pub fn plan(&self) -> Plan {
        let view = capstan::provisioning::Request {
            snapshot: &self.snapshot,
            instances: &self.instances,
            rules: &self.rules,
            catalog: &self.catalog,
        };
        disruption::plan(Request { view, now: self.now, wall: self.wall })
    }
}

/// The plan's one command; fails when there is none or several.
pub fn only(plan: &Plan) -> &Command {
    assert_eq!(plan.commands.len(), 1, "{plan:#?}");
    &plan.commands[0]
}

/// Names of the nodes a command removes, sorted.
pub fn targets(c: &Command) -> Vec<&str> {
    let mut v: Vec<&str> = c.nodes().collect();
    v.sort();
    v
}

/// Why `node` was kept, if the plan says.
pub fn kept<'a>(plan: &'a Plan, node: &str) -> Option<&'a str> {
    plan.kept.iter().find(|(n, _)| n == node).map(|(_, why)| why.as_str())
}

/// The reasons of the plan's commands, in order.
pub fn reasons(plan: &Plan) -> Vec<Reason> {
    plan.commands.iter().map(|c| c.reason).collect()
}

/// A UTC time from RFC 3339.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}
