//! The configuration LP bound (Gilmore–Gomory), by column generation.
//!
//! A column is one node: a kind and how many pods of each group it holds, fitting the kind's
//! allocatable, each group's per-node cap and each shared set's. The master LP covers every
//! group's demand with fractional nodes at least cost; it is solved in its dual form, so a new
//! column is a new row of a warm-started LP:
//!
//! ```text
//! max Σ_g pods_g·π_g + min_nodes·σ   s.t.  Σ_g a_cg·π_g + σ ≤ price_c  (every column c),  π, σ ≥ 0
//! ```
//!
//! Pricing solves, per kind, the bounded knapsack `max Σ_g π_g·a_g` by branch and bound under a
//! node budget. The reported bound is Farley's: with `r = max_k (best_k + σ) ÷ price_k`, where
//! `best_k` is the knapsack optimum when proven and a relaxation's value when the budget ran
//! out, `(π, σ) ÷ r` is dual feasible for every column, so `dual value ÷ max(r, 1)` is a lower
//! bound whether or not column generation converged. When every pricing proves no column has
//! negative reduced cost, it equals the LP optimum.

use microlp::{ComparisonOp, OptimizationDirection, Problem, Solution, SolveOutcome, Variable};

use super::bound_knapsack::knapsack;
use super::bound_model::Model;

/// How much work column generation may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Rounds of pricing every kind and re-solving the master.
    pub rounds: usize,
    /// Branch-and-bound nodes per knapsack.
    pub nodes: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { rounds: 100, nodes: 20_000 }
    }
}

/// The outcome of column generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Configuration {
    /// The lower bound, USD per hour.
    pub bound: f64,
    /// The last restricted master's value (not a bound unless `proven`).
    pub master: f64,
    /// No column with negative reduced cost exists: `bound` is the LP optimum.
    pub proven: bool,
    pub columns: usize,
    pub rounds: usize,
}

/// The configuration LP bound; `None` when the solver fails.
pub fn configuration_bound(m: &Model, budget: Budget) -> Option<Configuration> {
    if m.groups.is_empty() {
        return Some(Configuration { bound: 0.0, master: 0.0, proven: true, columns: 0, rounds: 0 });
    }
    let mut p = Problem::new(OptimizationDirection::Maximize);
    let pi: Vec<Variable> = m.groups.iter().map(|d| p.add_var(d.pods as f64, (0.0, f64::INFINITY))).collect();
    let sigma = p.add_var(m.min_nodes, (0.0, f64::INFINITY));
    let mut columns = 0;
    for (g, var) in pi.iter().enumerate() {
        // The kind with the lowest price per pod of the group keeps π_g bounded.
        let k = (0..m.kinds.len()).filter(|&k| m.most(g, k) > 0).min_by(|&a, &b| {
            (m.kinds[a].price / m.most(g, a) as f64).total_cmp(&(m.kinds[b].price / m.most(g, b) as f64))
        })?;
        p.add_constraint([(*var, m.most(g, k) as f64), (sigma, 1.0)], ComparisonOp::Le, m.kinds[k].price);
        columns += 1;
    }
    let mut sol = solved(p.solve().ok()?)?;
    let mut best = Configuration { bound: 0.0, master: 0.0, proven: false, columns, rounds: 0 };
    // Wentges smoothing: price at a point between the duals with the best bound so far and
    // the master's; when that finds no column, price at the master's duals next.
    let mut center: Option<(Vec<f64>, f64)> = None;
    let mut smooth = true;
    for round in 1..=budget.rounds {
        let master_duals: Vec<f64> = pi.iter().map(|v| sol[*v].max(0.0)).collect();
        let master_sigma = sol[sigma].max(0.0);
        best.master = dual_value(m, &master_duals, master_sigma);
        let (duals, s) = match (&center, smooth) {
            (Some((c, cs)), true) => {
                (c.iter().zip(&master_duals).map(|(a, b)| (a + b) / 2.0).collect(), (cs + master_sigma) / 2.0)
            }
            _ => (master_duals.clone(), master_sigma),
        };
        let at_master = center.is_none() || !smooth;
        let value = dual_value(m, &duals, s);
        // A quick pass finds columns; only when it finds none does a full pass try to prove
        // that none exists.
        let mut ratio = 0.0f64;
        let mut new = Vec::new();
        for limit in [(budget.nodes / 20).max(100), budget.nodes] {
            ratio = 0.0;
            for k in 0..m.kinds.len() {
                let price = m.kinds[k].price;
                let found = knapsack(m, k, &duals, limit, price - s);
                ratio = ratio.max((found.upper + s) / price);
                // Only a column the master's duals price below its cost changes the master.
                let worth: f64 = found.counts.iter().zip(&master_duals).map(|(c, v)| *c as f64 * v).sum();
                if worth + master_sigma > price * (1.0 + 1e-9) + 1e-12 {
                    new.push((k, found.counts));
                }
            }
            if !new.is_empty() || ratio <= 1.0 + 1e-9 {
                break;
            }
        }
        // Farley: (π, σ) ÷ max(ratio, 1) is dual feasible for every column.
        let bound = value / ratio.max(1.0) * (1.0 - 1e-9);
        best.rounds = round;
        if bound >= best.bound {
            best.bound = bound;
            center = Some((duals, s));
        }
        if ratio <= 1.0 + 1e-9 && at_master {
            best.proven = true;
            break;
        }
        smooth = !new.is_empty();
        if new.is_empty() && at_master {
            break;
        }
        for (k, counts) in new {
            let mut row: Vec<(Variable, f64)> =
                counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(g, n)| (pi[g], *n as f64)).collect();
            row.push((sigma, 1.0));
            sol = solved(sol.add_constraint(row, ComparisonOp::Le, m.kinds[k].price).ok()?)?;
            columns += 1;
        }
        best.columns = columns;
    }
    Some(best)
}

/// The dual objective `Σ_g pods_g·π_g + min_nodes·σ`.
fn dual_value(m: &Model, duals: &[f64], s: f64) -> f64 {
    duals.iter().zip(&m.groups).map(|(v, d)| v * d.pods as f64).sum::<f64>() + s * m.min_nodes
}

fn solved(o: SolveOutcome) -> Option<Solution> {
    match o {
        SolveOutcome::Solution(s) => Some(s),
        SolveOutcome::Interrupted(_) => None,
    }
}
