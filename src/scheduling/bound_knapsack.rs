//! The pricing problem of the configuration LP: the node of one kind worth the most at given
//! values per pod, a bounded knapsack over the groups with several resource dimensions, per-node
//! caps and shared sets, solved by depth-first branch and bound under a node budget.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::bound_model::Model;

/// The best node of a kind found at the given values per pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Knapsack {
    /// Value of `counts` (all zero when no node is worth more than asked).
    pub value: f64,
    /// Pods per group (every group of the model).
    pub counts: Vec<u32>,
    /// No node of the kind is worth more: `value` when the search finished, a relaxation's
    /// value otherwise.
    pub upper: f64,
}

struct Search<'a> {
    m: &'a Model,
    k: usize,
    /// (group, value per pod, most pods), best value per unit of size first.
    items: Vec<(usize, f64, u32)>,
    /// Per item position: its most pods on an empty node, what the relaxations count without
    /// `room`.
    most: Vec<u32>,
    /// Surrogate constraints (weights per dimension) and the item positions by value per unit
    /// of each.
    orders: Vec<(Vec<f64>, Vec<usize>)>,
    used: Vec<i64>,
    shared: Vec<u32>,
    /// Per group: the shared sets it belongs to.
    sets_of: Vec<Vec<usize>>,
    /// Per shared set and item position: the best value per pod of its items from there on.
    set_best: Vec<Vec<f64>>,
    value: f64,
    best: (f64, Vec<u32>),
    nodes: u64,
    limit: u64,
    slack: f64,
    /// The relaxations count only the pods the room left holds ([`Search::room`]).
    room: bool,
}

/// Maximises `Σ values_g·a_g` over the nodes of kind `k`, by branch and bound, looking only
/// for nodes worth more than `need` (`upper` is then at most `need` when none is).
pub fn knapsack(m: &Model, k: usize, values: &[f64], limit: u64, need: f64) -> Knapsack {
    knapsack_within(m, k, values, limit, need, 0.0, true)
}

/// [`knapsack`], giving up a branch when it cannot beat the best node found by more than
/// `slack`: fewer nodes to search, and `upper` is then the best value plus `slack`. With
/// `room`, each relaxation counts a pod only as often as the room left holds it on its own: a
/// tighter bound on nodes of few pods, and a different search order.
pub fn knapsack_within(m: &Model, k: usize, values: &[f64], limit: u64, need: f64, slack: f64, room: bool) -> Knapsack {
    let alloc = &m.kinds[k].alloc;
    let size = |g: usize| -> f64 {
        let r = &m.groups[g].requests;
        r.iter().zip(alloc).map(|(q, a)| *q as f64 / (*a).max(1) as f64).sum::<f64>().max(1e-12)
    };
    let mut items: Vec<(usize, f64, u32)> = (0..m.groups.len())
        .filter(|&g| values[g] > 1e-12)
        .map(|g| (g, values[g], m.most(g, k)))
        .filter(|it| it.2 > 0)
        .collect();
    items.sort_by(|a, b| (b.1 / size(b.0)).total_cmp(&(a.1 / size(a.0))));
    let orders = surrogates(alloc)
        .into_iter()
        .map(|w| {
            let mut o: Vec<usize> = (0..items.len()).collect();
            let ratio = |i: usize| {
                let q: f64 = m.groups[items[i].0].requests.iter().zip(&w).map(|(q, w)| *q as f64 * w).sum();
                if q <= 0.0 { f64::INFINITY } else { items[i].1 / q }
            };
            o.sort_by(|a, b| ratio(*b).total_cmp(&ratio(*a)));
            (w, o)
        })
        .collect();
    let n = m.groups.len();
    let set_best = m
        .shared
        .iter()
        .map(|sh| {
            let mut best = vec![0.0f64; items.len() + 1];
            for i in (0..items.len()).rev() {
                let v = if sh.groups.contains(&items[i].0) { items[i].1 } else { 0.0 };
                best[i] = best[i + 1].max(v);
            }
            best
        })
        .collect();
    let mut s = Search {
        m,
        k,
        most: items.iter().map(|i| i.2).collect(),
        items,
        orders,
        used: vec![0; m.dims.len()],
        shared: vec![0; m.shared.len()],
        sets_of: (0..n).map(|g| (0..m.shared.len()).filter(|&si| m.shared[si].groups.contains(&g)).collect()).collect(),
        set_best,
        value: 0.0,
        best: (need.max(0.0), vec![0; n]),
        nodes: 0,
        limit,
        slack,
        room,
    };
    let root = s.relaxed(0);
    let upper = if s.items.is_empty() { s.best.0 + slack } else { s.best_first(root) };
    let value = s.best.1.iter().enumerate().map(|(g, c)| values[g] * *c as f64).sum();
    Knapsack { value, counts: s.best.1, upper }
}

/// Weights of the surrogate constraints `Σ_d w_d·used_d ≤ Σ_d w_d·alloc_d` the relaxation
/// uses, each implied by the node's allocatable: every dimension alone, and for every pair of
/// dimensions a mix of the two in units of the node's allocatable (two dimensions that
/// both bind are much tighter together than either alone).
/// Shares of the first dimension in the pairwise surrogates.
const MIXES: [f64; 1] = [0.5];

fn surrogates(alloc: &[i64]) -> Vec<Vec<f64>> {
    let n = alloc.len();
    let unit = |d: usize| 1.0 / alloc[d].max(1) as f64;
    let mut out: Vec<Vec<f64>> = (0..n).map(|d| (0..n).map(|e| if e == d { unit(d) } else { 0.0 }).collect()).collect();
    for a in 0..n {
        for b in a + 1..n {
            for t in MIXES {
                out.push(
                    (0..n)
                        .map(|e| {
                            if e == a {
                                t * unit(a)
                            } else if e == b {
                                (1.0 - t) * unit(b)
                            } else {
                                0.0
                            }
                        })
                        .collect(),
                );
            }
        }
    }
    out
}

impl Search<'_> {
    /// The most items from position `from` on can add: the smallest fractional knapsack over
    /// one dimension at a time (each drops the other dimensions' limits).
    fn relaxed(&self, from: usize) -> f64 {
        let left;
        let room: &[u32] = if self.room {
            left = self.room(from);
            &left
        } else {
            &self.most[from..]
        };
        let all: f64 = self.items[from..].iter().zip(room).map(|((_, v, _), n)| v * *n as f64).sum();
        let by_dims = self.fractional(from, room, |_| true);
        // Items in shared sets: at most the room left in each set, at the set's best value.
        let mut sets = 0.0;
        for (si, sh) in self.m.shared.iter().enumerate() {
            sets += self.set_best[si][from] * sh.per_node.saturating_sub(self.shared[si]) as f64;
        }
        let split = self.fractional(from, room, |g| self.sets_of[g].is_empty()) + sets;
        all.min(by_dims).min(split)
    }

    /// Per item from `from` on: the most pods of it the room left holds on its own, in every
    /// dimension and shared set at once. A pod too large for what is left adds nothing to any
    /// relaxation, which on a node of few pods keeps the bound near what fits.
    fn room(&self, from: usize) -> Vec<u32> {
        let alloc = &self.m.kinds[self.k].alloc;
        self.items[from..]
            .iter()
            .map(|&(g, _, ub)| {
                let mut most = ub as i64;
                for ((q, a), u) in self.m.groups[g].requests.iter().zip(alloc).zip(&self.used) {
                    if *q > 0 {
                        most = most.min((a - u) / q);
                    }
                }
                for &si in &self.sets_of[g] {
                    most = most.min(self.m.shared[si].per_node as i64 - self.shared[si] as i64);
                }
                most.max(0) as u32
            })
            .collect()
    }

    /// The smallest, over dimensions, fractional knapsack of the items from `from` on that
    /// `keep` admits, each dimension on its own, each item at most its `room`.
    fn fractional(&self, from: usize, room_of: &[u32], keep: impl Fn(usize) -> bool) -> f64 {
        let alloc = &self.m.kinds[self.k].alloc;
        let mut most = f64::INFINITY;
        for (w, order) in &self.orders {
            let mut room: f64 = alloc.iter().zip(&self.used).zip(w).map(|((a, u), w)| (a - u) as f64 * w).sum();
            let mut total = 0.0;
            for &i in order.iter().filter(|&&i| i >= from) {
                let (g, v, _) = self.items[i];
                let ub = room_of[i - from];
                if !keep(g) || ub == 0 {
                    continue;
                }
                let q: f64 = self.m.groups[g].requests.iter().zip(w).map(|(q, w)| *q as f64 * w).sum();
                let take = if q == 0.0 { ub as f64 } else { (room / q).min(ub as f64) };
                total += take * v;
                room -= take * q;
                if room <= 0.0 {
                    break;
                }
            }
            most = most.min(total);
        }
        if self.orders.is_empty() {
            self.items[from..]
                .iter()
                .zip(room_of)
                .filter(|(it, _)| keep(it.0))
                .map(|((_, v, _), n)| v * *n as f64)
                .sum()
        } else {
            most
        }
    }

    /// Best-first branch and bound: open nodes by their bound, highest first, so when the
    /// budget runs out the highest open bound caps every node not yet seen. Returns that cap
    /// (the best value plus the slack when the search finished).
    fn best_first(&mut self, root: f64) -> f64 {
        let floor = |best: f64, slack: f64| best * (1.0 + 1e-12) + slack;
        let mut heap = BinaryHeap::new();
        // Per node: its parent's trail, group and count, to rebuild the counts of the best.
        let mut trail: Vec<(usize, usize, u32)> = vec![(usize::MAX, 0, 0)];
        let n = self.m.dims.len();
        heap.push(Open {
            bound: root,
            value: 0.0,
            at: 0,
            used: vec![0; n],
            shared: vec![0; self.m.shared.len()],
            trail: 0,
        });
        while let Some(o) = heap.pop() {
            if o.bound <= floor(self.best.0, self.slack) {
                return self.best.0 + self.slack;
            }
            if self.nodes >= self.limit {
                return o.bound.max(self.best.0 + self.slack);
            }
            let (g, v, ub) = self.items[o.at];
            let alloc = &self.m.kinds[self.k].alloc;
            let mut most = ub as i64;
            for (d, q) in self.m.groups[g].requests.iter().enumerate() {
                if *q > 0 {
                    most = most.min((alloc[d] - o.used[d]) / q);
                }
            }
            for &si in &self.sets_of[g] {
                most = most.min(self.m.shared[si].per_node as i64 - o.shared[si] as i64);
            }
            for c in 0..=most.max(0) {
                self.nodes += 1;
                self.used.clone_from(&o.used);
                self.shared.clone_from(&o.shared);
                self.value = o.value;
                self.place(g, c, v);
                let at = if c > 0 {
                    trail.push((o.trail, g, c as u32));
                    trail.len() - 1
                } else {
                    o.trail
                };
                if self.value > self.best.0 {
                    let mut counts = vec![0; self.m.groups.len()];
                    let mut t = at;
                    while t != 0 {
                        let (parent, g, c) = trail[t];
                        counts[g] += c;
                        t = parent;
                    }
                    self.best = (self.value, counts);
                }
                if o.at + 1 < self.items.len() {
                    let bound = self.value + self.relaxed(o.at + 1);
                    if bound > floor(self.best.0, self.slack) {
                        let (used, shared) = (self.used.clone(), self.shared.clone());
                        heap.push(Open { bound, value: self.value, at: o.at + 1, used, shared, trail: at });
                    }
                }
            }
        }
        self.best.0 + self.slack
    }

    fn place(&mut self, g: usize, c: i64, v: f64) {
        for (d, q) in self.m.groups[g].requests.iter().enumerate() {
            self.used[d] += q * c;
        }
        for &si in &self.sets_of[g] {
            self.shared[si] = (self.shared[si] as i64 + c) as u32;
        }
        self.value += v * c as f64;
    }
}

/// A node of the search not yet branched on: items before `at` decided.
struct Open {
    bound: f64,
    value: f64,
    at: usize,
    used: Vec<i64>,
    shared: Vec<u32>,
    trail: usize,
}

impl PartialEq for Open {
    fn eq(&self, other: &Self) -> bool {
        self.bound.total_cmp(&other.bound).is_eq()
    }
}

impl Eq for Open {}

impl PartialOrd for Open {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Open {
    fn cmp(&self, other: &Self) -> Ordering {
        self.bound.total_cmp(&other.bound)
    }
}
