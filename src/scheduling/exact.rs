//! The exact optimum of the packing model ([`Model`]) for small instances, by dynamic
//! programming over the pods still to place:
//!
//! ```text
//! cost(left) = min over nodes n holding ≥ 1 pod of the first group with pods left
//!              of price(n) + cost(left − n),        cost(nothing) = 0
//! ```
//!
//! Every packing has a node holding a pod of that group, so the recursion misses none. Only
//! nodes that cannot take one more of the pods left are tried: the cost is monotone in the pods
//! left, so a fuller node is never worse. Work is capped; past the cap there is no answer.

use std::collections::HashMap;

use super::bound_model::Model;

/// How much work the search may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most distinct states (∏ (pods_g + 1) is checked against it first).
    pub states: usize,
    /// Most node configurations evaluated.
    pub configs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { states: 200_000, configs: 5_000_000 }
    }
}

/// A cheapest packing's cost and node count.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimum {
    pub cost: f64,
    pub nodes: usize,
}

/// The optimum; `None` when the instance is past `limits`.
pub fn optimum(m: &Model, limits: Limits) -> Option<Optimum> {
    let mut space = 1usize;
    for d in &m.groups {
        space = space.checked_mul(d.pods as usize + 1)?;
        if space > limits.states.saturating_mul(1000) {
            return None;
        }
    }
    let mut s = Search { m, memo: HashMap::new(), configs: 0, limits };
    let left: Vec<u32> = m.groups.iter().map(|d| d.pods).collect();
    let (cost, nodes) = s.cost(&left)?;
    Some(Optimum { cost, nodes })
}

struct Search<'a> {
    m: &'a Model,
    memo: HashMap<Vec<u32>, (f64, usize)>,
    configs: u64,
    limits: Limits,
}

impl Search<'_> {
    fn cost(&mut self, left: &[u32]) -> Option<(f64, usize)> {
        let Some(first) = left.iter().position(|n| *n > 0) else { return Some((0.0, 0)) };
        if let Some(v) = self.memo.get(left) {
            return Some(*v);
        }
        if self.memo.len() >= self.limits.states {
            return None;
        }
        let mut best: Option<(f64, usize)> = None;
        for k in 0..self.m.kinds.len() {
            if self.m.most(first, k) == 0 {
                continue;
            }
            let mut nodes = Vec::new();
            let mut counts = vec![0u32; left.len()];
            self.fill(k, left, first, &mut counts, &mut nodes);
            if self.configs > self.limits.configs {
                return None;
            }
            for n in nodes {
                let rest: Vec<u32> = left.iter().zip(&n).map(|(l, c)| l - c).collect();
                let (c, count) = self.cost(&rest)?;
                let total = c + self.m.kinds[k].price;
                if best.is_none_or(|b| total < b.0 - 1e-12) {
                    best = Some((total, count + 1));
                }
            }
        }
        let best = best?;
        self.memo.insert(left.to_vec(), best);
        Some(best)
    }

    /// Collects the nodes of kind `k` holding at least one pod of `first` that no pod left
    /// fits onto any more, choosing counts group by group from `at`.
    fn fill(&mut self, k: usize, left: &[u32], at: usize, counts: &mut Vec<u32>, out: &mut Vec<Vec<u32>>) {
        if self.configs > self.limits.configs {
            return;
        }
        if at == left.len() {
            self.configs += 1;
            let full = (0..left.len()).all(|g| {
                counts[g] >= left[g] || {
                    counts[g] += 1;
                    let fits = self.m.fits(k, counts);
                    counts[g] -= 1;
                    !fits
                }
            });
            if full {
                out.push(counts.clone());
            }
            return;
        }
        let least = u32::from(at == first_of(left));
        let most = left[at].min(self.m.most(at, k));
        for c in (least.min(most)..=most).rev() {
            counts[at] = c;
            if c == 0 || self.m.fits(k, counts) {
                self.fill(k, left, at + 1, counts, out);
            }
        }
        counts[at] = 0;
    }
}

fn first_of(left: &[u32]) -> usize {
    left.iter().position(|n| *n > 0).unwrap_or(left.len())
}
