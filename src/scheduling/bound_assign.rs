//! The assignment LP bound: pods of each group split over the node kinds that can hold one,
//! nodes of each kind bought in fractions.
//!
//! ```text
//! min Σ_k price_k·y_k
//!   Σ_k x_gk = pods_g                              every group g
//!   Σ_g x_gk·req_gd ≤ alloc_kd·y_k                 every kind k, dimension d
//!   x_gk ≤ per_node_g·y_k,  Σ_{g∈S} x_gk ≤ cap_S·y_k   per-node caps, shared sets S
//!   Σ_k y_k ≥ min_nodes,   x, y ≥ 0
//! ```
//!
//! Any packing gives a solution (x = pods placed on nodes of kind k, y = those nodes), so the
//! optimum is at most its cost. Unlike the resource LP, capacity only counts where the pods
//! can run, on kinds that hold a whole pod.

use std::time::Duration;

use microlp::{ComparisonOp, LinearExpr, OptimizationDirection, Problem, SolveOutcome};

use super::bound_model::{Model, scale};

/// Most x variables before the LP is not attempted.
pub const MAX_PAIRS: usize = 20_000;

/// The bound in USD per hour; `None` when the model is too large or the solver gives up.
pub fn assignment_bound(m: &Model, time_limit: Duration) -> Option<f64> {
    if m.groups.is_empty() {
        return Some(0.0);
    }
    let pairs: usize = m.kinds.iter().map(|k| k.holds.iter().filter(|h| **h).count()).sum();
    if pairs > MAX_PAIRS || m.kinds.is_empty() {
        return None;
    }
    let mut p = Problem::new(OptimizationDirection::Minimize);
    p.set_time_limit(time_limit);
    let y: Vec<_> = m.kinds.iter().map(|k| p.add_var(k.price, (0.0, f64::INFINITY))).collect();
    let mut x = vec![Vec::new(); m.groups.len()];
    for (k, kind) in m.kinds.iter().enumerate() {
        let held: Vec<usize> = (0..m.groups.len()).filter(|&g| m.most(g, k) > 0).collect();
        let vars: Vec<_> = held.iter().map(|_| p.add_var(0.0, (0.0, f64::INFINITY))).collect();
        for (d, name) in m.dims.iter().enumerate() {
            let s = scale(name);
            let mut e = LinearExpr::empty();
            for (&g, v) in held.iter().zip(&vars) {
                if m.groups[g].requests[d] > 0 {
                    e.add(*v, m.groups[g].requests[d] as f64 / s);
                }
            }
            e.add(y[k], -(kind.alloc[d] as f64 / s));
            p.add_constraint(e, ComparisonOp::Le, 0.0);
        }
        for (&g, v) in held.iter().zip(&vars) {
            if m.groups[g].per_node < m.groups[g].pods {
                p.add_constraint([(*v, 1.0), (y[k], -(m.groups[g].per_node as f64))], ComparisonOp::Le, 0.0);
            }
            x[g].push(*v);
        }
        for s in &m.shared {
            let mut e = LinearExpr::empty();
            for (&g, v) in held.iter().zip(&vars) {
                if s.groups.contains(&g) {
                    e.add(*v, 1.0);
                }
            }
            e.add(y[k], -(s.per_node as f64));
            p.add_constraint(e, ComparisonOp::Le, 0.0);
        }
    }
    for (g, vars) in x.iter().enumerate() {
        let e: Vec<_> = vars.iter().map(|v| (*v, 1.0)).collect();
        p.add_constraint(e, ComparisonOp::Eq, m.groups[g].pods as f64);
    }
    if m.min_nodes > 0.0 {
        p.add_constraint(y.iter().map(|v| (*v, 1.0)).collect::<Vec<_>>(), ComparisonOp::Ge, m.min_nodes);
    }
    match p.solve().ok()? {
        // Round down a hair so solver tolerance never lifts it above an optimum.
        SolveOutcome::Solution(s) => Some(s.objective() * (1.0 - 1e-9)),
        SolveOutcome::Interrupted(_) => None,
    }
}
