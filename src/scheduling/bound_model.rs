//! The packing model the bounds and the exact solver share, built from an [`Input`]: pod groups
//! with their demand and per-node caps, node kinds (NodePool × instance type) with allocatable
//! and price, and which kinds can hold a pod of each group.
//!
//! Every constraint here is one the packer also obeys, and some of the packer's are left out
//! (zone topology unless `bound_zoned` adds its rows, colocation, limits, existing nodes,
//! relaxation levels taken at their most relaxed), so a packing of the pods onto new nodes is
//! a solution of this model: an optimum of the model is a lower bound on the packer's cost for
//! the same pods.
//!
//! ```text
//! Input ─group─► groups (demand, requests, per-node cap) ─┐
//!       ─pool views─► kinds (allocatable, cheapest price) ─┴─► Model ─► bound_assign │ bound_columns │ exact
//! ```

use std::collections::HashMap;

use super::catalog::HOSTNAME;
use super::groups::{self, Group};
use super::input::Input;
use super::resources::{CPU, GIB, GPU, MEMORY, PODS, Resources, STORAGE};
use super::view::{self, FitCache};

/// Pods sharing requests and constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    pub pods: u32,
    /// Requests per dimension of [`Model::dims`].
    pub requests: Vec<i64>,
    /// Most pods of the group on one node (`u32::MAX`: no cap beyond resources).
    pub per_node: u32,
}

/// A node choice: an instance type as a NodePool offers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Kind {
    /// Instance type name, for reports.
    pub name: String,
    /// Allocatable per dimension, less DaemonSet overhead.
    pub alloc: Vec<i64>,
    /// The cheapest offering the pool allows, USD per hour.
    pub price: f64,
    /// Per group: a pod of the group can run on this kind.
    pub holds: Vec<bool>,
    /// The class of zones the kind launches in ([`ZoneRow::zone`]); 0 where the model has no
    /// zone rows.
    pub zone: usize,
}

/// At least `least` pods of `groups` on nodes of the zone class `zone`: a zone topology spread
/// puts a share of the pods it counts in every zone ([`super::bound_zoned`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneRow {
    pub groups: Vec<usize>,
    pub zone: usize,
    pub least: f64,
}

/// Groups of which one node holds at most `per_node` pods together (hostname anti-affinity,
/// hostname spread, host ports).
#[derive(Debug, Clone, PartialEq)]
pub struct Shared {
    pub groups: Vec<usize>,
    pub per_node: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Model {
    /// Resource names, one per dimension (only those some group requests).
    pub dims: Vec<String>,
    pub groups: Vec<Demand>,
    pub kinds: Vec<Kind>,
    pub shared: Vec<Shared>,
    /// Pods each zone class must hold; empty in the zone-free model.
    pub zoned: Vec<ZoneRow>,
    /// Nodes any packing needs: the largest ⌈pods ÷ per-node cap⌉ over shared sets.
    pub min_nodes: f64,
    /// Pods left out: no kind can hold them, or a free kind can.
    pub left_out: u32,
}

/// What tells groups apart in the LPs: requests, the kinds that hold them and their zone rows.
pub type Key = (Vec<i64>, Vec<bool>, Vec<bool>);

/// Scale of a dimension for the LPs: cores, GiB, or the raw count.
pub fn scale(dim: &str) -> f64 {
    match dim {
        CPU => 1000.0,
        MEMORY => GIB as f64,
        _ => 1.0,
    }
}

pub fn dims_of(r: &Resources, names: &[String]) -> Vec<i64> {
    names.iter().map(|n| r.get(n)).collect()
}

impl Model {
    /// The model of `input`'s pending pods; existing nodes are ignored.
    pub fn of(input: &Input) -> Model {
        let mut gs = groups::group(&input.pods);
        let keys = groups::exclusion_keys(&mut gs, HOSTNAME);
        let dims = dims_requested(&gs);
        let zones = input.catalog.zones();
        let mut fits = FitCache::default();
        let mut kinds = Vec::new();
        for (pi, pool) in input.pools.iter().enumerate() {
            let v = view::pool_view(pool, input.catalog, &input.daemonsets);
            for (pt, t) in v.types.iter().enumerate() {
                let it = &input.catalog.types[t.t];
                let Some(o) = it.cheapest(&pool.requirements, &pool.node_class) else { continue };
                let holds = gs
                    .iter()
                    .enumerate()
                    .map(|(gi, g)| {
                        let level = g.levels.len() - 1;
                        fits.get((gi, level, pi), g, pool, &v, input.catalog, &zones).is_some_and(|f| f.any_type(pt))
                    })
                    .collect();
                let alloc = dims_of(&t.alloc, &dims);
                kinds.push(Kind { name: it.name.clone(), alloc, price: o.price, holds, zone: 0 });
            }
        }
        let per_node: Vec<u32> = gs.iter().map(per_node_cap).collect();
        let shared = shared_sets(&gs, keys.len());
        let groups = gs
            .iter()
            .zip(per_node)
            .map(|(g, cap)| Demand { pods: g.pods.len() as u32, requests: dims_of(&g.requests, &dims), per_node: cap })
            .collect();
        let mut m = Model { dims, groups, kinds, shared, zoned: Vec::new(), min_nodes: 0.0, left_out: 0 };
        m.prune();
        m.merge_alike();
        m
    }

    /// What tells group `g` apart from others in the LPs.
    pub fn key(&self, g: usize) -> Key {
        let rows = self.zoned.iter().map(|r| r.groups.contains(&g)).collect();
        (self.groups[g].requests.clone(), self.kinds.iter().map(|k| k.holds[g]).collect(), rows)
    }

    /// Whether group `g` is in exactly the zone rows `h` is in.
    pub fn same_rows(&self, g: usize, h: usize) -> bool {
        self.zoned.iter().all(|r| r.groups.contains(&g) == r.groups.contains(&h))
    }

    /// How many zone classes the kinds are in.
    pub fn zone_classes(&self) -> usize {
        self.kinds.iter().map(|k| k.zone + 1).max().unwrap_or(1)
    }

    /// Most pods of group `g` one node of kind `k` holds on its own.
    pub fn most(&self, g: usize, k: usize) -> u32 {
        let (d, kind) = (&self.groups[g], &self.kinds[k]);
        if !kind.holds[g] {
            return 0;
        }
        let mut n = d.per_node.min(d.pods) as i64;
        for (need, have) in d.requests.iter().zip(&kind.alloc) {
            if *need > 0 {
                n = n.min(have / need);
            }
        }
        n.max(0) as u32
    }

    /// The kind with the lowest price per pod of group `g` alone, and how many it holds;
    /// `None` when no kind holds one.
    pub fn alone(&self, g: usize) -> Option<(usize, u32)> {
        let per_pod = |k: usize| self.kinds[k].price / self.most(g, k) as f64;
        let k = (0..self.kinds.len())
            .filter(|&k| self.most(g, k) > 0)
            .min_by(|&a, &b| per_pod(a).total_cmp(&per_pod(b)))?;
        Some((k, self.most(g, k)))
    }

    /// Whether one node of kind `k` holds `counts` pods per group.
    pub fn fits(&self, k: usize, counts: &[u32]) -> bool {
        let kind = &self.kinds[k];
        let groups_ok =
            counts.iter().enumerate().all(|(g, &n)| n == 0 || (kind.holds[g] && n <= self.groups[g].per_node));
        let dims_ok = (0..self.dims.len()).all(|d| {
            counts.iter().enumerate().map(|(g, &n)| n as i64 * self.groups[g].requests[d]).sum::<i64>() <= kind.alloc[d]
        });
        let shared_ok = self.shared.iter().all(|s| s.groups.iter().map(|&g| counts[g]).sum::<u32>() <= s.per_node);
        groups_ok && dims_ok && shared_ok
    }

    /// Drops groups no kind holds or a free kind holds, kinds holding no group, and kinds
    /// another holds at least as much of for no more; then computes `min_nodes`. Returns where
    /// each group went (`None`: dropped).
    pub(super) fn prune(&mut self) -> Vec<Option<usize>> {
        let free: Vec<usize> = (0..self.kinds.len()).filter(|&k| self.kinds[k].price <= 0.0).collect();
        let keep: Vec<bool> = (0..self.groups.len())
            .map(|g| {
                let held = (0..self.kinds.len()).any(|k| self.most(g, k) > 0);
                held && !free.iter().any(|&k| self.most(g, k) > 0)
            })
            .collect();
        self.left_out = self.groups.iter().zip(&keep).filter(|(_, k)| !**k).map(|(d, _)| d.pods).sum();
        let index: Vec<Option<usize>> = keep.iter().scan(0, |n, k| Some(k.then(|| (*n, *n += 1).0))).collect();
        for kind in &mut self.kinds {
            let holds = kind.holds.iter().zip(&keep).filter(|(_, k)| **k).map(|(h, _)| *h).collect();
            kind.holds = holds;
        }
        let groups = self.groups.iter().zip(&keep).filter(|(_, k)| **k).map(|(d, _)| d.clone()).collect();
        self.groups = groups;
        for s in &mut self.shared {
            s.groups = s.groups.iter().filter_map(|&g| index[g]).collect();
        }
        // A row's least counts every pod of its spread: with one left out it no longer holds.
        self.zoned.retain(|r| r.groups.iter().all(|&g| index[g].is_some()));
        for r in &mut self.zoned {
            r.groups = r.groups.iter().filter_map(|&g| index[g]).collect();
        }
        self.min_nodes = self.forced_nodes();
        self.shared.retain(|s| s.groups.len() > 1 || s.groups.iter().any(|&g| self.groups[g].per_node > s.per_node));
        self.kinds.retain(|k| k.price > 0.0 && k.holds.iter().any(|h| *h));
        let keep = self.undominated();
        self.kinds = keep.iter().map(|&k| self.kinds[k].clone()).collect();
        index
    }

    /// The kinds no other kind holds at least as much of for no more (of kinds alike, the
    /// first): a packing's node of any other kind can be swapped for one of these that costs no
    /// more, so an optimum over these is an optimum over all.
    pub fn undominated(&self) -> Vec<usize> {
        let dominated = |a: &Kind, b: &Kind| {
            b.price <= a.price
                && a.zone == b.zone
                && a.alloc.iter().zip(&b.alloc).all(|(x, y)| x <= y)
                && a.holds.iter().zip(&b.holds).all(|(x, y)| !*x || *y)
        };
        let kinds = &self.kinds;
        (0..kinds.len())
            .filter(|&i| {
                let a = &kinds[i];
                !kinds.iter().enumerate().any(|(j, b)| j != i && dominated(a, b) && (!dominated(b, a) || j < i))
            })
            .collect()
    }

    /// Merges groups nothing in the model tells apart (same requests, kinds and zone rows, no
    /// per-node cap, no shared set): the same packings remain, with fewer groups to search. Returns the
    /// group each old one went into.
    pub fn merge_alike(&mut self) -> Vec<usize> {
        let n = self.groups.len();
        let mut seen: HashMap<Key, usize> = HashMap::new();
        let mut target = Vec::with_capacity(n);
        let mut groups: Vec<Demand> = Vec::new();
        for g in 0..n {
            let d = &self.groups[g];
            let alone = d.per_node == u32::MAX && !self.shared.iter().any(|s| s.groups.contains(&g));
            let key = self.key(g);
            match seen.get(&key).copied().filter(|_| alone) {
                Some(t) => {
                    groups[t].pods += d.pods;
                    target.push(t);
                }
                None => {
                    if alone {
                        seen.insert(key, groups.len());
                    }
                    target.push(groups.len());
                    groups.push(d.clone());
                }
            }
        }
        for kind in &mut self.kinds {
            let mut holds = vec![false; groups.len()];
            for (g, t) in target.iter().enumerate() {
                holds[*t] |= kind.holds[g];
            }
            kind.holds = holds;
        }
        for s in &mut self.shared {
            s.groups = s.groups.iter().map(|&g| target[g]).collect();
        }
        for r in &mut self.zoned {
            r.groups = r.groups.iter().map(|&g| target[g]).collect();
            r.groups.sort_unstable();
            r.groups.dedup();
        }
        self.groups = groups;
        target
    }

    /// Nodes the shared sets force: the largest ⌈pods ÷ per-node cap⌉ over them.
    pub fn forced_nodes(&self) -> f64 {
        self.shared
            .iter()
            .map(|s| {
                let pods: u32 = s.groups.iter().map(|&g| self.groups[g].pods).sum();
                (pods as f64 / s.per_node.max(1) as f64).ceil()
            })
            .fold(0.0, f64::max)
    }

    /// Total pods in the model.
    pub fn pods(&self) -> u32 {
        self.groups.iter().map(|d| d.pods).sum()
    }
}

/// The resources some group requests: cpu, memory, storage, pods, GPUs, then extended ones.
pub fn dims_requested(gs: &[Group]) -> Vec<String> {
    let mut dims: Vec<String> = [CPU, MEMORY, STORAGE, PODS, GPU]
        .into_iter()
        .filter(|d| gs.iter().any(|g| g.requests.get(d) > 0))
        .map(String::from)
        .collect();
    for g in gs {
        for (k, v) in &g.requests.extended {
            if *v > 0 && !dims.contains(k) {
                dims.push(k.clone());
            }
        }
    }
    dims
}

/// The shared sets of `keys` exclusion keys: per key, the groups anti-affine to their own
/// (one pod a node) and the groups a hostname spread caps (the largest skew a node).
pub fn shared_sets(gs: &[Group], keys: usize) -> Vec<Shared> {
    let mut shared = Vec::new();
    for k in 0..keys {
        let role = |g: &Group| g.roles.iter().find(|r| r.key == k).copied();
        let anti: Vec<usize> = (0..gs.len()).filter(|&gi| role(&gs[gi]).is_some_and(|r| r.term && r.counts)).collect();
        if !anti.is_empty() {
            shared.push(Shared { groups: anti, per_node: 1 });
        }
        let capped: Vec<(usize, u32)> = (0..gs.len())
            .filter_map(|gi| role(&gs[gi]).filter(|r| r.counts).and_then(|r| r.cap).map(|c| (gi, c)))
            .collect();
        if let Some(most) = capped.iter().map(|(_, c)| *c).max() {
            shared.push(Shared { groups: capped.iter().map(|(g, _)| *g).collect(), per_node: most });
        }
    }
    shared
}

/// Most pods of a group one node takes under the group's own exclusions: one for hostname
/// anti-affinity to itself, max-skew for a hostname spread it counts in.
pub fn per_node_cap(g: &Group) -> u32 {
    let mut cap = u32::MAX;
    for r in &g.roles {
        if r.term && r.counts {
            cap = cap.min(1);
        }
        if let Some(c) = r.cap.filter(|_| r.counts) {
            cap = cap.min(c);
        }
    }
    cap
}
