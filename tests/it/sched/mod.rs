//! Scheduling engine tests: builders shared by the rule tests, property tests and bad input.

#![allow(dead_code)]

mod bad_input;
mod properties;
mod reserved;
mod rules;

use std::sync::Arc;

use capstan::policy::meta::{Labels, Taint, TaintEffect};
use capstan::scheduling::allocatable::{KubeletSettings, allocatable};
use capstan::scheduling::builtin;
use capstan::scheduling::catalog::{CAPACITY_TYPE, Catalog, INSTANCE_TYPE, ZONE};
use capstan::scheduling::node::Node;
use capstan::scheduling::plan::{NewClaim, Plan};
use capstan::scheduling::pod::{Constraints, Pod};
use capstan::scheduling::pool::{Limits, NODE_POOL_LABEL, PoolSpec};
use capstan::scheduling::requirements::{Requirements, ValueSet};
use capstan::scheduling::resources::Resources;
use capstan::scheduling::{Input, Strategy, solve};

pub fn catalog() -> Catalog {
    builtin::catalog()
}

/// A pool with no constraints but on-demand.
pub fn pool(name: &str) -> PoolSpec {
    PoolSpec::named(name)
}

pub fn req(key: &str, set: ValueSet) -> Requirements {
    let mut r = Requirements::new();
    r.add(key, set);
    r
}

pub fn in_(key: &str, values: &[&str]) -> Requirements {
    req(key, ValueSet::of(false, values.iter().copied()))
}

pub fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
    Taint { key: key.into(), value: (!value.is_empty()).then(|| value.into()), effect, time_added: None }
}

/// A registered node of `instance_type` in `zone`, empty.
pub fn node(name: &str, instance_type: &str, zone: &str, catalog: &Catalog) -> Node {
    let t = catalog.get(instance_type).unwrap();
    let mut labels = Labels::new();
    labels.insert(INSTANCE_TYPE.into(), instance_type.into());
    labels.insert(ZONE.into(), zone.into());
    labels.insert(CAPACITY_TYPE.into(), "on-demand".into());
    labels.insert("kubernetes.io/arch".into(), t.arch.clone());
    labels.insert("kubernetes.io/os".into(), "linux".into());
    labels.insert("kubernetes.io/hostname".into(), name.into());
    labels.insert(NODE_POOL_LABEL.into(), "default".into());
    Node {
        name: name.into(),
        labels,
        taints: Vec::new(),
        allocatable: allocatable(t, &KubeletSettings::default()),
        requested: Resources::default(),
        pods: Vec::new(),
        host_ports: Vec::new(),
        in_flight: false,
        unschedulable: false,
        node_pool: Some("default".into()),
        price: t.offerings[0].price,
    }
}

/// Binds `pod` to `node` (requests and constraints).
pub fn bind(node: &mut Node, pod: &Pod) {
    node.requested += &pod.requests;
    node.pods.push(pod.constraints.clone());
}

pub struct Case<'a> {
    pub pods: Vec<Pod>,
    pub nodes: Vec<Node>,
    pub daemonsets: Vec<Pod>,
    pub pools: Vec<PoolSpec>,
    pub catalog: &'a Catalog,
    pub limits: Limits,
}

impl<'a> Case<'a> {
    pub fn new(catalog: &'a Catalog, pods: Vec<Pod>) -> Case<'a> {
        Case {
            pods,
            nodes: Vec::new(),
            daemonsets: Vec::new(),
            pools: vec![pool("default")],
            catalog,
            limits: Limits::default(),
        }
    }

    pub fn input(&self, strategy: Strategy) -> Input<'a> {
        let mut pools = self.pools.clone();
        pools.sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.name.cmp(&b.name)));
        Input {
            pods: self.pods.clone(),
            nodes: self.nodes.clone(),
            daemonsets: self.daemonsets.clone(),
            pools,
            catalog: self.catalog,
            cluster_limits: self.limits.clone(),
            strategy,
        }
    }

    /// Solves with both strategies; every semantic rule must hold for each.
    pub fn solve(&self) -> Vec<(Strategy, Plan)> {
        [Strategy::CostOptimal, Strategy::FirstFitDecreasing].into_iter().map(|s| (s, solve(&self.input(s)))).collect()
    }
}

/// The claim a pod was put on.
pub fn claim_of<'p>(plan: &'p Plan, pod: &str) -> Option<&'p NewClaim> {
    plan.claims.iter().find(|c| c.pods.iter().any(|p| p == pod))
}

/// Where a pod went: an existing node's name or a claim's name.
pub fn place_of(plan: &Plan, pod: &str) -> Option<String> {
    if let Some(b) = plan.bindings.iter().find(|b| b.pod == pod) {
        return Some(b.node.clone());
    }
    claim_of(plan, pod).map(|c| c.name.clone())
}

pub fn reason_of(plan: &Plan, pod: &str) -> Option<String> {
    plan.unschedulable.iter().find(|u| u.pod == pod).map(|u| u.reason.clone())
}

/// Pods named `prefix-0..n` from a builder.
pub fn many(n: usize, prefix: &str, b: impl Fn() -> capstan::scheduling::pod::PodBuilder) -> Vec<Pod> {
    let first = b().build();
    let shared: Arc<Constraints> = first.constraints.clone();
    (0..n)
        .map(|i| {
            let mut p = b().name(&format!("{prefix}-{i}")).build();
            p.constraints = shared.clone();
            p
        })
        .collect()
}
