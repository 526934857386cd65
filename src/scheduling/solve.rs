//! `solve`: pending pods → a [`Plan`]. Existing nodes first, then NodeClaims already launching,
//! then new NodeClaims chosen by the selected strategy.
//!
//! ```text
//! pods ─group─► groups ─pin_domains─► zone-pinned groups
//!   └─ for each relaxation level: existing & in-flight nodes (first fit) ─► new capacity
//!                                   (cost-optimal packing or Karpenter-style FFD)
//! ```

use super::catalog::{Catalog, HOSTNAME, INSTANCE_TYPE, ZONE};
use super::groups::{self, ExclCounts, ExclKey, Group};
use super::input::{Input, Strategy};
use super::plan::{Binding, Plan, Unschedulable};
use super::pod::untolerated;
use super::pool::{Limits, Usage};
use super::reserved::ReservedLeft;
use super::resources::Resources;
pub use super::resources::fit_count;
use super::topology::{self, Domains};
use super::view::{self, FitCache, PoolView};
use super::zone_cost::ZoneOffers;
use super::{ffd, pack};

/// State shared by the phases of one solve.
pub struct Ctx<'a> {
    pub input: &'a Input<'a>,
    pub views: Vec<PoolView>,
    pub keys: Vec<ExclKey>,
    pub fits: FitCache,
    /// Every zone in play, sorted; zones are referred to by their index here.
    pub zones: Vec<String>,
    pub pool_usage: Vec<Usage>,
    pub cluster_usage: Usage,
    pub plan: Plan,
    /// Why pools could not take a group's pods, by group index, for messages.
    pub reasons: Vec<Vec<String>>,
    /// Free reserved instances not yet planned for.
    pub reserved: ReservedLeft,
}

impl<'a> Ctx<'a> {
    pub fn catalog(&self) -> &'a Catalog {
        self.input.catalog
    }

    /// True when one more node of `capacity` fits the pool's and the cluster's limits;
    /// otherwise the reason.
    pub fn limit_room(&self, pi: usize, capacity: &Resources) -> Result<(), String> {
        let pool = &self.input.pools[pi];
        if let Some(what) = pool.limits.exceeded_by(&self.pool_usage[pi], capacity) {
            return Err(format!("NodePool {} limit on {what} reached", pool.name));
        }
        if let Some(what) = self.input.cluster_limits.exceeded_by(&self.cluster_usage, capacity) {
            return Err(format!("cluster limit on {what} (ClusterPolicy) reached"));
        }
        Ok(())
    }

    /// Whether growing an already counted node by `delta` keeps cpu and memory within limits.
    pub fn delta_room(&self, pi: usize, delta: &Resources) -> bool {
        let within = |l: &Limits, u: &Usage| {
            l.cpu.is_none_or(|c| u.resources.cpu + delta.cpu <= c)
                && l.memory.is_none_or(|m| u.resources.memory + delta.memory <= m)
        };
        within(&self.input.pools[pi].limits, &self.pool_usage[pi])
            && within(&self.input.cluster_limits, &self.cluster_usage)
    }

    pub fn use_capacity(&mut self, pi: usize, capacity: &Resources) {
        self.pool_usage[pi].add(capacity);
        self.cluster_usage.add(capacity);
    }

    pub fn zone_index(&self, zone: &str) -> usize {
        self.zones.iter().position(|z| z == zone).unwrap_or(usize::MAX)
    }

    pub fn note(&mut self, gi: usize, reason: String) {
        if !self.reasons[gi].contains(&reason) {
            self.reasons[gi].push(reason);
        }
    }
}

/// Current usage of each pool and of the cluster from existing and in-flight nodes.
fn usage(input: &Input) -> (Vec<Usage>, Usage) {
    let mut pools = vec![Usage::default(); input.pools.len()];
    let mut cluster = Usage::default();
    for n in &input.nodes {
        let cap = n.label(INSTANCE_TYPE).and_then(|t| input.catalog.get(t)).map(view::capacity).unwrap_or_else(|| {
            Resources { cpu: n.allocatable.cpu, memory: n.allocatable.memory, ..Resources::default() }
        });
        cluster.add(&cap);
        if let Some(pi) = input.pools.iter().position(|p| Some(&p.name) == n.node_pool.as_ref()) {
            pools[pi].add(&cap);
        }
    }
    (pools, cluster)
}

/// Places pending pods. Pure: the same input gives the same plan.
pub fn solve(input: &Input) -> Plan {
    let mut groups = groups::group(&input.pods);
    let keys = groups::exclusion_keys(&mut groups, HOSTNAME);
    let all_zones = zones(input);
    let views: Vec<PoolView> =
        input.pools.iter().map(|p| view::pool_view(p, input.catalog, &input.daemonsets)).collect();
    let offers = zone_offers(input, &views, &all_zones);
    let domains = Domains { nodes: &input.nodes, zones: all_zones.clone(), offers };
    let (mut groups, rejected) = topology::pin_domains(groups, &domains);
    let (pool_usage, cluster_usage) = usage(input);
    let mut ctx = Ctx {
        input,
        views,
        keys,
        fits: FitCache::default(),
        zones: all_zones.clone(),
        pool_usage,
        cluster_usage,
        plan: Plan::default(),
        reasons: vec![Vec::new(); groups.len()],
        reserved: ReservedLeft::of(input.catalog),
    };
    for r in rejected {
        for p in r.pods {
            ctx.plan.unschedulable.push(Unschedulable { pod: input.pods[p].name.clone(), reason: r.reason.clone() });
        }
    }
    let mut existing: Vec<(Resources, ExclCounts)> = input
        .nodes
        .iter()
        .map(|n| (n.free(), ExclCounts::of_pods(&ctx.keys, n.pods.iter().map(|p| p.as_ref()), HOSTNAME)))
        .collect();
    let levels = groups.iter().map(|g| g.levels.len()).max().unwrap_or(1);
    for level in 0..levels {
        place_on_nodes(&mut ctx, &mut groups, &mut existing, level);
        match input.strategy {
            Strategy::CostOptimal => pack::pack(&mut ctx, &mut groups, level, true),
            Strategy::Greedy => pack::pack(&mut ctx, &mut groups, level, false),
            Strategy::FirstFitDecreasing => ffd::pack(&mut ctx, &mut groups, level),
        }
    }
    // Only a pod left unplaced can leave its spread partners skewed.
    if groups.iter().any(|g| !g.pods.is_empty()) || !ctx.plan.unschedulable.is_empty() {
        topology::enforce_spread(&mut ctx.plan, input, &all_zones);
    }
    for (gi, g) in groups.iter().enumerate() {
        if g.pods.is_empty() {
            continue;
        }
        let reason = explain(&ctx, g, gi);
        for &p in &g.pods {
            ctx.plan.unschedulable.push(Unschedulable { pod: input.pods[p].name.clone(), reason: reason.clone() });
        }
    }
    ctx.plan
}

/// Per zone of `zones`: the allocatable and price of every type a pool may launch there.
fn zone_offers(input: &Input, views: &[PoolView], zones: &[String]) -> ZoneOffers {
    let mut out = vec![Vec::new(); zones.len()];
    for (pool, view) in input.pools.iter().zip(views) {
        for pt in &view.types {
            for o in input.catalog.types[pt.t].offerings_for(&pool.requirements, &pool.node_class) {
                if let Some(z) = zones.iter().position(|z| *z == o.zone) {
                    out[z].push((pt.alloc.clone(), o.list_price()));
                }
            }
        }
    }
    out
}

/// Zones any pool can launch into.
pub(super) fn zones(input: &Input) -> Vec<String> {
    let mut zones: Vec<String> = input
        .catalog
        .zones()
        .into_iter()
        .filter(|z| input.pools.iter().any(|p| p.requirements.get(ZONE).is_none_or(|s| s.has(z))))
        .collect();
    for n in &input.nodes {
        if let Some(z) = n.label(ZONE)
            && !zones.iter().any(|x| x == z)
        {
            zones.push(z.to_string());
        }
    }
    zones.sort();
    zones
}

/// Required hostname pod affinity: the nodes holding a matching pod.
fn affinity_nodes(input: &Input, g: &Group) -> Option<Vec<bool>> {
    let terms: Vec<_> = g.constraints.pod_affinity.iter().filter(|t| t.topology_key == HOSTNAME).collect();
    if terms.is_empty() {
        return None;
    }
    Some(
        input
            .nodes
            .iter()
            .map(|n| {
                terms.iter().all(|t| {
                    n.pods.iter().any(|p| p.namespace == g.constraints.namespace && t.selector.matches(&p.labels))
                })
            })
            .collect(),
    )
}

/// First fit over registered nodes, then in-flight NodeClaims.
fn place_on_nodes(ctx: &mut Ctx, groups: &mut [Group], state: &mut [(Resources, ExclCounts)], level: usize) {
    let input = ctx.input;
    let mut order: Vec<usize> = (0..input.nodes.len()).filter(|&i| !input.nodes[i].unschedulable).collect();
    order.sort_by_key(|&i| input.nodes[i].in_flight);
    for g in groups.iter_mut() {
        if g.pods.is_empty() || level >= g.levels.len() {
            continue;
        }
        let alts = g.alternatives(level);
        let near = affinity_nodes(input, g);
        let mut placed = 0usize;
        for &ni in &order {
            if placed == g.pods.len() {
                break;
            }
            let node = &input.nodes[ni];
            if near.as_ref().is_some_and(|m| !m[ni]) {
                continue;
            }
            if untolerated(&node.taints, &g.constraints.tolerations).is_some() {
                continue;
            }
            if !alts.iter().any(|a| a.unmet_by(|k| node.label(k)).is_none()) {
                continue;
            }
            if g.constraints.host_ports.iter().any(|hp| node.host_ports.contains(hp)) {
                continue;
            }
            let (free, excl) = &mut state[ni];
            let n = fit_count(free, &g.requests).min(excl.room(&g.roles)).min((g.pods.len() - placed) as u32);
            for _ in 0..n {
                let p = g.pods[placed];
                ctx.plan.bindings.push(Binding { pod: input.pods[p].name.clone(), node: node.name.clone() });
                placed += 1;
            }
            for _ in 0..n {
                *free -= &g.requests;
            }
            excl.add(&g.roles, n);
        }
        g.pods.drain(..placed);
        if near.is_some() && !g.pods.is_empty() {
            let self_match = g
                .constraints
                .pod_affinity
                .iter()
                .filter(|t| t.topology_key == HOSTNAME)
                .all(|t| t.selector.matches(&g.constraints.labels));
            g.colocate = self_match && near.as_ref().is_some_and(|m| !m.iter().any(|x| *x));
        }
    }
}

/// A person-readable reason for pods of `g` that found no place.
fn explain(ctx: &Ctx, g: &Group, gi: usize) -> String {
    let input = ctx.input;
    if input.pools.is_empty() {
        return "no NodePool is defined".to_string();
    }
    if g.constraints.pod_affinity.iter().any(|t| t.topology_key == HOSTNAME) && !g.colocate {
        return "pod affinity on hostname: no node runs a matching pod".to_string();
    }
    let level = g.levels.len() - 1;
    let mut reasons: Vec<String> = input.pools.iter().filter_map(|p| view::pool_mismatch(g, level, p)).collect();
    if reasons.len() < input.pools.len() {
        let largest = input.catalog.types.iter().max_by_key(|t| (t.vcpu, t.memory_mib));
        for (pi, pool) in input.pools.iter().enumerate() {
            if view::pool_mismatch(g, level, pool).is_some() {
                continue;
            }
            let view = &ctx.views[pi];
            if view.types.is_empty() {
                reasons.push(format!("NodePool {}: no instance type in the catalog meets its requirements", pool.name));
            } else if !view.types.iter().any(|t| g.requests.fits(&t.alloc)) {
                let (name, need, have) = view
                    .types
                    .iter()
                    .filter_map(|t| g.requests.first_excess(&t.alloc))
                    .min_by_key(|(_, need, have)| need - have)
                    .unwrap_or_default();
                reasons.push(format!(
                    "NodePool {}: no instance type offers the requests ({name}: needs {need}, the most any type offers is {have}{})",
                    pool.name,
                    largest.map(|t| format!("; largest type {}", t.name)).unwrap_or_default()
                ));
            }
        }
    }
    reasons.extend(ctx.reasons.get(gi).into_iter().flatten().cloned());
    if reasons.is_empty() {
        reasons.push("no instance type meets the pod's node requirements together with a NodePool's".to_string());
    }
    reasons.join("; ")
}
