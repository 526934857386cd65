//! Per-pool views of the catalog and the compatibility of pod groups with pools, types, zones
//! and capacity types, computed once and cached: the hot loops only index into these.

use std::collections::HashMap;

use crate::policy::meta::Taint;

use super::allocatable::allocatable;
use super::catalog::{CAPACITY_TYPE, CapacityType, Catalog, InstanceType, ZONE};
use super::groups::Group;
use super::pod::{Pod, untolerated};
use super::pool::PoolSpec;
use super::requirements::Requirements;
use super::resources::Resources;

/// An instance type as offered by one pool.
#[derive(Debug, Clone)]
pub struct PoolType {
    /// Index into the catalog.
    pub t: usize,
    /// Allocatable less the pool's DaemonSet overhead.
    pub alloc: Resources,
    /// What a node of this type counts against limits.
    pub capacity: Resources,
    pub overhead: Resources,
}

/// A pool with its usable types.
#[derive(Debug, Clone)]
pub struct PoolView {
    pub types: Vec<PoolType>,
}

/// Capacity of a type for limits: vCPUs, memory, one node's GPUs.
pub fn capacity(t: &InstanceType) -> Resources {
    Resources {
        cpu: t.vcpu as i64 * 1000,
        memory: t.memory_mib as i64 * (1 << 20),
        gpu: t.gpus as i64,
        ..Resources::default()
    }
}

/// DaemonSet pods that would run on a node of `pool` (those tolerating its taints whose node
/// requirements do not conflict with the pool's).
pub fn daemonset_overhead(pool: &PoolSpec, daemonsets: &[Pod]) -> Resources {
    let mut total = Resources::default();
    for ds in daemonsets {
        let c = &ds.constraints;
        let taints: Vec<Taint> = pool.taints.iter().chain(&pool.startup_taints).cloned().collect();
        if untolerated(&taints, &c.tolerations).is_some() {
            continue;
        }
        let alts = super::groups::levels(c).pop().unwrap_or_default();
        if alts.iter().any(|a| pool.requirements.conflict(a).is_none()) {
            total += &ds.requests;
        }
    }
    total
}

pub fn pool_view(pool: &PoolSpec, catalog: &Catalog, daemonsets: &[Pod]) -> PoolView {
    let overhead = daemonset_overhead(pool, daemonsets);
    let types = catalog
        .types
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.meets(&pool.requirements) && t.offerings_for(&pool.requirements, &pool.node_class).next().is_some()
        })
        .filter_map(|(i, t)| {
            let alloc = &allocatable(t, &pool.kubelet) - &overhead;
            (alloc.cpu > 0 && alloc.memory > 0 && alloc.pods > 0).then(|| PoolType {
                t: i,
                alloc,
                capacity: capacity(t),
                overhead: overhead.clone(),
            })
        })
        .collect();
    PoolView { types }
}

/// How one requirement alternative of a group sits with one pool.
#[derive(Debug, Clone)]
pub struct AltFit {
    /// Pool requirements narrowed by the alternative.
    pub reqs: Requirements,
    /// Per pool-type index: the type meets the requirements and has an allowed offering.
    pub types: Vec<bool>,
    /// Per zone index (of the solve's zone list): allowed.
    pub zones: Vec<bool>,
    /// On-demand, spot, reserved: allowed.
    pub caps: [bool; 3],
}

/// Compatibility of a group with a pool at one relaxation level.
#[derive(Debug, Clone)]
pub struct GroupFit {
    pub alts: Vec<AltFit>,
}

impl GroupFit {
    /// The first alternative allowing pool type `pt` in `zone` at `capacity_type`.
    pub fn alt_for(&self, pt: usize, zone: usize, capacity_type: CapacityType) -> Option<&AltFit> {
        let cap = cap_index(capacity_type);
        self.alts.iter().find(|a| a.types[pt] && a.zones.get(zone).copied().unwrap_or(false) && a.caps[cap])
    }

    pub fn any_type(&self, pt: usize) -> bool {
        self.alts.iter().any(|a| a.types[pt])
    }
}

pub fn cap_index(c: CapacityType) -> usize {
    match c {
        CapacityType::OnDemand => 0,
        CapacityType::Spot => 1,
        CapacityType::Reserved => 2,
    }
}

/// Why a group cannot use a pool, for messages.
pub fn pool_mismatch(g: &Group, level: usize, pool: &PoolSpec) -> Option<String> {
    let c = &g.constraints;
    if let Some(t) = untolerated(&pool.taints, &c.tolerations) {
        let v = t.value.as_deref().map(|v| format!("={v}")).unwrap_or_default();
        return Some(format!("NodePool {}: taint {}{v}:{:?} is not tolerated", pool.name, t.key, t.effect));
    }
    let alts = g.alternatives(level);
    let mut reasons = alts.iter().filter_map(|a| pool.requirements.conflict(a).map(|k| (k, a)));
    if reasons.clone().count() == alts.len()
        && let Some((key, a)) = reasons.next()
    {
        let pool_set = pool.requirements.get(&key).map(|s| s.to_string()).unwrap_or_default();
        let pod_set = a.get(&key).map(|s| s.to_string()).unwrap_or_default();
        return Some(format!(
            "NodePool {}: requirement {key} conflicts (pod needs {pod_set}, pool allows {pool_set})",
            pool.name
        ));
    }
    None
}

/// Lazily computed group × pool compatibility.
#[derive(Default)]
pub struct FitCache {
    cache: HashMap<(usize, usize, usize), Option<GroupFit>>,
    /// Types meeting a set of requirements, per pool: many groups share requirements.
    meets: HashMap<(usize, Requirements), Vec<bool>>,
}

impl FitCache {
    /// The fit of group `gi` (at `level`) with pool `pi`; `None` when the pool cannot take it.
    pub fn get(
        &mut self,
        key: (usize, usize, usize),
        g: &Group,
        pool: &PoolSpec,
        view: &PoolView,
        catalog: &Catalog,
        zones: &[String],
    ) -> Option<&GroupFit> {
        let level = key.1;
        let meets = &mut self.meets;
        self.cache
            .entry(key)
            .or_insert_with(|| {
                if pool_mismatch(g, level, pool).is_some() {
                    return None;
                }
                let mut alts = Vec::new();
                for a in g.alternatives(level) {
                    if pool.requirements.conflict(&a).is_some() {
                        continue;
                    }
                    let reqs = pool.requirements.intersect(&a);
                    // Keys that are not instance labels must be met by the pool's own labels.
                    let label_ok = reqs.iter().all(|(k, set)| {
                        if k == ZONE
                            || k == CAPACITY_TYPE
                            || super::catalog::is_instance_label(k)
                            || k == "topology.kubernetes.io/region"
                        {
                            return true;
                        }
                        match pool.labels.get(k) {
                            Some(v) => set.has(v),
                            None => set.allows_absent(),
                        }
                    });
                    if !label_ok {
                        continue;
                    }
                    let meeting = meets.entry((key.2, reqs.clone())).or_insert_with(|| {
                        view.types
                            .iter()
                            .map(|pt| {
                                let t = &catalog.types[pt.t];
                                t.meets(&reqs) && t.offerings_for(&reqs, &pool.node_class).next().is_some()
                            })
                            .collect()
                    });
                    let types = view
                        .types
                        .iter()
                        .zip(meeting.iter())
                        .map(|(pt, ok)| *ok && g.requests.fits(&pt.alloc))
                        .collect();
                    let zone_set = reqs.get(ZONE);
                    let zones = zones.iter().map(|z| zone_set.is_none_or(|s| s.has(z))).collect();
                    let cap_set = reqs.get(CAPACITY_TYPE);
                    let caps = [CapacityType::OnDemand, CapacityType::Spot, CapacityType::Reserved]
                        .map(|c| cap_set.is_none_or(|s| s.has(c.label())));
                    alts.push(AltFit { reqs, types, zones, caps });
                }
                (!alts.is_empty()).then_some(GroupFit { alts })
            })
            .as_ref()
    }
}
