//! The restricted master of the configuration LP ([`super::bound_columns`]), kept in its dual
//! form so a new column is a new row of a warm-started LP:
//!
//! ```text
//! max Σ_g pods_g·π_g + Σ_r least_r·λ_r + min_nodes·σ
//!   Σ_g a_cg·π_g + Σ_{r of c's zone} Σ_{g∈r} a_cg·λ_r + σ ≤ price_c   every column c
//!   π_g ≤ π_h                    every pair where a pod of g can take the place of a pod of h
//!   π, λ, σ ≥ 0
//! ```
//!
//! The λ are the zone rows' ([`super::bound_model::ZoneRow`]): a pod of a row's groups on a
//! node of the row's zone class is worth its λ on top of its group's π.
//!
//! The second family are dual-optimal inequalities: in the primal they let a node count a pod
//! of `h` as one of `g`, which any node may do when the swap keeps it feasible (`g` no larger in
//! any dimension, held by every kind that holds `h`, in no shared set `h` is not in, its own cap
//! implied by a set they share, in the same zone rows). They cut off dual points no optimum
//! needs, so column generation oscillates less; and since they only add primal variables, any
//! dual value stays a lower bound even where a swap would not be feasible.

use microlp::{ComparisonOp, OptimizationDirection, Problem, Solution, SolveOutcome, Variable};

use super::bound_model::Model;

/// A dual point of the master: a value per pod of each group, per pod of each zone row on a
/// node of its zone class, and per node.
#[derive(Debug, Clone, PartialEq)]
pub struct Duals {
    pub pods: Vec<f64>,
    pub rows: Vec<f64>,
    pub node: f64,
}

impl Duals {
    /// The dual objective: a lower bound when the point is dual feasible.
    pub fn value(&self, m: &Model) -> f64 {
        let pods: f64 = self.pods.iter().zip(&m.groups).map(|(v, d)| v * d.pods as f64).sum();
        let rows: f64 = self.rows.iter().zip(&m.zoned).map(|(v, r)| v * r.least).sum();
        pods + rows + self.node * m.min_nodes
    }

    /// The point halfway to `other`.
    pub fn halfway(&self, other: &Duals) -> Duals {
        let mid = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x + y) / 2.0).collect();
        Duals {
            pods: mid(&self.pods, &other.pods),
            rows: mid(&self.rows, &other.rows),
            node: (self.node + other.node) / 2.0,
        }
    }

    /// Per zone class: the value of a pod of each group on a node there.
    pub fn per_zone(&self, m: &Model) -> Vec<Vec<f64>> {
        (0..m.zone_classes())
            .map(|z| {
                let mut v = self.pods.clone();
                for (r, l) in m.zoned.iter().zip(&self.rows).filter(|(r, _)| r.zone == z) {
                    for &g in &r.groups {
                        v[g] += l;
                    }
                }
                v
            })
            .collect()
    }
}

/// The master's variables: π per group, λ per zone row, σ.
struct Vars {
    pi: Vec<Variable>,
    lambda: Vec<Variable>,
    sigma: Variable,
}

/// The master LP as last solved.
pub struct Master {
    sol: Solution,
    vars: Vars,
    /// Columns added so far.
    pub columns: usize,
}

impl Master {
    /// The master over `seeds` (kind, pods per group), plus for each group a node of the kind
    /// with the lowest price per pod of it holding only that group, and for each zone row the
    /// same in the row's zone class, which keep every `π_g` and `λ_r` bounded; `None` when some
    /// group or row has no kind or the solver fails.
    pub fn new(m: &Model, seeds: &[(usize, Vec<u32>)]) -> Option<Master> {
        let mut p = Problem::new(OptimizationDirection::Maximize);
        let pi: Vec<Variable> = m.groups.iter().map(|d| p.add_var(d.pods as f64, (0.0, f64::INFINITY))).collect();
        let lambda: Vec<Variable> = m.zoned.iter().map(|r| p.add_var(r.least, (0.0, f64::INFINITY))).collect();
        let sigma = p.add_var(m.min_nodes, (0.0, f64::INFINITY));
        let vars = Vars { pi, lambda, sigma };
        let mut alone: Vec<(usize, Vec<u32>)> = Vec::new();
        for g in 0..m.groups.len() {
            let (k, n) = m.alone(g)?;
            alone.push((k, one(m, g, n)));
        }
        for r in &m.zoned {
            let per_pod = |(g, k): (usize, usize)| m.kinds[k].price / m.most(g, k) as f64;
            let (g, k) = r
                .groups
                .iter()
                .flat_map(|&g| (0..m.kinds.len()).map(move |k| (g, k)))
                .filter(|&(g, k)| m.kinds[k].zone == r.zone && m.most(g, k) > 0)
                .min_by(|a, b| per_pod(*a).total_cmp(&per_pod(*b)))?;
            alone.push((k, one(m, g, m.most(g, k))));
        }
        for (k, counts) in alone.iter().chain(seeds) {
            p.add_constraint(vars.row(m, *k, counts), ComparisonOp::Le, m.kinds[*k].price);
        }
        for (g, h) in swaps(m) {
            p.add_constraint([(vars.pi[g], 1.0), (vars.pi[h], -1.0)], ComparisonOp::Le, 0.0);
        }
        let sol = solved(p.solve().ok()?)?;
        Some(Master { sol, vars, columns: alone.len() + seeds.len() })
    }

    /// The master with one more column: a node of kind `k` with `counts` pods per group.
    pub fn add(self, m: &Model, k: usize, counts: &[u32]) -> Option<Master> {
        let Master { sol, vars, columns } = self;
        let sol = solved(sol.add_constraint(vars.row(m, k, counts), ComparisonOp::Le, m.kinds[k].price).ok()?)?;
        Some(Master { sol, vars, columns: columns + 1 })
    }

    /// The master's optimum: the least cost of covering the demand with its columns.
    pub fn value(&self) -> f64 {
        self.sol.objective()
    }

    /// The optimal duals of the master's primal: a value per pod of each group, and per node.
    pub fn duals(&self) -> (Vec<f64>, f64) {
        (self.vars.pi.iter().map(|v| self.sol[*v].max(0.0)).collect(), self.sol[self.vars.sigma].max(0.0))
    }

    /// Every optimal dual of the master's primal, the zone rows' too.
    pub fn all_duals(&self) -> Duals {
        let (pods, node) = self.duals();
        Duals { pods, rows: self.vars.lambda.iter().map(|v| self.sol[*v].max(0.0)).collect(), node }
    }
}

impl Vars {
    /// A column's constraint: its pods' coefficients on π, on its zone's rows' λ, and σ.
    fn row(&self, m: &Model, k: usize, counts: &[u32]) -> Vec<(Variable, f64)> {
        let mut row: Vec<(Variable, f64)> =
            counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(g, n)| (self.pi[g], *n as f64)).collect();
        for (r, l) in m.zoned.iter().zip(&self.lambda).filter(|(r, _)| r.zone == m.kinds[k].zone) {
            let n: u32 = r.groups.iter().map(|&g| counts[g]).sum();
            if n > 0 {
                row.push((*l, n as f64));
            }
        }
        row.push((self.sigma, 1.0));
        row
    }
}

/// `n` pods of group `g` alone.
fn one(m: &Model, g: usize, n: u32) -> Vec<u32> {
    let mut counts = vec![0; m.groups.len()];
    counts[g] = n;
    counts
}

/// Whether a pod of `g` can take the place of a pod of `h` on any node holding `h`.
fn replaces(m: &Model, g: usize, h: usize) -> bool {
    let (a, b) = (&m.groups[g], &m.groups[h]);
    a.requests.iter().zip(&b.requests).all(|(x, y)| x <= y)
        && m.kinds.iter().all(|k| !k.holds[h] || k.holds[g])
        && m.shared.iter().all(|s| !s.groups.contains(&g) || s.groups.contains(&h))
        && m.same_rows(g, h)
        && (a.per_node == u32::MAX
            || m.shared.iter().any(|s| s.per_node <= a.per_node && s.groups.contains(&g) && s.groups.contains(&h)))
}

/// The pairs `(g, h)` where `g` replaces `h`, less those implied by two others (`g` replaces
/// `i` and `i` replaces `h`); of two groups that replace each other only one way is kept.
pub fn swaps(m: &Model) -> Vec<(usize, usize)> {
    let n = m.groups.len();
    let rep: Vec<Vec<bool>> = (0..n)
        .map(|g| (0..n).map(|h| g != h && replaces(m, g, h) && (g < h || !replaces(m, h, g))).collect())
        .collect();
    let mut out = Vec::new();
    for g in 0..n {
        for h in 0..n {
            if rep[g][h] && !(0..n).any(|i| rep[g][i] && rep[i][h]) {
                out.push((g, h));
            }
        }
    }
    out
}

fn solved(o: SolveOutcome) -> Option<Solution> {
    match o {
        SolveOutcome::Solution(s) => Some(s),
        SolveOutcome::Interrupted(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::bound_model::{Demand, Kind, Shared};

    fn demand(cpu: i64, per_node: u32) -> Demand {
        Demand { pods: 4, requests: vec![cpu], per_node }
    }

    #[test]
    fn only_a_smaller_pod_outside_the_others_sets_takes_its_place() {
        // 0: free 100m, 1: anti-affine 500m, 2: anti-affine 200m, 3: free 1000m.
        let m = Model {
            dims: vec!["cpu".to_string()],
            groups: vec![demand(100, u32::MAX), demand(500, 1), demand(200, 1), demand(1000, u32::MAX)],
            kinds: vec![Kind { name: "k".to_string(), alloc: vec![4000], price: 1.0, holds: vec![true; 4], zone: 0 }],
            shared: vec![Shared { groups: vec![1, 2], per_node: 1 }],
            zoned: Vec::new(),
            min_nodes: 8.0,
            left_out: 0,
        };
        assert!(replaces(&m, 0, 1) && replaces(&m, 2, 1) && replaces(&m, 0, 3));
        // Larger, or in a set the other is not in.
        assert!(!replaces(&m, 1, 2) && !replaces(&m, 2, 3) && !replaces(&m, 3, 0));
        // 0 → 1 is implied by 0 → 2 → 1.
        let mut pairs = swaps(&m);
        pairs.sort();
        assert_eq!(pairs, vec![(0, 2), (0, 3), (2, 1)]);
    }

    #[test]
    fn a_kind_that_holds_only_the_larger_pod_forbids_the_swap() {
        let m = Model {
            dims: vec!["cpu".to_string()],
            groups: vec![demand(100, u32::MAX), demand(500, u32::MAX)],
            kinds: vec![Kind {
                name: "k".to_string(),
                alloc: vec![4000],
                price: 1.0,
                holds: vec![false, true],
                zone: 0,
            }],
            shared: Vec::new(),
            zoned: Vec::new(),
            min_nodes: 0.0,
            left_out: 0,
        };
        assert!(swaps(&m).is_empty());
    }
}
