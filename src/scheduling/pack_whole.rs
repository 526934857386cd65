//! The columns a small batch's integer program may still lack: every full node whose reduced
//! cost at the configuration LP's duals is at most the gap between the best whole solution so
//! far and the LP's optimum.
//!
//! A packing `x` (nodes per column) costs `Σ_c price_c·x_c = Σ_c rc_c·x_c + Σ_g π_g·covered_g +
//! σ·nodes ≥ LP + Σ_c rc_c·x_c` when the duals `π, σ ≥ 0` leave no column a negative reduced
//! cost `rc_c`. So a packing cheaper than the best so far uses no column whose reduced cost
//! exceeds the gap, and the integer program over these columns finds the cheapest packing of
//! the model (up to the solver's tolerance on `rc ≥ 0`). A node with room for one more pod of
//! a group still in demand is left out: the demand is covered, not met exactly, so the fuller
//! node does what it does for the same price.

use super::bound_columns::Pattern;
use super::bound_model::Model;

/// How much the enumeration may do before it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    /// Most columns returned.
    pub columns: usize,
    /// Most partial nodes visited.
    pub visits: u64,
}

/// Every full node whose reduced cost at the duals `pi` (per pod of each group)
/// and `sigma` (per node) is at most `gap`; `None` past the limits.
pub(super) fn within(m: &Model, pi: &[f64], sigma: f64, gap: f64, limits: Limits) -> Option<Vec<Pattern>> {
    let mut e = Enum { m, pi, out: Vec::new(), visits: 0, limits };
    for k in 0..m.kinds.len() {
        let most: Vec<u32> = (0..m.groups.len()).map(|g| m.most(g, k)).collect();
        // What the groups from `g` on can add at most: the bound that prunes a partial node.
        let mut rest = vec![0.0; most.len() + 1];
        for g in (0..most.len()).rev() {
            rest[g] = rest[g + 1] + pi[g] * most[g] as f64;
        }
        let kind = Kind { k, budget: m.kinds[k].price - sigma - gap, most, rest };
        if kind.rest[0] < kind.budget - 1e-12 {
            continue;
        }
        let mut counts = vec![0u32; kind.most.len()];
        e.walk(&kind, 0, 0.0, &mut counts)?;
    }
    Some(e.out)
}

/// One kind's enumeration: a node is kept when its pods are worth at least `budget` (its price
/// less σ and the gap); `most` pods of each group fit alone, and the groups from `g` on are
/// worth at most `rest[g]`.
struct Kind {
    k: usize,
    budget: f64,
    most: Vec<u32>,
    rest: Vec<f64>,
}

struct Enum<'a> {
    m: &'a Model,
    pi: &'a [f64],
    out: Vec<Pattern>,
    visits: u64,
    limits: Limits,
}

impl Enum<'_> {
    /// Counts for groups `g..` of a node of `kind` whose pods are already worth `value`.
    fn walk(&mut self, kind: &Kind, g: usize, value: f64, counts: &mut [u32]) -> Option<()> {
        self.visits += 1;
        if self.visits > self.limits.visits {
            return None;
        }
        if value + kind.rest[g] < kind.budget - 1e-12 {
            return Some(());
        }
        if g == kind.most.len() {
            if counts.iter().any(|c| *c > 0) && self.full(kind, counts) {
                if self.out.len() >= self.limits.columns {
                    return None;
                }
                self.out.push((kind.k, counts.to_vec()));
            }
            return Some(());
        }
        for c in (0..=kind.most[g]).rev() {
            counts[g] = c;
            if c == 0 || self.m.fits(kind.k, counts) {
                self.walk(kind, g + 1, value + self.pi[g] * c as f64, counts)?;
            }
        }
        counts[g] = 0;
        Some(())
    }

    /// Whether no group's count can grow by one.
    fn full(&self, kind: &Kind, counts: &mut [u32]) -> bool {
        (0..counts.len()).all(|g| {
            counts[g] >= kind.most[g] || {
                counts[g] += 1;
                let fits = self.m.fits(kind.k, counts);
                counts[g] -= 1;
                !fits
            }
        })
    }
}
