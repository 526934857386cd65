//! The most valuable node of one offering at the current prices: a bounded knapsack over the
//! groups that can run there, with one pod of the seed placed first, by depth-first branch and
//! bound under a node budget.
//!
//! The greedy fills of [`super::pack`] take the seed's pods to the limit and then the others in
//! a fixed order, which on small nodes (two or three pods each) leaves one dimension half used:
//! a cpu-heavy seed on a node whose memory the next pods do not fit. Here every count of every
//! group is open, so the pods that fill both cpu and memory are found.

use std::rc::Rc;

use super::groups::{ExclCounts, Role};
use super::pack::{Fill, Offer, State};
use super::resources::Resources;
use super::solve::{Ctx, fit_count};

/// Search nodes per knapsack: enough to prove the optimum of a node holding a few pods, and a
/// cap on the time a large node's search takes.
pub(super) const BUDGET: u32 = 100;

/// Groups searched: those worth the most per unit of the node's capacity.
pub(super) const ITEMS: usize = 24;

/// A group that may join the node.
struct Item<'a> {
    gi: usize,
    requests: &'a Resources,
    roles: &'a [Role],
    value: f64,
    most: u32,
}

struct Search<'a> {
    items: Vec<Item<'a>>,
    /// Item positions from `i` on by value per unit of cpu, memory and pod slots.
    by_dim: [Vec<usize>; 3],
    counts: Vec<u32>,
    best: (f64, Vec<u32>),
    nodes: u32,
}

/// The node at offer `at` whose pods are worth the most at the current
/// prices, holding at least one pod of `seed`; `None` when the seed does not fit.
pub(super) fn knapsack_fill(ctx: &Ctx, st: &State, seed: usize, at: Offer) -> Option<Fill> {
    let Offer { pi, pt, zone, cap, .. } = at;
    let pool_type = &ctx.views[pi].types[pt];
    let mut free = pool_type.alloc.clone();
    let mut excl = ExclCounts::new(ctx.keys.len());
    let g = &st.groups[seed];
    if fit_count(&free, &g.requests).min(excl.room(&g.roles)).min(st.rem[seed]) == 0 {
        return None;
    }
    free -= &g.requests;
    excl.add(&g.roles, 1);
    let order = dense_order(ctx, st, pi, pt);
    let mut items = Vec::new();
    for &gi in order.iter() {
        if items.len() == ITEMS {
            break;
        }
        let h = &st.groups[gi];
        let left = if gi == seed { st.rem[gi] - 1 } else { st.rem[gi] };
        if left == 0 || !h.requests.fits(&free) {
            continue;
        }
        if gi != seed && st.table[pi][gi].as_ref().is_none_or(|f| f.alt_for(pt, zone, cap).is_none()) {
            continue;
        }
        let most = fit_count(&free, &h.requests).min(left);
        items.push(Item { gi, requests: &h.requests, roles: &h.roles, value: st.pod_value[gi], most });
    }
    let per = |it: &Item, d: usize| -> f64 {
        let used = [it.requests.cpu, it.requests.memory, it.requests.pods][d];
        if used <= 0 { f64::INFINITY } else { it.value / used as f64 }
    };
    let by_dim = [0, 1, 2].map(|d| {
        let mut o: Vec<usize> = (0..items.len()).collect();
        o.sort_by(|a, b| per(&items[*b], d).total_cmp(&per(&items[*a], d)));
        o
    });
    let n = items.len();
    let mut s = Search { items, by_dim, counts: vec![0; n], best: (0.0, vec![0; n]), nodes: 0 };
    s.search(0, &mut free, &mut excl, 0.0);
    let mut takes = vec![(seed, 1u32)];
    let mut requests = g.requests.clone();
    let mut value = st.prices[3] + st.pod_value[seed];
    for (it, &c) in s.items.iter().zip(&s.best.1) {
        if c == 0 {
            continue;
        }
        requests.sub_times(it.requests, -(c as i64));
        value += c as f64 * it.value;
        match takes.iter_mut().find(|(gi, _)| *gi == it.gi) {
            Some(t) => t.1 += c,
            None => takes.push((it.gi, c)),
        }
    }
    Some(Fill { at, takes, value, requests })
}

impl Search<'_> {
    fn search(&mut self, i: usize, free: &mut Resources, excl: &mut ExclCounts, value: f64) {
        if value > self.best.0 + 1e-12 {
            self.best = (value, self.counts.clone());
        }
        if i == self.items.len() {
            return;
        }
        self.nodes += 1;
        if value + self.upper(i, free) <= self.best.0 + 1e-12 {
            return;
        }
        let it = &self.items[i];
        let (requests, roles, v) = (it.requests, it.roles, it.value);
        let most = fit_count(free, requests).min(excl.room(roles)).min(it.most);
        // Past the budget, only the largest count is tried: the rest of the search is a greedy
        // dive.
        for c in (0..=most).rev() {
            if self.nodes >= BUDGET && c < most {
                break;
            }
            free.sub_times(requests, c as i64);
            excl.add(roles, c);
            self.counts[i] = c;
            self.search(i + 1, free, excl, value + c as f64 * v);
            free.sub_times(requests, -(c as i64));
            excl.remove(roles, c);
        }
        self.counts[i] = 0;
    }

    /// What the items from position `i` on can add at most: the smallest, over cpu, memory
    /// and pod slots, of the fractional knapsack in that dimension alone.
    fn upper(&self, i: usize, free: &Resources) -> f64 {
        let room = [free.cpu, free.memory, free.pods];
        let mut least = f64::INFINITY;
        for (d, order) in self.by_dim.iter().enumerate() {
            let mut left = room[d].max(0) as f64;
            let mut total = 0.0;
            for &p in order.iter().filter(|&&p| p >= i) {
                let it = &self.items[p];
                let used = [it.requests.cpu, it.requests.memory, it.requests.pods][d] as f64;
                if used <= 0.0 {
                    total += it.most as f64 * it.value;
                    continue;
                }
                let take = (left / used).min(it.most as f64);
                total += take * it.value;
                left -= take * used;
            }
            least = least.min(total);
        }
        least
    }
}

/// The groups worth a value, by value per unit of pool type `pt`'s capacity, most first;
/// computed once per type while the values hold.
fn dense_order(ctx: &Ctx, st: &State, pi: usize, pt: usize) -> Rc<Vec<usize>> {
    if let Some(o) = st.dense.borrow().get(&(pi, pt)) {
        return o.clone();
    }
    let alloc = &ctx.views[pi].types[pt].alloc;
    let size = |r: &Resources| {
        r.cpu as f64 / alloc.cpu.max(1) as f64
            + r.memory as f64 / alloc.memory.max(1) as f64
            + r.pods as f64 / alloc.pods.max(1) as f64
    };
    let density = |gi: usize| st.pod_value[gi] / size(&st.groups[gi].requests).max(1e-12);
    let mut order: Vec<usize> =
        st.order.iter().copied().filter(|&gi| st.pod_value[gi] > 0.0 && !st.groups[gi].colocate).collect();
    order.sort_by(|&a, &b| density(b).total_cmp(&density(a)));
    let order = Rc::new(order);
    st.dense.borrow_mut().insert((pi, pt), order.clone());
    order
}
