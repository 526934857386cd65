//! The packing model with its zones: where a zone topology spread counts thousands of pods, a
//! share of them lands in every zone, and a zone that offers only old or dear types makes
//! every packing pay for that share there. The zone-free [`Model`] cannot see it, so its
//! bounds stay below every packing by as much.
//!
//! Here a kind is a pool type in a class of zones (zones that offer the same types at the same
//! prices to the same groups), at its price there, and each spread adds a [`ZoneRow`] per
//! class: at least `⌈(n − (zones − 1)·max_skew) ÷ zones⌉` of the `n` pods it counts in each
//! zone of the class. Any plan that keeps the skew for every pod the spread counts, once all
//! are placed, meets the rows; the packer's plans do ([`topology::zone_spreads`]). Kubernetes
//! checks the skew as each carrying pod is placed, so pods that only match the selector may
//! leave it uneven; a bound over the rows is a bound for plans that keep it even.
//!
//! ```text
//! Input ─groups─► zone spreads (counted groups, max skew) ───────────────┐
//!       ─pool types × zones─► prices, holds ─► zone classes ─► kinds ────┴─► Model with rows
//! ```

use std::collections::HashMap;

use super::bound_columns::Pattern;
use super::bound_model::{Demand, Kind, Model, ZoneRow, dims_of, dims_requested, per_node_cap, shared_sets};
use super::catalog::HOSTNAME;
use super::groups;
use super::input::Input;
use super::plan::Plan;
use super::solve;
use super::topology::{self, ZoneSpread};
use super::view::{self, FitCache, PoolView};

/// A pool type as each zone offers it.
struct Offered {
    name: String,
    alloc: Vec<i64>,
    /// Per zone: the cheapest offering the pool allows there.
    prices: Vec<Option<f64>>,
    /// Per zone, per group: a pod of the group can run on the type there.
    holds: Vec<Vec<bool>>,
}

/// The zoned model, and where the input's pods and zones are in it.
pub struct Zoned {
    pub model: Model,
    /// Per pending pod (as the input lists them): its group; `None`: left out.
    pub group_of: Vec<Option<usize>>,
    /// Per zone: its class.
    pub class_of: HashMap<String, usize>,
}

impl Zoned {
    /// With alike shared sets merged ([`Model::merged`]): fewer groups, still a bound.
    pub fn merged(self) -> Zoned {
        let (model, target) = self.model.merged_with_map();
        let group_of = self.group_of.iter().map(|g| g.map(|g| target[g])).collect();
        Zoned { model, group_of, class_of: self.class_of }
    }

    /// The nodes of `plan` as the model's columns, to start column generation from: each
    /// node's pods per group on the cheapest kind of its zone's class that holds them (nodes
    /// none holds are left out), once per node alike.
    pub fn columns(&self, plan: &Plan, input: &Input) -> Vec<Pattern> {
        let m = &self.model;
        let index: HashMap<&str, usize> = input.pods.iter().enumerate().map(|(i, p)| (p.name.as_str(), i)).collect();
        let mut out = Vec::new();
        for claim in &plan.claims {
            let Some(&zone) = self.class_of.get(&claim.zone) else { continue };
            let mut counts = vec![0u32; m.groups.len()];
            for g in claim.pods.iter().filter_map(|p| index.get(p.as_str()).and_then(|&i| self.group_of[i])) {
                counts[g] += 1;
            }
            let cheapest = (0..m.kinds.len())
                .filter(|&k| m.kinds[k].zone == zone && m.fits(k, &counts))
                .min_by(|&a, &b| m.kinds[a].price.total_cmp(&m.kinds[b].price));
            if let Some(k) = cheapest.filter(|_| counts.iter().any(|c| *c > 0)) {
                out.push((k, counts));
            }
        }
        // Many nodes are alike: one column each.
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The zoned model of `input`'s pending pods; `None` when no zone spread applies (fewer than
/// two zones, none whose pods all may use every zone, or nodes already running, whose pods the
/// model leaves out).
pub fn zoned(input: &Input) -> Option<Zoned> {
    let mut gs = groups::group(&input.pods);
    let keys = groups::exclusion_keys(&mut gs, HOSTNAME);
    let zones = solve::zones(input);
    let spreads = topology::zone_spreads(&gs, &zones);
    if !input.nodes.is_empty() || zones.len() < 2 || spreads.is_empty() {
        return None;
    }
    let dims = dims_requested(&gs);
    let mut fits = FitCache::default();
    let mut offered = Vec::new();
    for (pi, pool) in input.pools.iter().enumerate() {
        let v = view::pool_view(pool, input.catalog, &input.daemonsets);
        // Per group: per pool type and zone, whether a requirement alternative allows it.
        let allowed: Vec<Option<Vec<Vec<bool>>>> = gs
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                let f = fits.get((gi, g.levels.len() - 1, pi), g, pool, &v, input.catalog, &zones)?;
                let at =
                    |pt: usize, z: usize| f.alts.iter().any(|a| a.types[pt] && a.zones.get(z).copied() == Some(true));
                Some((0..v.types.len()).map(|pt| (0..zones.len()).map(|z| at(pt, z)).collect()).collect())
            })
            .collect();
        offered.extend(offers(input, pi, &v, &zones, &allowed, &dims));
    }
    let (class, sizes) = classes(&offered, zones.len());
    let mut kinds = Vec::new();
    for o in &offered {
        for (c, _) in sizes.iter().enumerate() {
            let z = class.iter().position(|&x| x == c).expect("every class has a zone");
            let Some(price) = o.prices[z] else { continue };
            let holds = o.holds[z].clone();
            kinds.push(Kind { name: o.name.clone(), alloc: o.alloc.clone(), price, holds, zone: c });
        }
    }
    let groups = gs
        .iter()
        .map(|g| Demand { pods: g.pods.len() as u32, requests: dims_of(&g.requests, &dims), per_node: per_node_cap(g) })
        .collect();
    let zoned = rows(&spreads, &gs, zones.len(), &sizes);
    let shared = shared_sets(&gs, keys.len());
    let mut m = Model { dims, groups, kinds, shared, zoned, min_nodes: 0.0, left_out: 0 };
    let kept = m.prune();
    m.zoned = reachable(&m);
    let target = m.merge_alike();
    if m.zoned.is_empty() {
        return None;
    }
    let mut group_of = vec![None; input.pods.len()];
    for (gi, g) in gs.iter().enumerate() {
        for &p in &g.pods {
            group_of[p] = kept[gi].map(|k| target[k]);
        }
    }
    let class_of = zones.into_iter().zip(class).collect();
    Some(Zoned { model: m, group_of, class_of })
}

/// Pool `pi`'s types as `zones` offer them.
fn offers(
    input: &Input,
    pi: usize,
    v: &PoolView,
    zones: &[String],
    allowed: &[Option<Vec<Vec<bool>>>],
    dims: &[String],
) -> Vec<Offered> {
    let pool = &input.pools[pi];
    let mut out = Vec::new();
    for (pt, t) in v.types.iter().enumerate() {
        let it = &input.catalog.types[t.t];
        let prices: Vec<Option<f64>> = zones
            .iter()
            .map(|z| {
                let there = it.offerings_for(&pool.requirements, &pool.node_class).filter(|o| o.zone == *z);
                there.map(|o| o.price).min_by(f64::total_cmp)
            })
            .collect();
        if prices.iter().all(Option::is_none) {
            continue;
        }
        let holds =
            (0..zones.len()).map(|z| allowed.iter().map(|a| a.as_ref().is_some_and(|a| a[pt][z])).collect()).collect();
        out.push(Offered { name: it.name.clone(), alloc: dims_of(&t.alloc, dims), prices, holds });
    }
    out
}

/// Zones alike (every type at the same price, holding the same groups) share a class: the
/// class of each zone, and how many zones each class has.
fn classes(offered: &[Offered], zones: usize) -> (Vec<usize>, Vec<usize>) {
    let alike = |a: usize, b: usize| {
        offered
            .iter()
            .all(|o| o.prices[a].map(f64::to_bits) == o.prices[b].map(f64::to_bits) && o.holds[a] == o.holds[b])
    };
    let mut class = Vec::with_capacity(zones);
    let mut sizes: Vec<usize> = Vec::new();
    for z in 0..zones {
        match (0..z).find(|&y| alike(y, z)) {
            Some(y) => {
                class.push(class[y]);
                sizes[class[y]] += 1;
            }
            None => {
                class.push(sizes.len());
                sizes.push(1);
            }
        }
    }
    (class, sizes)
}

/// Per spread and class of zones: the least pods the class's zones hold together.
fn rows(spreads: &[ZoneSpread], gs: &[groups::Group], zones: usize, sizes: &[usize]) -> Vec<ZoneRow> {
    let mut out = Vec::new();
    for s in spreads {
        let n: u64 = s.counted.iter().map(|&g| gs[g].pods.len() as u64).sum();
        let d = zones as u64;
        let least = n.saturating_sub((d - 1) * s.max_skew as u64).div_ceil(d);
        if least == 0 {
            continue;
        }
        for (c, size) in sizes.iter().enumerate() {
            out.push(ZoneRow { groups: s.counted.clone(), zone: c, least: (least * *size as u64) as f64 });
        }
    }
    out
}

/// The rows with at most as many pods as the class's kinds can hold of their groups: where a
/// class cannot hold its share no packing is complete, and a row lowered to what it can hold
/// keeps the LP feasible and the bound valid.
fn reachable(m: &Model) -> Vec<ZoneRow> {
    m.zoned
        .iter()
        .filter_map(|r| {
            let held = |g: usize| (0..m.kinds.len()).any(|k| m.kinds[k].zone == r.zone && m.most(g, k) > 0);
            let most: u32 = r.groups.iter().filter(|&&g| held(g)).map(|&g| m.groups[g].pods).sum();
            let least = r.least.min(most as f64);
            (least > 0.0).then(|| ZoneRow { least, ..r.clone() })
        })
        .collect()
}
