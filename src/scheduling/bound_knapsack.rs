//! The pricing problem of the configuration LP: the node of one kind worth the most at given
//! values per pod, a bounded knapsack over the groups with several resource dimensions, per-node
//! caps and shared sets, solved by depth-first branch and bound under a node budget.

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
    /// Per dimension: item positions by value per unit of that dimension.
    orders: Vec<Vec<usize>>,
    used: Vec<i64>,
    shared: Vec<u32>,
    /// Per group: the shared sets it belongs to.
    sets_of: Vec<Vec<usize>>,
    /// Per shared set and item position: the best value per pod of its items from there on.
    set_best: Vec<Vec<f64>>,
    counts: Vec<u32>,
    value: f64,
    best: (f64, Vec<u32>),
    nodes: u64,
    limit: u64,
}

/// Maximises `Σ values_g·a_g` over the nodes of kind `k`, by branch and bound, looking only
/// for nodes worth more than `need` (`upper` is then at most `need` when none is).
pub fn knapsack(m: &Model, k: usize, values: &[f64], limit: u64, need: f64) -> Knapsack {
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
    let orders = (0..m.dims.len())
        .map(|d| {
            let mut o: Vec<usize> = (0..items.len()).collect();
            let ratio = |i: usize| {
                let q = m.groups[items[i].0].requests[d];
                if q == 0 { f64::INFINITY } else { items[i].1 / q as f64 }
            };
            o.sort_by(|a, b| ratio(*b).total_cmp(&ratio(*a)));
            o
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
        items,
        orders,
        used: vec![0; m.dims.len()],
        shared: vec![0; m.shared.len()],
        sets_of: (0..n).map(|g| (0..m.shared.len()).filter(|&si| m.shared[si].groups.contains(&g)).collect()).collect(),
        set_best,
        counts: vec![0; n],
        value: 0.0,
        best: (need.max(0.0), vec![0; n]),
        nodes: 0,
        limit,
    };
    let root = s.relaxed(0);
    s.dfs(0);
    let finished = s.nodes <= s.limit;
    let upper = if finished { s.best.0 } else { root.max(s.best.0) };
    let value = s.best.1.iter().enumerate().map(|(g, c)| values[g] * *c as f64).sum();
    Knapsack { value, counts: s.best.1, upper }
}

impl Search<'_> {
    /// The most items from position `from` on can add: the smallest fractional knapsack over
    /// one dimension at a time (each drops the other dimensions' limits).
    fn relaxed(&self, from: usize) -> f64 {
        let all: f64 = self.items[from..].iter().map(|(_, v, ub)| v * *ub as f64).sum();
        let by_dims = self.fractional(from, |_| true);
        // Items in shared sets: at most the room left in each set, at the set's best value.
        let mut sets = 0.0;
        for (si, sh) in self.m.shared.iter().enumerate() {
            sets += self.set_best[si][from] * sh.per_node.saturating_sub(self.shared[si]) as f64;
        }
        let split = self.fractional(from, |g| self.sets_of[g].is_empty()) + sets;
        all.min(by_dims).min(split)
    }

    /// The smallest, over dimensions, fractional knapsack of the items from `from` on that
    /// `keep` admits, each dimension on its own.
    fn fractional(&self, from: usize, keep: impl Fn(usize) -> bool) -> f64 {
        let alloc = &self.m.kinds[self.k].alloc;
        let mut most = f64::INFINITY;
        for (d, order) in self.orders.iter().enumerate() {
            let mut room = (alloc[d] - self.used[d]) as f64;
            let mut total = 0.0;
            for &i in order.iter().filter(|&&i| i >= from) {
                let (g, v, ub) = self.items[i];
                if !keep(g) {
                    continue;
                }
                let q = self.m.groups[g].requests[d] as f64;
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
            self.items[from..].iter().filter(|it| keep(it.0)).map(|(_, v, ub)| v * *ub as f64).sum()
        } else {
            most
        }
    }

    fn dfs(&mut self, at: usize) {
        self.nodes += 1;
        if self.nodes > self.limit {
            return;
        }
        if self.value > self.best.0 {
            self.best = (self.value, self.counts.clone());
        }
        if at == self.items.len() || self.value + self.relaxed(at) <= self.best.0 * (1.0 + 1e-12) {
            return;
        }
        let (g, v, ub) = self.items[at];
        let alloc = &self.m.kinds[self.k].alloc;
        let mut most = ub as i64;
        for (d, q) in self.m.groups[g].requests.iter().enumerate() {
            if *q > 0 {
                most = most.min((alloc[d] - self.used[d]) / q);
            }
        }
        for &si in &self.sets_of[g] {
            most = most.min(self.m.shared[si].per_node as i64 - self.shared[si] as i64);
        }
        for c in (0..=most.max(0)).rev() {
            self.place(g, c, v);
            self.dfs(at + 1);
            self.place(g, -c, v);
            if self.nodes > self.limit {
                return;
            }
        }
    }

    fn place(&mut self, g: usize, c: i64, v: f64) {
        for (d, q) in self.m.groups[g].requests.iter().enumerate() {
            self.used[d] += q * c;
        }
        for &si in &self.sets_of[g] {
            self.shared[si] = (self.shared[si] as i64 + c) as u32;
        }
        self.counts[g] = (self.counts[g] as i64 + c) as u32;
        self.value += v * c as f64;
    }
}
