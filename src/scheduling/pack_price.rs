//! Values per pod from the nodes a packing used: the LP that covers the demand with those
//! nodes (and, per group, its cheapest node of that group alone) at least cost, solved in its
//! dual form by [`Master`]. Its duals price each group at what the packing's own nodes make it
//! cost, where the resource LP prices cpu and memory on any type, even types no pod fits.

use std::collections::HashMap;

use super::bound_master::Master;
use super::bound_model::{self, Demand, Kind, Model};
use super::groups::Group;
use super::lp::{self, Column, DIMS};
use super::pack::State;
use super::resources::{GIB, Resources};
use super::solve::{Ctx, fit_count};

/// Most groups the LP over a packing's nodes may have once merged: its time grows with their
/// square, from tens of milliseconds at 90 groups to seconds at 1,400.
pub const LP_GROUPS: usize = 400;

/// A node a packing used: pool, pool type, pods per group.
pub(super) type Pattern = (usize, usize, Vec<(usize, u32)>);

/// What the LP over a packing's nodes makes of the demand.
#[derive(Debug, Clone)]
pub(super) struct Values {
    /// Per pod of each group (0 for groups not in the demand).
    pub per_pod: Vec<f64>,
    /// Per node.
    pub per_node: f64,
    /// The LP's optimum: the least the demand costs on those nodes, split however it pays.
    pub lp: f64,
}

/// The values the LP over `patterns` gives; `None` when it cannot be solved.
pub(super) fn pattern_values(ctx: &Ctx, st: &State, demand: &[u32], patterns: &[Pattern]) -> Option<Values> {
    let groups: Vec<usize> = (0..demand.len()).filter(|&gi| demand[gi] > 0).collect();
    if groups.is_empty() {
        return None;
    }
    // Kinds: those the patterns use, and each group's cheapest per pod on its own.
    let mut kinds: Vec<(usize, usize)> = patterns.iter().map(|p| (p.0, p.1)).collect();
    kinds.extend(groups.iter().filter_map(|&gi| cheapest_alone(ctx, st, gi, demand[gi])));
    kinds.sort_unstable();
    kinds.dedup();
    let (classes, index) = classes(st, &groups, demand.len());
    let (m, target) = model(ctx, st, demand, &kinds, &classes);
    if m.groups.len() > LP_GROUPS {
        return None;
    }
    let master = Master::new(&m, &columns(&m, patterns, kinds.as_slice(), &index, &target))?;
    let (duals, per_node) = master.duals();
    let mut per_pod = vec![0.0; demand.len()];
    for &gi in &groups {
        per_pod[gi] = duals[target[index[gi]]];
    }
    Some(Values { per_pod, per_node, lp: master.value() })
}

/// The model's columns for the nodes of `patterns` whose pool type is among `kinds` (sorted),
/// each group counted in its class's merged group (`index`, then `target`); without repeats.
pub(super) fn columns(
    m: &Model,
    patterns: &[Pattern],
    kinds: &[(usize, usize)],
    index: &[usize],
    target: &[usize],
) -> Vec<(usize, Vec<u32>)> {
    columns_by(m, patterns, index, target, |pi, pt, counts| {
        kinds.binary_search(&(pi, pt)).ok().filter(|&k| m.fits(k, counts))
    })
}

/// The model's columns for the nodes of `patterns`, each group counted in its class's merged
/// group (`index`, then `target`), at the kind `kind` picks for a node of that pool and pool
/// type with those counts (none: the node is left out); without repeats.
pub(super) fn columns_by(
    m: &Model,
    patterns: &[Pattern],
    index: &[usize],
    target: &[usize],
    kind: impl Fn(usize, usize, &[u32]) -> Option<usize>,
) -> Vec<(usize, Vec<u32>)> {
    let mut out: Vec<(usize, Vec<u32>)> = Vec::new();
    for (pi, pt, takes) in patterns {
        let mut counts = vec![0u32; m.groups.len()];
        for &(gi, n) in takes {
            if let Some(&c) = index.get(gi).filter(|c| **c != usize::MAX) {
                counts[target[c]] += n;
            }
        }
        if let Some(k) = kind(*pi, *pt, &counts) {
            out.push((k, counts));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Classes of `groups` the LP need not tell apart, and each group's class: groups without
/// exclusion roles differ to it only by their requests (zone-pinned copies of one shape, say),
/// so they are one class per shape; each other group is a class alone. (Merging those of one
/// shape and the same roles too lets the Karpenter mix on the full catalog be re-packed, but
/// it found nothing cheaper there and cost 5 % at 200 pods.)
pub(super) fn classes(st: &State, groups: &[usize], n: usize) -> (Vec<Vec<usize>>, Vec<usize>) {
    classes_by(st, groups, n, |gi| &st.groups[gi].requests)
}

/// Classes of `groups`: those without exclusion roles by `key`, each other group alone; and
/// each group's class.
pub(super) fn classes_by<K: std::hash::Hash + Eq>(
    st: &State,
    groups: &[usize],
    n: usize,
    key: impl Fn(usize) -> K,
) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut classes: Vec<Vec<usize>> = Vec::new();
    let mut by_key: HashMap<K, usize> = HashMap::new();
    let mut index = vec![usize::MAX; n];
    for &gi in groups {
        let g = &st.groups[gi];
        let c = if g.roles.is_empty() {
            *by_key.entry(key(gi)).or_insert_with(|| {
                classes.push(Vec::new());
                classes.len() - 1
            })
        } else {
            classes.push(Vec::new());
            classes.len() - 1
        };
        classes[c].push(gi);
        index[gi] = c;
    }
    (classes, index)
}

/// The model of `classes` on `kinds`, each class held where any of its groups is, with groups
/// alike and alike shared sets merged (a smaller LP whose every pattern is still a column), and
/// the merged group of each class.
pub(super) fn model(
    ctx: &Ctx,
    st: &State,
    demand: &[u32],
    kinds: &[(usize, usize)],
    classes: &[Vec<usize>],
) -> (Model, Vec<usize>) {
    let holds = |pi: usize, pt: usize, gi: usize| st.table[pi][gi].as_ref().is_some_and(|f| f.any_type(pt));
    let places: Vec<Place> = kinds
        .iter()
        .map(|&(pi, pt)| Place {
            pi,
            pt,
            price: st.type_price[pi][pt],
            holds: classes.iter().map(|members| members.iter().any(|&gi| holds(pi, pt, gi))).collect(),
        })
        .collect();
    model_of(ctx, st, demand, &places, classes)
}

/// A node kind of a model: pool, pool type, price, and which classes it holds.
pub(super) struct Place {
    pub(super) pi: usize,
    pub(super) pt: usize,
    pub(super) price: f64,
    pub(super) holds: Vec<bool>,
}

/// [`model`] on kinds given with their prices and the classes they hold.
pub(super) fn model_of(
    ctx: &Ctx,
    st: &State,
    demand: &[u32],
    places: &[Place],
    classes: &[Vec<usize>],
) -> (Model, Vec<usize>) {
    let gs: Vec<Group> = classes.iter().map(|members| st.groups[members[0]].clone()).collect();
    let dims = bound_model::dims_requested(&gs);
    let m = Model {
        groups: classes
            .iter()
            .zip(&gs)
            .map(|(members, g)| Demand {
                pods: members.iter().map(|&gi| demand[gi]).sum(),
                requests: bound_model::dims_of(&g.requests, &dims),
                per_node: bound_model::per_node_cap(g),
            })
            .collect(),
        kinds: places
            .iter()
            .map(|p| Kind {
                name: String::new(),
                alloc: bound_model::dims_of(&ctx.views[p.pi].types[p.pt].alloc, &dims),
                price: p.price,
                holds: p.holds.clone(),
                zone: 0,
            })
            .collect(),
        shared: bound_model::shared_sets(&gs, ctx.keys.len()),
        dims,
        zoned: Vec::new(),
        min_nodes: 0.0,
        left_out: 0,
    };
    let mut m = Model { min_nodes: m.forced_nodes(), ..m };
    let alike = m.merge_alike();
    let (m, sets) = m.merged_with_map();
    (m, alike.iter().map(|&t| sets[t]).collect())
}

/// The pool type with the lowest price per pod of group `gi` alone, when one holds it.
fn cheapest_alone(ctx: &Ctx, st: &State, gi: usize, demand: u32) -> Option<(usize, usize)> {
    let g = &st.groups[gi];
    let mut best: Option<(f64, (usize, usize))> = None;
    for (pi, view) in ctx.views.iter().enumerate() {
        let Some(fit) = &st.table[pi][gi] else { continue };
        for (pt, t) in view.types.iter().enumerate() {
            let price = st.type_price[pi][pt];
            let n = fit_count(&t.alloc, &g.requests).min(bound_model::per_node_cap(g)).min(demand);
            if n == 0 || !price.is_finite() || !fit.any_type(pt) {
                continue;
            }
            let per_pod = price / n as f64;
            if best.is_none_or(|b| per_pod < b.0) {
                best = Some((per_pod, (pi, pt)));
            }
        }
    }
    best.map(|b| b.1)
}

/// Share of the resource LP's value a pod keeps when priced by the packing's own LP.
const TRACE: f64 = 1e-3;

fn cores(r: &Resources) -> f64 {
    r.cpu as f64 / 1000.0
}

fn gib(r: &Resources) -> f64 {
    r.memory as f64 / GIB as f64
}

/// Recomputes the dual prices for the demand left.
pub(super) fn refresh_prices(ctx: &Ctx, st: &mut State) {
    let mut demand = [0.0; DIMS];
    for &gi in &st.order {
        let r = st.rem[gi] as f64;
        let req = &st.groups[gi].requests;
        demand[0] += r * cores(req);
        demand[1] += r * gib(req);
        demand[2] += r * req.pods as f64;
    }
    demand[3] = min_nodes(ctx.keys.len(), st.groups, &st.order, &st.rem);
    let mut columns = Vec::new();
    for (pi, view) in ctx.views.iter().enumerate() {
        for (pt, t) in view.types.iter().enumerate() {
            if st.order.iter().any(|&gi| st.rem[gi] > 0 && st.table[pi][gi].as_ref().is_some_and(|f| f.any_type(pt))) {
                let a = &t.alloc;
                columns.push(Column { offers: [cores(a), gib(a), a.pods as f64, 1.0], price: st.type_price[pi][pt] });
            }
        }
    }
    if let Some(r) = lp::relax(&columns, demand) {
        st.prices = r.prices;
    }
    if st.prices.iter().all(|p| *p == 0.0) {
        st.prices = [0.04, 0.005, 0.0, 0.0];
    }
    for (gi, g) in st.groups.iter().enumerate() {
        let r = &g.requests;
        st.pod_value[gi] = st.prices[0] * cores(r) + st.prices[1] * gib(r) + st.prices[2] * r.pods as f64;
    }
    st.dense.borrow_mut().clear();
    if let Some(values) = &st.fixed {
        // A group the LP values at nothing (its pods ride along on room the nodes have anyway)
        // keeps a trace of its resources' worth, so fills still take it where there is room.
        for (v, fixed) in st.pod_value.iter_mut().zip(&values.per_pod) {
            *v = fixed + TRACE * *v;
        }
        st.prices[3] = values.per_node;
    }
    let p = st.prices;
    st.type_value = ctx
        .views
        .iter()
        .zip(&st.type_price)
        .map(|(view, prices)| {
            let worth = |a: &Resources| p[0] * cores(a) + p[1] * gib(a) + p[2] * a.pods as f64 + p[3];
            view.types.iter().zip(prices).map(|(t, price)| worth(&t.alloc) / price).collect()
        })
        .collect();
}

/// The fewest nodes the per-node exclusions allow: self anti-affinity puts one matching pod on
/// a node, a hostname spread at most max-skew.
pub fn min_nodes(keys: usize, groups: &[Group], order: &[usize], rem: &[u32]) -> f64 {
    let mut most = 0.0f64;
    for k in 0..keys {
        let mut one_each = 0.0;
        let mut capped: Option<(f64, u32)> = None;
        for &gi in order {
            for r in groups[gi].roles.iter().filter(|r| r.key == k) {
                if r.term && r.counts {
                    one_each += rem[gi] as f64;
                }
                if let Some(cap) = r.cap.filter(|_| r.counts) {
                    let (n, c) = capped.unwrap_or((0.0, cap));
                    capped = Some((n + rem[gi] as f64, c.min(cap)));
                }
            }
        }
        most = most.max(one_each);
        if let Some((n, cap)) = capped {
            most = most.max((n / cap.max(1) as f64).ceil());
        }
    }
    most
}
