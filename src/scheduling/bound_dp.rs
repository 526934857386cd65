//! The pricing knapsack of the configuration LP by dynamic programming: the best node of one
//! kind at given values per pod, over a grid of its two resource dimensions (cpu and memory)
//! and the pod counts of each shared set.
//!
//! Requests and the allocatable are measured in grid units rounded down, so every node that fits
//! in truth also fits on the grid, and the pod-count dimension is left out: the grid optimum is
//! a valid upper bound of the kind's knapsack. When the unit divides every request (the grid is
//! exact) and the grid's best node also fits in truth, it is the knapsack's optimum.
//!
//! ```text
//! values, kind ─► grid (gcd units; cpu × memory, or one of them and a price on the other)
//!   ─► passes (groups, split in powers of two where capped) ─► one sweep each ─► upper, node
//! ```

use super::bound_knapsack::Knapsack;
use super::bound_model::Model;
use super::resources::PODS;

/// Most states (grid cells × shared-set counts) one knapsack may use.
pub const STATES: usize = 1 << 18;

/// Most combinations of shared-set counts tracked; beyond, the kind is left to branch and bound.
const SET_STATES: usize = 64;

/// A pass of the program: `copies` pods of `group` taken together (or any number of them when
/// `unbounded`).
struct Pass {
    group: usize,
    copies: u32,
    cells: [usize; 2],
    /// Offset of one pass in the sets' part of the state index.
    sets: usize,
    /// Set positions the pass counts in.
    members: Vec<usize>,
    value: f64,
    unbounded: bool,
}

/// The grid: units per dimension, cells per dimension (0 ..= capacity), and per tracked
/// shared set its radix and stride.
struct Grid {
    dims: [Option<usize>; 2],
    cells: [usize; 2],
    units: [i64; 2],
    radix: Vec<usize>,
    stride: Vec<usize>,
    tracked: Vec<usize>,
    /// Every request is a whole number of units (the grid fitted its states at the requests'
    /// common units).
    exact: bool,
}

impl Grid {
    fn size(&self) -> usize {
        self.radix.iter().product::<usize>() * self.cells[0] * self.cells[1]
    }

    fn cells_of(&self, requests: &[i64]) -> [usize; 2] {
        [0, 1].map(|i| self.dims[i].map_or(0, |d| (requests[d] / self.units[i]) as usize))
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The best node of kind `k` at `values`, or `None` when the shared sets need more than
/// [`SET_STATES`] combinations or no group has a positive value.
///
/// When both resource dimensions fit [`STATES`] at their exact units, one program over both.
/// Otherwise up to two bounds, the smaller kept: the dimension with fewer cells alone with the
/// other priced out (Lagrangian relaxation): for any price `λ ≥ 0` per share of the node, the
/// program's optimum at values less `λ` times each pod's share, plus `λ`, bounds the knapsack,
/// and `λ` is found by a golden-section search; and both dimensions at coarser units. The node
/// returned is the best that fits among those the programs found.
pub fn dp_knapsack(m: &Model, k: usize, values: &[f64]) -> Option<Knapsack> {
    knapsack_on_grid(m, k, values, Reach { states: STATES, work: WORK, exact_only: false })
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
}

/// The exact program of kind `k` at `values` when both dimensions at their common units, times
/// the shared sets' counts, fit [`EXACT_STATES`] and its sweeps [`EXACT_WORK`]: its optimum
/// bounds the knapsack with the pod count left out, and is the knapsack's when its node fits.
pub fn exact_knapsack(m: &Model, k: usize, values: &[f64]) -> Option<Knapsack> {
    knapsack_on_grid(m, k, values, Reach { states: EXACT_STATES, work: EXACT_WORK, exact_only: true })
}

/// Most states of [`exact_knapsack`]'s program: a 4-vCPU, 16-GiB node at 50 m and 4 MiB with
/// a spread's eight counts and an anti-affinity's two is 4.5 million.
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
    let grids = grids(m, k, &groups, reach.states)?;
    if reach.exact_only && !(grids.len() == 1 && grids[0].1.is_none() && grids[0].0.exact) {
        return None;
    }
    // Each program sweeps the states once per pass, and the search runs several programs.
    let work: usize = grids
        .iter()
        .map(|(g, out)| g.size() * (groups.len() + 8) * if out.is_some() { LAMBDA_STEPS + 3 } else { 1 })
        .sum();
    if work > reach.work {
        return None;
    }
    for (grid, priced_out) in grids {
        let (u, counts) = match priced_out {
            None => {
                let (u, mut counts) = program(m, k, &grid, values, &groups);
                repair(m, k, values, &mut counts);
                (u, counts)
            }
            Some(d) => lagrangian(m, k, &grid, values, &groups, d),
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
/// node worth the most (at `values`) among those the search found, repaired to fit.
fn lagrangian(m: &Model, k: usize, grid: &Grid, values: &[f64], groups: &[usize], d: usize) -> (f64, Vec<u32>) {
    let alloc = m.kinds[k].alloc[d].max(1) as f64;
    let share = |g: usize| m.groups[g].requests[d] as f64 / alloc;
    let top = groups.iter().filter(|&&g| share(g) > 0.0).map(|&g| values[g] / share(g)).fold(0.0, f64::max);
    let mut best: (f64, Vec<u32>) = (0.0, vec![0; m.groups.len()]);
    let mut upper = f64::INFINITY;
    let mut at = |lambda: f64| -> f64 {
        let adjusted: Vec<f64> = (0..values.len())
            .map(|g| if groups.contains(&g) { (values[g] - lambda * share(g)).max(0.0) } else { 0.0 })
            .collect();
        let live: Vec<usize> = groups.iter().copied().filter(|&g| adjusted[g] > 1e-12).collect();
        let (bound, mut counts) = program(m, k, grid, &adjusted, &live);
        let bound = bound + lambda;
        upper = upper.min(bound);
        repair(m, k, values, &mut counts);
        if worth(&counts, values) > best.0 {
            best = (worth(&counts, values), counts);
        }
        bound
    };
    // Golden-section search of the convex bound over [0, top].
    const PHI: f64 = 0.618_033_988_749_895;
    let (mut lo, mut hi) = (0.0, top);
    let (mut x1, mut x2) = (hi - PHI * (hi - lo), lo + PHI * (hi - lo));
    let (mut f1, mut f2) = (at(x1), at(x2));
    at(top);
    for _ in 0..LAMBDA_STEPS {
        if f1 <= f2 {
            (hi, x2, f2) = (x2, x1, f1);
            x1 = hi - PHI * (hi - lo);
            f1 = at(x1);
        } else {
            (lo, x1, f1) = (x1, x2, f2);
            x2 = lo + PHI * (hi - lo);
            f2 = at(x2);
        }
    }
    (upper, best.1)
}

/// Most state updates (states × passes × programs) one knapsack may take; beyond, the kind is
/// left to branch and bound, so a catalog of very large types stays fast.
const WORK: usize = 50_000_000;

/// Evaluations of the golden-section search beyond its first three.
const LAMBDA_STEPS: usize = 14;

/// The program's optimum over `groups` at `values` on `grid`, and a node attaining it (which
/// fits the grid, not necessarily the kind).
fn program(m: &Model, k: usize, grid: &Grid, values: &[f64], groups: &[usize]) -> (f64, Vec<u32>) {
    let mut counts = vec![0u32; m.groups.len()];
    if groups.is_empty() {
        return (0.0, counts);
    }
    let passes = passes(m, k, values, groups, grid);
    let size = grid.size();
    let mut best = vec![0.0f64; size];
    let took: Vec<Vec<u64>> = passes.iter().map(|p| run(grid, p, &mut best)).collect();
    let mut at = size - 1;
    let upper = best[at];
    let step = |p: &Pass| (p.sets * grid.cells[0] + p.cells[0]) * grid.cells[1] + p.cells[1];
    for (p, bits) in passes.iter().zip(&took).rev() {
        while bits[at / 64] >> (at % 64) & 1 == 1 {
            counts[p.group] += p.copies;
            at -= step(p);
            if !p.unbounded {
                break;
            }
        }
    }
    (upper, counts)
}

/// The grids to try. Units are the gcd of the requests per dimension: both resource dimensions
/// when they fit [`STATES`]; otherwise the one with fewer cells alone (its unit doubled as
/// needed) with the other returned to be priced out, then both with the larger one's unit
/// doubled until they fit, unless that rounds some request down to nothing.
fn grids(m: &Model, k: usize, groups: &[usize], states: usize) -> Option<Vec<(Grid, Option<usize>)>> {
    let resource: Vec<usize> = (0..m.dims.len()).filter(|&d| m.dims[d] != PODS).take(2).collect();
    let alloc = &m.kinds[k].alloc;
    let unit = |d: usize| groups.iter().map(|&g| m.groups[g].requests[d]).filter(|q| *q > 0).fold(0, gcd).max(1);
    let tracked: Vec<usize> =
        (0..m.shared.len()).filter(|&s| m.shared[s].groups.iter().any(|g| groups.contains(g))).collect();
    let radix: Vec<usize> = tracked
        .iter()
        .map(|&s| {
            let room: u64 =
                m.shared[s].groups.iter().filter(|g| groups.contains(g)).map(|&g| m.most(g, k) as u64).sum();
            room.min(m.shared[s].per_node as u64) as usize + 1
        })
        .collect();
    if radix.iter().product::<usize>() > SET_STATES {
        return None;
    }
    let mut stride = vec![1usize; radix.len()];
    for i in 1..radix.len() {
        stride[i] = stride[i - 1] * radix[i - 1];
    }
    let make = |dims: [Option<usize>; 2]| {
        let units = dims.map(|d| d.map_or(1, unit));
        let cells = [0, 1].map(|i| dims[i].map_or(1, |d| (alloc[d].max(0) / units[i]) as usize + 1));
        let mut g = Grid {
            dims,
            cells,
            units,
            radix: radix.clone(),
            stride: stride.clone(),
            tracked: tracked.clone(),
            exact: false,
        };
        g.exact = g.size() <= states;
        while g.size() > states {
            let i = if g.cells[0] >= g.cells[1] { 0 } else { 1 };
            let d = g.dims[i]?;
            g.units[i] *= 2;
            g.cells[i] = (alloc[d].max(0) / g.units[i]) as usize + 1;
        }
        Some(g)
    };
    Some(match resource[..] {
        [a, b] => {
            let both = make([Some(a), Some(b)])?;
            if both.exact {
                return Some(vec![(both, None)]);
            }
            let fewer = |x: usize, y: usize| alloc[x] / unit(x) <= alloc[y] / unit(y);
            let (keep, out_d) = if fewer(a, b) { (a, b) } else { (b, a) };
            let mut out = vec![(make([Some(keep), None])?, Some(out_d))];
            // Coarse units are worth a program only while no request rounds down to nothing.
            let smallest =
                |d: usize| groups.iter().map(|&g| m.groups[g].requests[d]).filter(|q| *q > 0).min().unwrap_or(0);
            if (0..2).all(|i| both.dims[i].is_none_or(|d| both.units[i] <= smallest(d))) {
                out.push((both, None));
            }
            out
        }
        [a] => vec![(make([Some(a), None])?, None)],
        _ => vec![(make([None, None])?, None)],
    })
}

/// One pass per group, or its copies split in powers of two when the node could hold more
/// than the group allows.
fn passes(m: &Model, k: usize, values: &[f64], groups: &[usize], grid: &Grid) -> Vec<Pass> {
    let mut out = Vec::new();
    for &g in groups {
        let most = m.most(g, k);
        let cells = grid.cells_of(&m.groups[g].requests);
        let members: Vec<usize> =
            (0..grid.tracked.len()).filter(|&i| m.shared[grid.tracked[i]].groups.contains(&g)).collect();
        let room = (0..2).filter(|&i| cells[i] > 0).map(|i| (grid.cells[i] - 1) / cells[i]).min().unwrap_or(usize::MAX);
        let pass = |copies: u32, unbounded: bool| Pass {
            group: g,
            copies,
            cells: cells.map(|c| c * copies as usize),
            sets: members.iter().map(|&i| grid.stride[i] * copies as usize).sum(),
            members: members.clone(),
            value: values[g] * copies as f64,
            unbounded,
        };
        if members.is_empty() && most as usize >= room {
            out.push(pass(1, true));
            continue;
        }
        let (mut left, mut chunk) = (most, 1u32);
        while left > 0 {
            let c = chunk.min(left);
            out.push(pass(c, false));
            left -= c;
            chunk *= 2;
        }
    }
    out
}

/// One pass over every state; returns the states it improved.
fn run(grid: &Grid, p: &Pass, best: &mut [f64]) -> Vec<u64> {
    let size = best.len();
    let mut bits = vec![0u64; size.div_ceil(64)];
    let [c0, c1] = grid.cells;
    let sets = size / (c0 * c1);
    let step = (p.sets * c0 + p.cells[0]) * c1 + p.cells[1];
    let copies = p.copies as usize;
    let set_ok = |s: usize| p.members.iter().all(|&i| (s / grid.stride[i]) % grid.radix[i] >= copies);
    let mut visit = |x: usize| {
        let v = best[x - step] + p.value;
        if v > best[x] + 1e-15 {
            best[x] = v;
            bits[x / 64] |= 1 << (x % 64);
        }
    };
    if p.unbounded {
        for s in (0..sets).filter(|&s| set_ok(s)) {
            for a in p.cells[0]..c0 {
                let row = (s * c0 + a) * c1;
                (row + p.cells[1]..row + c1).for_each(&mut visit);
            }
        }
    } else {
        for s in (0..sets).rev().filter(|&s| set_ok(s)) {
            for a in (p.cells[0]..c0).rev() {
                let row = (s * c0 + a) * c1;
                (row + p.cells[1]..row + c1).rev().for_each(&mut visit);
            }
        }
    }
    bits
}

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
        let k = dp_knapsack(&m, 0, &values).expect("grid");
        assert_eq!(k.counts, vec![0, 2, 0]);
        assert!((k.value - 1.0).abs() < 1e-12 && (k.upper - 1.0).abs() < 1e-12, "{k:?}");
    }

    #[test]
    fn a_shared_set_holds_its_cap_across_groups() {
        // Anti-affine groups 0 and 1: one pod of either per node, then the free group fills.
        let m = model([4000, 8000, 30], &[(500, 500, 1), (250, 250, 1), (1000, 1000, u32::MAX)], Some((vec![0, 1], 1)));
        let k = dp_knapsack(&m, 0, &[1.0, 0.9, 0.5]).expect("grid");
        assert_eq!(k.counts, vec![1, 0, 3]);
        assert!(m.fits(0, &k.counts));
    }

    #[test]
    fn the_exact_program_declines_a_grid_it_would_have_to_coarsen() {
        // 1 m and 1 byte units: 9,000 × 9,000 cells are far beyond its states.
        let m = model([9000, 9000, 30], &[(1001, 997, u32::MAX), (2003, 1999, u32::MAX)], None);
        assert!(exact_knapsack(&m, 0, &[1.0, 1.5]).is_none());
        assert!(dp_knapsack(&m, 0, &[1.0, 1.5]).is_some(), "the grid program coarsens or prices out instead");
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
            set in any::<bool>(),
        ) {
            // Requests in steps of 50 and room for more pods than cpu allows: the program's
            // grid is exact and the pod count never binds, so its node is the optimum.
            let shapes: Vec<(i64, i64, u32)> = groups.iter().map(|g| (g.0 * 50, g.1 * 50, g.2)).collect();
            let values: Vec<f64> = groups.iter().map(|g| g.3).collect();
            let shared = (set && shapes.len() > 1).then(|| (vec![0, 1], 2));
            let m = model([cpu, mem, 200], &shapes, shared);
            let best = brute(&m, &values);
            let k = exact_knapsack(&m, 0, &values);
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
            set in any::<bool>(),
            raw in any::<bool>(),
            limit in prop::sample::select(vec![0u64, 1, 3, 30, 1_000_000]),
            room in any::<bool>(),
        ) {
            // Requests in steps of 50 keep both dimensions on the grid; any others price one out.
            let step = |q: i64| if raw { q } else { (q / 50).max(1) * 50 };
            let shapes: Vec<(i64, i64, u32)> = groups.iter().map(|g| (step(g.0), step(g.1), g.2)).collect();
            let values: Vec<f64> = groups.iter().map(|g| g.3).collect();
            let shared = (set && shapes.len() > 1).then(|| (vec![0, 1], 2));
            let m = model([cpu, mem, pods], &shapes, shared);
            let best = brute(&m, &values);
            // Branch and bound at any budget, its relaxations with or without the room left.
            let bb = knapsack_within(&m, 0, &values, limit, 0.0, 0.0, room);
            prop_assert!(m.fits(0, &bb.counts), "{bb:?}");
            prop_assert!(bb.value <= best + 1e-9 && bb.upper >= best - 1e-9, "{bb:?} vs {best}");
            prop_assert!(limit < 1_000_000 || (bb.value - best).abs() < 1e-9, "{bb:?} vs {best}");
            if let Some(k) = dp_knapsack(&m, 0, &values) {
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
