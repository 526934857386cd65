//! NodePools prepared for scheduling: requirements as sets, labels, taints, limits and the
//! kubelet settings of their EC2NodeClass.

use std::collections::BTreeMap;

use crate::policy::EffectivePolicy;
use crate::policy::meta::{Labels, Taint};
use crate::policy::nodeclass::EC2NodeClass;
use crate::policy::nodepool::NodePool;
use crate::policy::quantity::Quantity;

use super::allocatable::{EvictionThreshold, KubeletSettings};
use super::catalog::CAPACITY_TYPE;
use super::requirements::{Requirements, ValueSet};
use super::resources::Resources;

/// The label every node carries naming its NodePool.
pub const NODE_POOL_LABEL: &str = "karpenter.sh/nodepool";

/// Resource ceilings; `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub cpu: Option<i64>,
    pub memory: Option<i64>,
    pub nodes: Option<i64>,
    pub other: BTreeMap<String, i64>,
}

impl Limits {
    pub fn from_quantities(map: &BTreeMap<String, Quantity>) -> Limits {
        let mut l = Limits::default();
        for (k, q) in map {
            match k.as_str() {
                "cpu" => l.cpu = Some(q.milli() as i64),
                "memory" => l.memory = Some(q.units() as i64),
                "nodes" => l.nodes = Some(q.units() as i64),
                other => {
                    l.other.insert(other.to_string(), q.units() as i64);
                }
            }
        }
        l
    }

    /// The first limit that `usage` plus one more node of `capacity` would exceed.
    pub fn exceeded_by(&self, usage: &Usage, capacity: &Resources) -> Option<&'static str> {
        if self.cpu.is_some_and(|l| usage.resources.cpu + capacity.cpu > l) {
            return Some("cpu");
        }
        if self.memory.is_some_and(|l| usage.resources.memory + capacity.memory > l) {
            return Some("memory");
        }
        if self.nodes.is_some_and(|l| usage.nodes + 1 > l) {
            return Some("nodes");
        }
        for (k, l) in &self.other {
            if usage.resources.get(k) + capacity.get(k) > *l {
                return Some("extended resource");
            }
        }
        None
    }
}

/// What a pool (or the cluster) already uses: node capacity and count, in-flight included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub resources: Resources,
    pub nodes: i64,
}

impl Usage {
    pub fn add(&mut self, capacity: &Resources) {
        self.resources += capacity;
        self.nodes += 1;
    }
}

/// A NodePool ready for the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSpec {
    pub name: String,
    pub weight: i64,
    /// NodePool requirements, template labels as `In`, and on-demand when capacity type is open.
    pub requirements: Requirements,
    /// Labels every node of the pool gets.
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub startup_taints: Vec<Taint>,
    pub limits: Limits,
    pub kubelet: KubeletSettings,
    pub node_class: String,
}

impl PoolSpec {
    /// A pool with no requirements beyond on-demand, for tests and simulations.
    pub fn named(name: &str) -> PoolSpec {
        let mut requirements = Requirements::new();
        requirements.add(CAPACITY_TYPE, ValueSet::one("on-demand"));
        let labels = Labels::from([(NODE_POOL_LABEL.to_string(), name.to_string())]);
        PoolSpec {
            name: name.to_string(),
            weight: 0,
            requirements,
            labels,
            taints: Vec::new(),
            startup_taints: Vec::new(),
            limits: Limits::default(),
            kubelet: KubeletSettings::default(),
            node_class: "default".to_string(),
        }
    }

    pub fn from_policy(pool: &NodePool, class: Option<&EC2NodeClass>) -> PoolSpec {
        let spec = &pool.spec;
        let tspec = &spec.template.spec;
        let mut requirements = Requirements::from_policy(&tspec.requirements);
        let mut labels = spec.template.metadata.as_ref().map(|m| m.labels.clone()).unwrap_or_default();
        labels.insert(NODE_POOL_LABEL.to_string(), pool.metadata.name.clone());
        for (k, v) in &labels {
            requirements.add(k, ValueSet::one(v));
        }
        if requirements.get(CAPACITY_TYPE).is_none() {
            requirements.add(CAPACITY_TYPE, ValueSet::one("on-demand"));
        }
        PoolSpec {
            name: pool.metadata.name.clone(),
            weight: spec.weight.unwrap_or(0),
            requirements,
            labels,
            taints: tspec.taints.clone(),
            startup_taints: tspec.startup_taints.clone(),
            limits: spec.limits.as_ref().map(Limits::from_quantities).unwrap_or_default(),
            kubelet: class.map(kubelet_settings).unwrap_or_default(),
            node_class: tspec.node_class_ref.name.clone(),
        }
    }
}

fn resources(map: Option<&BTreeMap<String, Quantity>>) -> Option<Resources> {
    map.map(|m| Resources::from_quantities(m.iter().map(|(k, v)| (k.as_str(), v))))
}

/// The settings of an EC2NodeClass that change what pods get.
pub fn kubelet_settings(class: &EC2NodeClass) -> KubeletSettings {
    let k = class.spec.kubelet.clone().unwrap_or_default();
    let eviction_memory =
        k.eviction_hard.as_ref().and_then(|e| e.get("memory.available")).and_then(|v| match v.strip_suffix('%') {
            Some(p) => p.parse::<f64>().ok().map(|p| EvictionThreshold::Percent((p * 100.0).round() as u32)),
            None => Quantity::parse(v).map(|q| EvictionThreshold::Bytes(q.units() as i64)),
        });
    let root = class
        .spec
        .block_device_mappings
        .iter()
        .find(|b| b.root_volume == Some(true))
        .or_else(|| class.spec.block_device_mappings.first())
        .and_then(|b| b.ebs.as_ref()?.volume_size.as_ref().map(|q| q.units() as i64));
    KubeletSettings {
        max_pods: k.max_pods,
        pods_per_core: k.pods_per_core,
        kube_reserved: resources(k.kube_reserved.as_ref()),
        system_reserved: resources(k.system_reserved.as_ref()),
        eviction_memory,
        root_volume: root,
    }
}

/// Every NodePool of a cluster's effective policy, highest weight first, then by name.
pub fn pools(policy: &EffectivePolicy) -> Vec<PoolSpec> {
    let mut out: Vec<PoolSpec> = policy
        .node_pools
        .iter()
        .map(|p| {
            let class = policy.node_class(&p.value.spec.template.spec.node_class_ref.name).map(|c| &c.value);
            PoolSpec::from_policy(&p.value, class)
        })
        .collect();
    out.sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.name.cmp(&b.name)));
    out
}
