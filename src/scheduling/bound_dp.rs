//! The pricing knapsack of the configuration LP by dynamic programming: the best node of one
//! kind at given values per pod, over a grid of its two resource dimensions (cpu and memory),
//! its pod count where that can bind, and the pod counts of the shared sets
//! ([`super::bound_grid`]).
//!
//! Requests and the allocatable are measured in grid units rounded down, so every node that fits
//! in truth also fits on the grid, and a pod count that cannot bind is left out: the grid
//! optimum is a valid upper bound of the kind's knapsack. When the unit divides every request
//! (the grid is exact) and the grid's best node also fits in truth, it is the knapsack's
//! optimum.
//!
//! ```text
//! values, kind ─► grid (gcd units; cpu × memory, or one of them and a price on the other)
//!   ─► passes (groups, split in powers of two where capped; one-of choices) ─► sweeps ─► node
//! ```

use super::bound_grid::{Grid, grids, program};
use super::bound_knapsack::Knapsack;
use super::bound_model::Model;

/// Most states (grid cells × shared-set counts) one knapsack may use.
pub const STATES: usize = 1 << 18;

/// The best node of kind `k` at `values`, or `None` when the tracked shared sets need too many
/// combinations or no group has a positive value.
///
/// When both resource dimensions fit [`STATES`] at their exact units, one program over both.
/// Otherwise up to two bounds, the smaller kept: the dimension with fewer cells alone with the
/// other priced out (Lagrangian relaxation): for any price `λ ≥ 0` per share of the node, the
/// program's optimum at values less `λ` times each pod's share, plus `λ`, bounds the knapsack,
/// and `λ` is found by a golden-section search; and both dimensions at coarser units. The node
/// returned is the best that fits among those the programs found.
///
/// With `choices`, the finer program: each shared set of one pod per node is one choice among
/// its groups instead of a count in the states, the pod count is on the grid where it can bind
/// (and left out where its search would then be past the work), and the grids past the work are
/// left out rather than the kind. Without, the sets are counted, the pod count left out, and a
/// kind whose grids together are past the work is left to branch and bound. The work is
/// `work`'s, or by default [`WORK`], or [`CHOICE_WORK`] with `choices`.
pub fn dp_knapsack(m: &Model, k: usize, values: &[f64], choices: bool, work: Option<usize>) -> Option<Knapsack> {
    let work = work.unwrap_or(if choices { CHOICE_WORK } else { WORK });
    knapsack_on_grid(m, k, values, Reach { states: STATES, work, exact_only: false, choices })
}

/// How large a program [`knapsack_on_grid`] may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reach {
    /// Most states (grid cells × shared-set counts).
    states: usize,
    /// Most state updates.
    work: usize,
    /// Only the exact grid (both dimensions at their common units), or nothing.
    exact_only: bool,
    /// The finer program ([`dp_knapsack`]).
    choices: bool,
}

/// The exact program of kind `k` at `values` when both dimensions at their common units, times
/// the pod count and the shared sets' counts, fit [`EXACT_STATES`] and its sweeps
/// [`EXACT_WORK`]: its optimum bounds the knapsack, and is the knapsack's when its node fits.
/// `choices` as for [`dp_knapsack`].
pub fn exact_knapsack(m: &Model, k: usize, values: &[f64], choices: bool) -> Option<Knapsack> {
    knapsack_on_grid(m, k, values, Reach { states: EXACT_STATES, work: EXACT_WORK, exact_only: true, choices })
}

/// Most states of [`exact_knapsack`]'s program: a 4-vCPU, 16-GiB node at 50 m and 4 MiB with
/// a spread's eight counts and an anti-affinity's two is 4.5 million; with one-pod sets as
/// choices, a 4-vCPU, 32-GiB one is 0.6 million.
pub const EXACT_STATES: usize = 1 << 23;

/// Most state updates of [`exact_knapsack`]'s program.
const EXACT_WORK: usize = 1_500_000_000;

fn knapsack_on_grid(m: &Model, k: usize, values: &[f64], reach: Reach) -> Option<Knapsack> {
    let groups: Vec<usize> = (0..m.groups.len()).filter(|&g| values[g] > 1e-12 && m.most(g, k) > 0).collect();
    if groups.is_empty() {
        return None;
    }
    let mut best: (f64, Vec<u32>) = (0.0, vec![0; m.groups.len()]);
    let mut upper = f64::INFINITY;
    // Each program sweeps the states once per pass.
    let one = |(g, _): &(Grid, Option<usize>)| g.size() * (groups.len() + 8);
    let mut tried = grids(m, k, &groups, reach.states, reach.choices, reach.choices)?;
    let full = |g: &(Grid, Option<usize>)| if g.1.is_some() { LAMBDA_STEPS + 3 } else { 1 };
    if reach.choices && tried.first().is_some_and(|g| one(g) * full(g) > reach.work) {
        tried = grids(m, k, &groups, reach.states, true, false)?;
    }
    if reach.exact_only && !(tried.len() == 1 && tried[0].1.is_none() && tried[0].0.exact) {
        return None;
    }
    // The search runs several programs on a grid with a dimension priced out. Without
    // `choices`, all its programs on every grid, or nothing; with, the grids in order while one
    // program fits the work left, each with as many programs as fit.
    if !reach.choices && tried.iter().map(|g| one(g) * full(g)).sum::<usize>() > reach.work {
        return None;
    }
    let mut left = reach.work;
    let mut runs = Vec::new();
    for g in tried {
        let n = if reach.choices { full(&g).min(left / one(&g).max(1)) } else { full(&g) };
        if n == 0 {
            break;
        }
        left = left.saturating_sub(n * one(&g));
        runs.push((g, n));
    }
    if runs.is_empty() {
        return None;
    }
    for ((grid, priced_out), programs) in runs {
        let (u, counts) = match priced_out {
            None => {
                let (u, mut counts) = program(m, k, &grid, values, &groups);
                repair(m, k, values, &mut counts);
                (u, counts)
            }
            Some(d) => lagrangian(m, k, &grid, values, &groups, d, reach.choices.then_some(programs)),
        };
        upper = upper.min(u);
        let value = worth(&counts, values);
        if value > best.0 {
            best = (value, counts);
        }
        if best.0 >= upper * (1.0 - 1e-12) {
            break;
        }
    }
    let (value, counts) = best;
    Some(Knapsack { value, counts, upper: upper.max(value) })
}

pub(super) fn worth(counts: &[u32], values: &[f64]) -> f64 {
    counts.iter().zip(values).map(|(c, v)| *c as f64 * v).sum()
}

/// The smallest bound over a golden-section search of the price `λ` on dimension `d`, and the
/// node worth the most (at `values`) among those the search found, repaired to fit. With
/// `programs`, first `λ = 0` (the dimension left out), done when its node fits, then the
/// search while the programs last.
fn lagrangian(
    m: &Model,
    k: usize,
    grid: &Grid,
    values: &[f64],
    groups: &[usize],
    d: usize,
    programs: Option<usize>,
) -> (f64, Vec<u32>) {
    let alloc = m.kinds[k].alloc[d].max(1) as f64;
    let share = |g: usize| m.groups[g].requests[d] as f64 / alloc;
    let top = groups.iter().filter(|&&g| share(g) > 0.0).map(|&g| values[g] / share(g)).fold(0.0, f64::max);
    let mut best: (f64, Vec<u32>) = (0.0, vec![0; m.groups.len()]);
    let mut upper = f64::INFINITY;
    let mut at = |lambda: f64| -> (f64, f64) {
        let adjusted: Vec<f64> = (0..values.len())
            .map(|g| if groups.contains(&g) { (values[g] - lambda * share(g)).max(0.0) } else { 0.0 })
            .collect();
        let live: Vec<usize> = groups.iter().copied().filter(|&g| adjusted[g] > 1e-12).collect();
        let (bound, mut counts) = program(m, k, grid, &adjusted, &live);
        let bound = bound + lambda;
        upper = upper.min(bound);
        repair(m, k, values, &mut counts);
        let fits = worth(&counts, values);
        if fits > best.0 {
            best = (fits, counts);
        }
        (bound, fits)
    };
    if let Some(n) = programs {
        let (bound, fits) = at(0.0);
        if n < 4 || fits >= bound * (1.0 - 1e-12) {
            return (upper, best.1);
        }
    }
    let steps = programs.map_or(LAMBDA_STEPS, |n| (n - 4).min(LAMBDA_STEPS));
    // Golden-section search of the convex bound over [0, top].
    const PHI: f64 = 0.618_033_988_749_895;
    let (mut lo, mut hi) = (0.0, top);
    let (mut x1, mut x2) = (hi - PHI * (hi - lo), lo + PHI * (hi - lo));
    let (mut f1, mut f2) = (at(x1).0, at(x2).0);
    at(top);
    for _ in 0..steps {
        if f1 <= f2 {
            (hi, x2, f2) = (x2, x1, f1);
            x1 = hi - PHI * (hi - lo);
            f1 = at(x1).0;
        } else {
            (lo, x1, f1) = (x1, x2, f2);
            x2 = lo + PHI * (hi - lo);
            f2 = at(x2).0;
        }
    }
    (upper, best.1)
}

/// Most state updates (states × passes × programs) one knapsack may take: the grids past it
/// are left out, and a kind whose first grid is past it is left to branch and bound, so a
/// catalog of very large types stays fast.
const WORK: usize = 50_000_000;

/// [`WORK`] for the finer program (`choices`): the zoned bound's pricing, where a kind left
/// open lowers the bound, and a program at `λ = 0` often settles the kind.
const CHOICE_WORK: usize = 200_000_000;

/// Evaluations of the golden-section search beyond its first three.
const LAMBDA_STEPS: usize = 14;

/// Drops pods, least value per share of the node first, until the node fits in truth (the
/// grid rounds requests down and leaves out the pod count; an integer program's solution may
/// exceed a dimension within its tolerance).
pub(super) fn repair(m: &Model, k: usize, values: &[f64], counts: &mut [u32]) {
    let alloc = &m.kinds[k].alloc;
    let share = |g: usize| -> f64 {
        let r = &m.groups[g].requests;
        r.iter().zip(alloc).map(|(q, a)| *q as f64 / (*a).max(1) as f64).sum::<f64>().max(1e-12)
    };
    while !m.fits(k, counts) {
        let Some(g) = (0..counts.len())
            .filter(|&g| counts[g] > 0)
            .min_by(|&a, &b| (values[a] / share(a)).total_cmp(&(values[b] / share(b))))
        else {
            return;
        };
        counts[g] -= 1;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::scheduling::bound_knapsack::{knapsack, knapsack_within};
    use crate::scheduling::bound_model::{Demand, Kind, Shared};
    use crate::scheduling::resources::PODS;

    /// Every count vector of `m`'s groups up to each group's most on kind 0, best value first.
    fn brute(m: &Model, values: &[f64]) -> f64 {
        fn go(m: &Model, values: &[f64], g: usize, counts: &mut Vec<u32>, best: &mut f64) {
            if g == counts.len() {
                if m.fits(0, counts) {
                    *best = best.max(counts.iter().zip(values).map(|(c, v)| *c as f64 * v).sum());
                }
                return;
            }
            for c in 0..=m.most(g, 0) {
                counts[g] = c;
                go(m, values, g + 1, counts, best);
            }
            counts[g] = 0;
        }
        let mut best = 0.0;
        go(m, values, 0, &mut vec![0; m.groups.len()], &mut best);
        best
    }

    fn model(alloc: [i64; 3], groups: &[(i64, i64, u32)], shared: Option<(Vec<usize>, u32)>) -> Model {
        model_sets(alloc, groups, shared.into_iter().collect())
    }

    fn model_sets(alloc: [i64; 3], groups: &[(i64, i64, u32)], shared: Vec<(Vec<usize>, u32)>) -> Model {
        Model {
            dims: vec!["cpu".to_string(), "memory".to_string(), PODS.to_string()],
            groups: groups
                .iter()
                .map(|&(c, m, cap)| Demand { pods: 9, requests: vec![c, m, 1], per_node: cap })
                .collect(),
            kinds: vec![Kind {
                name: "k".to_string(),
                alloc: alloc.to_vec(),
                price: 1.0,
                holds: vec![true; groups.len()],
                zone: 0,
            }],
            shared: shared.into_iter().map(|(groups, per_node)| Shared { groups, per_node }).collect(),
            zoned: Vec::new(),
            min_nodes: 0.0,
            left_out: 0,
        }
    }

    #[test]
    fn an_exact_grid_finds_the_optimum_cpu_alone_would_miss() {
        // 1930m and 3400Mi: two 900m/1700Mi pods beat one 1500m pod and a 400m one.
        let m = model([1930, 3400, 17], &[(1500, 1000, u32::MAX), (900, 1700, u32::MAX), (400, 100, u32::MAX)], None);
        let values = [0.6, 0.5, 0.1];
        let k = dp_knapsack(&m, 0, &values, false, None).expect("grid");
        assert_eq!(k.counts, vec![0, 2, 0]);
        assert!((k.value - 1.0).abs() < 1e-12 && (k.upper - 1.0).abs() < 1e-12, "{k:?}");
    }

    #[test]
    fn the_work_a_budget_gives_holds_the_program() {
        let m = model([1930, 3400, 17], &[(1500, 1000, u32::MAX), (900, 1700, u32::MAX), (400, 100, u32::MAX)], None);
        let values = [0.6, 0.5, 0.1];
        for choices in [false, true] {
            assert!(dp_knapsack(&m, 0, &values, choices, Some(1)).is_none(), "no grid fits one update");
            assert!(dp_knapsack(&m, 0, &values, choices, Some(WORK)).is_some());
        }
    }

    #[test]
    fn a_shared_set_holds_its_cap_across_groups() {
        // Anti-affine groups 0 and 1: one pod of either per node, then the free group fills.
        let m = model([4000, 8000, 30], &[(500, 500, 1), (250, 250, 1), (1000, 1000, u32::MAX)], Some((vec![0, 1], 1)));
        for choices in [false, true] {
            let k = dp_knapsack(&m, 0, &[1.0, 0.9, 0.5], choices, None).expect("grid");
            assert_eq!(k.counts, vec![1, 0, 3]);
            assert!(m.fits(0, &k.counts));
        }
    }

    #[test]
    fn sets_of_one_pod_per_node_cost_no_states_however_many() {
        // Ten spreads of max skew one, two groups each: a node takes one pod of each spread,
        // ten in all where 2^10 set counts would have been too many to track.
        let groups: Vec<(i64, i64, u32)> = (0..20).map(|i| (100 + 50 * (i % 2), 100, 1)).collect();
        let sets = (0..10).map(|s| (vec![2 * s, 2 * s + 1], 1)).collect();
        let m = model_sets([1300, 4000, 30], &groups, sets);
        let values: Vec<f64> = (0..20).map(|i| if i % 2 == 0 { 1.0 } else { 1.2 }).collect();
        let k = exact_knapsack(&m, 0, &values, true).expect("exact grid");
        assert!(m.fits(0, &k.counts), "{k:?}");
        // 1300m: six 150m pods and four 100m ones (1300m), one per spread.
        assert!((k.value - 11.2).abs() < 1e-9 && (k.upper - k.value).abs() < 1e-9, "{k:?}");
    }

    #[test]
    fn a_pod_count_that_binds_is_on_the_grid() {
        // Without the count, eight 100m pods and four 250m ones (2.8); the node allows eight
        // pods, so eight of the 250m ones.
        let m = model([2000, 8000, 8], &[(100, 100, u32::MAX), (250, 100, u32::MAX)], None);
        let values = [0.2, 0.3];
        let k = exact_knapsack(&m, 0, &values, true).expect("exact grid");
        assert_eq!(k.counts, vec![0, 8]);
        assert!((k.upper - 2.4).abs() < 1e-9, "{k:?}");
    }

    #[test]
    fn the_exact_program_declines_a_grid_it_would_have_to_coarsen() {
        // 1 m and 1 byte units: 9,000 × 9,000 cells are far beyond its states.
        let m = model([9000, 9000, 30], &[(1001, 997, u32::MAX), (2003, 1999, u32::MAX)], None);
        assert!(exact_knapsack(&m, 0, &[1.0, 1.5], true).is_none());
        assert!(
            dp_knapsack(&m, 0, &[1.0, 1.5], false, None).is_some(),
            "the grid program coarsens or prices out instead"
        );
    }

    #[test]
    fn a_pod_too_large_for_the_room_left_adds_nothing_to_the_bound() {
        // 1000m and 4 pods: after one 600m pod, the 400m left holds one 300m pod, not 1.33.
        let m = model([1000, 10_000, 4], &[(600, 10, u32::MAX), (300, 10, u32::MAX)], None);
        let values = [1.0, 0.45];
        let tight = knapsack_within(&m, 0, &values, 2, 0.0, 0.0, true);
        let loose = knapsack_within(&m, 0, &values, 2, 0.0, 0.0, false);
        assert!((tight.upper - 1.45).abs() < 1e-9, "{tight:?}");
        assert!((loose.upper - 1.6).abs() < 1e-9, "{loose:?}");
        assert!((brute(&m, &values) - 1.45).abs() < 1e-9);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn the_exact_program_finds_the_optimum_when_pods_do_not_bind(
            cpu in 500i64..9000,
            mem in 500i64..9000,
            groups in prop::collection::vec((1i64..60, 1i64..60, prop::sample::select(vec![1u32, 2, 3, u32::MAX]), 0.0f64..2.0), 1..=4),
            set in 0u32..3,
            choices in any::<bool>(),
        ) {
            // Requests in steps of 50 and room for more pods than cpu allows: the program's
            // grid is exact and the pod count never binds, so its node is the optimum.
            let shapes: Vec<(i64, i64, u32)> = groups.iter().map(|g| (g.0 * 50, g.1 * 50, g.2)).collect();
            let values: Vec<f64> = groups.iter().map(|g| g.3).collect();
            // A set of two pods per node is tracked; one of one pod is a choice.
            let shared = (set > 0 && shapes.len() > 1).then(|| (vec![0, 1], set));
            let m = model([cpu, mem, 200], &shapes, shared);
            let best = brute(&m, &values);
            let k = exact_knapsack(&m, 0, &values, choices);
            prop_assert!(k.is_some() || best <= 1e-10, "no program though a pod fits: {best}");
            if let Some(k) = k {
                prop_assert!(m.fits(0, &k.counts), "{k:?}");
                prop_assert!((k.value - best).abs() < 1e-9 && (k.upper - best).abs() < 1e-9, "{k:?} vs {best}");
            }
        }

        #[test]
        fn the_grid_and_branch_and_bound_bound_the_knapsack_and_their_nodes_fit(
            cpu in 500i64..9000,
            mem in 500i64..9000,
            pods in 2i64..12,
            groups in prop::collection::vec((50i64..3000, 50i64..3000, prop::sample::select(vec![1u32, 2, 3, u32::MAX]), 0.0f64..2.0), 1..=4),
            set in 0u32..3,
            choices in any::<bool>(),
            raw in any::<bool>(),
            limit in prop::sample::select(vec![0u64, 1, 3, 30, 1_000_000]),
            room in any::<bool>(),
        ) {
            // Requests in steps of 50 keep both dimensions on the grid; any others price one out.
            let step = |q: i64| if raw { q } else { (q / 50).max(1) * 50 };
            let shapes: Vec<(i64, i64, u32)> = groups.iter().map(|g| (step(g.0), step(g.1), g.2)).collect();
            let values: Vec<f64> = groups.iter().map(|g| g.3).collect();
            // A set of two pods per node is tracked; one of one pod is a choice.
            let shared = (set > 0 && shapes.len() > 1).then(|| (vec![0, 1], set));
            let m = model([cpu, mem, pods], &shapes, shared);
            let best = brute(&m, &values);
            // Branch and bound at any budget, its relaxations with or without the room left.
            let bb = knapsack_within(&m, 0, &values, limit, 0.0, 0.0, room);
            prop_assert!(m.fits(0, &bb.counts), "{bb:?}");
            prop_assert!(bb.value <= best + 1e-9 && bb.upper >= best - 1e-9, "{bb:?} vs {best}");
            prop_assert!(limit < 1_000_000 || (bb.value - best).abs() < 1e-9, "{bb:?} vs {best}");
            if let Some(k) = dp_knapsack(&m, 0, &values, choices, None) {
                prop_assert!(m.fits(0, &k.counts), "{k:?}");
                let value: f64 = k.counts.iter().zip(&values).map(|(c, v)| *c as f64 * v).sum();
                prop_assert!((value - k.value).abs() < 1e-9);
                prop_assert!(k.value <= best + 1e-9 && k.upper >= best - 1e-9, "{k:?} vs {best}");
                let bb = knapsack(&m, 0, &values, 1_000_000, 0.0);
                prop_assert!(k.upper >= bb.value - 1e-9);
            }
        }
    }
}
