//! The LP relaxation of new-capacity cost, solved in its dual form: maximise the value of the
//! demand subject to no instance type being worth more than its price.
//!
//! ```text
//! primal: min Σ price_t·x_t   s.t. Σ cap_t,r·x_t ≥ demand_r  (r = cpu, memory, pods, nodes), x ≥ 0
//! dual:   max Σ demand_r·y_r  s.t. Σ cap_t,r·y_r ≤ price_t   for every type t,             y ≥ 0
//! ```
//!
//! The optimum is a lower bound on any packing's price (reported by the benchmark), and the
//! dual prices `y` value a pod's resources when the packer compares node choices.

use microlp::{ComparisonOp, OptimizationDirection, Problem, SolveOutcome};

/// Resource dimensions of the relaxation: cpu (cores), memory (GiB), pods, nodes.
pub const DIMS: usize = 4;

/// A node choice: what it offers in each dimension and its price per hour.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub offers: [f64; DIMS],
    pub price: f64,
}

/// The relaxation's optimum and its dual prices.
#[derive(Debug, Clone, PartialEq)]
pub struct Relaxation {
    pub bound: f64,
    pub prices: [f64; DIMS],
}

/// Solves the dual LP; `None` when there is no column or the solver fails.
pub fn relax(columns: &[Column], demand: [f64; DIMS]) -> Option<Relaxation> {
    if columns.is_empty() {
        return None;
    }
    if demand.iter().all(|d| *d <= 0.0) {
        return Some(Relaxation { bound: 0.0, prices: [0.0; DIMS] });
    }
    let mut cols: Vec<&Column> = columns.iter().filter(|c| c.price > 0.0).collect();
    cols.sort_by(|a, b| {
        a.offers.partial_cmp(&b.offers).unwrap_or(std::cmp::Ordering::Equal).then(a.price.total_cmp(&b.price))
    });
    cols.dedup_by(|b, a| a.offers == b.offers);
    let mut p = Problem::new(OptimizationDirection::Maximize);
    let y: Vec<_> = demand.iter().map(|d| p.add_var(*d, (0.0, f64::INFINITY))).collect();
    for c in cols {
        let terms: Vec<_> = y.iter().zip(c.offers).filter(|(_, a)| *a != 0.0).map(|(v, a)| (*v, a)).collect();
        p.add_constraint(terms, ComparisonOp::Le, c.price);
    }
    match p.solve().ok()? {
        SolveOutcome::Solution(s) => {
            let mut prices = [0.0; DIMS];
            for (i, v) in y.iter().enumerate() {
                prices[i] = s[*v].max(0.0);
            }
            Some(Relaxation { bound: s.objective(), prices })
        }
        SolveOutcome::Interrupted(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_of_a_single_resource_is_the_cheapest_rate() {
        // 10 cores needed; a 2-core type at 1.0 and a 4-core type at 1.5: 4-core rate wins.
        let cols = vec![
            Column { offers: [2.0, 8.0, 29.0, 1.0], price: 1.0 },
            Column { offers: [4.0, 16.0, 58.0, 1.0], price: 1.5 },
        ];
        let r = relax(&cols, [10.0, 0.0, 0.0, 0.0]).unwrap();
        assert!((r.bound - 3.75).abs() < 1e-6, "{r:?}");
        assert!((r.prices[0] - 0.375).abs() < 1e-6);
    }

    #[test]
    fn node_count_binds_when_many_nodes_are_needed() {
        let cols = vec![
            Column { offers: [2.0, 8.0, 29.0, 1.0], price: 1.0 },
            Column { offers: [4.0, 16.0, 58.0, 1.0], price: 1.5 },
        ];
        // 4 cores but at least 5 nodes: five of the small type.
        let r = relax(&cols, [4.0, 0.0, 0.0, 5.0]).unwrap();
        assert!((r.bound - 5.0).abs() < 1e-6, "{r:?}");
    }
}
