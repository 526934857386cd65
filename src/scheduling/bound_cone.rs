//! Farley's bound over every dual point column generation priced, not one at a time.
//!
//! A kind's most valuable node is a maximum of linear functions of the duals, so it is convex
//! and grows with them in proportion: at `Σ_j μ_j·y_j` (μ ≥ 0) it is worth at most
//! `Σ_j μ_j·r_jk·price_k`, where `r_jk` is the share of its price pricing proved a bound of at
//! point `y_j`. Every `μ` with `Σ_j μ_j·r_jk ≤ 1` for every kind is then dual feasible, and
//!
//! ```text
//! max Σ_j μ_j·value(y_j)   s.t.  Σ_j μ_j·r_jk ≤ 1  every kind k,   μ ≥ 0
//! ```
//!
//! is a lower bound of the configuration LP. One point with `μ = 1 ÷ max_k r_k` is Farley's;
//! several do better where each point's bound is loose on different kinds.

use microlp::{ComparisonOp, OptimizationDirection, Problem, SolveOutcome};

/// A priced dual point: its dual value and, per kind, the proved bound of its most valuable
/// node (plus the node dual) as a share of the kind's price.
#[derive(Debug, Clone, PartialEq)]
pub struct Priced {
    pub value: f64,
    pub ratios: Vec<f64>,
}

/// The best lower bound over nonnegative combinations of `points`; `None` when there are none
/// or the solver fails.
pub fn combined(points: &[Priced]) -> Option<f64> {
    let kinds = points.first()?.ratios.len();
    let mut p = Problem::new(OptimizationDirection::Maximize);
    let mu: Vec<_> = points.iter().map(|q| p.add_var(q.value.max(0.0), (0.0, f64::INFINITY))).collect();
    for k in 0..kinds {
        let row: Vec<_> =
            mu.iter().zip(points).filter(|(_, q)| q.ratios[k] > 0.0).map(|(v, q)| (*v, q.ratios[k])).collect();
        if !row.is_empty() {
            p.add_constraint(row, ComparisonOp::Le, 1.0);
        }
    }
    match p.solve().ok()? {
        SolveOutcome::Solution(s) => Some(s.objective() * (1.0 - 1e-9)),
        SolveOutcome::Interrupted(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_points_loose_on_different_kinds_bound_more_together() {
        // Each alone: 10 ÷ 2 = 5. Together 0.4 of each keeps both kinds at 0.4·2 + 0.4·0.5 = 1.
        let points = [Priced { value: 10.0, ratios: vec![2.0, 0.5] }, Priced { value: 10.0, ratios: vec![0.5, 2.0] }];
        let bound = combined(&points).expect("solved");
        assert!((bound - 8.0).abs() < 1e-6, "{bound}");
    }

    #[test]
    fn one_point_is_farleys_bound_and_none_is_no_bound() {
        let one = [Priced { value: 6.0, ratios: vec![1.5, 0.9, 1.2] }];
        assert!((combined(&one).expect("solved") - 4.0).abs() < 1e-6);
        assert_eq!(combined(&[]), None);
    }
}
