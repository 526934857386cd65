//! The pricing knapsack of the configuration LP as an integer program: for the kinds branch
//! and bound and the grid program leave open, most often large kinds holding hundreds of pods,
//! where their relaxations (one surrogate of the resource dimensions at a time) stay several
//! percent above the best node and so loosen the bound of every round.
//!
//! The program has a variable per group (its pods on the node, up to the most the kind holds),
//! a row per resource dimension at the node's allocatable and a row per shared set at its cap.
//! Its LP relaxation bounds the knapsack with every dimension and set at once; branch and bound
//! within its budget then most often proves the best node.

use microlp::{ComparisonOp, OptimizationDirection, Problem, SolveOptions};

use super::bound_dp::{repair, worth};
use super::bound_knapsack::Knapsack;
use super::bound_model::{Model, scale};

/// The best node of kind `k` at `values` branch and bound found within `nodes` (repaired to fit
/// where the solver's tolerance let it exceed a dimension), and an upper bound of its worth
/// (the optimum when the search finished); `None` when the solver fails.
pub fn mip_knapsack(m: &Model, k: usize, values: &[f64], nodes: u64) -> Option<Knapsack> {
    let groups: Vec<usize> = (0..m.groups.len()).filter(|&g| values[g] > 1e-12 && m.most(g, k) > 0).collect();
    if groups.is_empty() {
        return None;
    }
    let build = |integer: bool| {
        let mut p = Problem::new(OptimizationDirection::Maximize);
        let vars: Vec<_> = groups
            .iter()
            .map(|&g| match integer {
                true => p.add_integer_var(values[g], (0, m.most(g, k) as i32)),
                false => p.add_var(values[g], (0.0, m.most(g, k) as f64)),
            })
            .collect();
        for (d, name) in m.dims.iter().enumerate() {
            let unit = scale(name);
            let row: Vec<_> = groups
                .iter()
                .zip(&vars)
                .filter(|(g, _)| m.groups[**g].requests[d] > 0)
                .map(|(g, v)| (*v, m.groups[*g].requests[d] as f64 / unit))
                .collect();
            if !row.is_empty() {
                p.add_constraint(row, ComparisonOp::Le, m.kinds[k].alloc[d] as f64 / unit);
            }
        }
        for s in &m.shared {
            let row: Vec<_> =
                groups.iter().zip(&vars).filter(|(g, _)| s.groups.contains(g)).map(|(_, v)| (*v, 1.0)).collect();
            if !row.is_empty() {
                p.add_constraint(row, ComparisonOp::Le, s.per_node as f64);
            }
        }
        (p, vars)
    };
    let (p, vars) = build(true);
    let mut options = SolveOptions::default();
    options.node_limit = Some(nodes);
    let outcome = p.solve_with(options).ok()?;
    let mut counts = vec![0u32; m.groups.len()];
    if let Some(sol) = outcome.solution() {
        for (&g, v) in groups.iter().zip(&vars) {
            counts[g] = (sol[*v] + 1e-6).floor().max(0.0) as u32;
        }
        repair(m, k, values, &mut counts);
    }
    let value = worth(&counts, values);
    // Branch and bound's best proven bound (the optimum when it finished), else the LP
    // relaxation's; either is exact up to the solver's tolerances, which the bound allows.
    let bound = match outcome.stats().best_bound {
        Some(b) => b,
        None => build(false).0.solve().ok()?.solution()?.objective(),
    };
    Some(Knapsack { value, counts, upper: bound.max(value) * (1.0 + 1e-9) })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::scheduling::bound_knapsack::knapsack;
    use crate::scheduling::bound_model::{Demand, Kind, Shared};

    /// A kind of `cpu` millicores and `mib` MiB, and groups (cpu, MiB, per-node cap, in the
    /// shared set) with the set's cap.
    fn model(cpu: i64, mib: i64, groups: &[(i64, i64, u32, bool)], cap: u32) -> Model {
        let mib_bytes = 1 << 20;
        Model {
            dims: vec!["cpu".to_string(), "memory".to_string()],
            groups: groups
                .iter()
                .map(|&(c, m, per_node, _)| Demand { pods: 50, requests: vec![c, m * mib_bytes], per_node })
                .collect(),
            kinds: vec![Kind {
                name: "k".to_string(),
                alloc: vec![cpu, mib * mib_bytes],
                price: 1.0,
                holds: vec![true; groups.len()],
                zone: 0,
            }],
            shared: vec![Shared { groups: (0..groups.len()).filter(|&g| groups[g].3).collect(), per_node: cap }],
            zoned: Vec::new(),
            min_nodes: 0.0,
            left_out: 0,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn the_program_finds_the_best_node_and_never_bounds_below_it(
            cpu in 1_000i64..8_000,
            mib in 1_000i64..16_000,
            groups in prop::collection::vec((50i64..1_600, 64i64..4_096, 1u32..=20, any::<bool>()), 1..=6),
            cap in 1u32..=4,
            values in prop::collection::vec(0.01f64..1.0, 6),
            nodes in prop::sample::select(vec![0u64, 5, 10_000]),
        ) {
            let m = model(cpu, mib, &groups, cap);
            let values = &values[..groups.len()];
            // Branch and bound without a limit finishes: its value is the optimum.
            let best = knapsack(&m, 0, values, u64::MAX, 0.0);
            let Some(found) = mip_knapsack(&m, 0, values, nodes) else {
                // Only when no pod fits.
                prop_assert_eq!(best.value, 0.0);
                return Ok(());
            };
            prop_assert!(m.fits(0, &found.counts), "{found:?} does not fit");
            prop_assert!(found.value <= best.value * (1.0 + 1e-9) + 1e-12, "{found:?} beats {best:?}");
            prop_assert!(found.upper >= best.value * (1.0 - 1e-12), "{found:?} bounds below {best:?}");
            if nodes == 10_000 {
                prop_assert!(found.value >= best.value * (1.0 - 1e-9), "{found:?} short of {best:?}");
            }
        }
    }
}
