//! The grid of [`super::bound_dp`]'s programs and one program over it: states are a kind's
//! room in up to two resource dimensions and its pod count (where the count can bind), in grid
//! units rounded down, times the counts of the shared sets tracked.
//!
//! A shared set of one pod per node whose groups are in no other set is not tracked: its groups
//! make one pass that takes at most one of them (a multiple-choice step), so hostname
//! anti-affinity and spreads of max skew one add no states however many there are.
//!
//! ```text
//! kind, groups ─► grid (units, cells, tracked sets, choice sets) ─► passes ─► sweeps ─► node
//! ```

use super::bound_model::Model;
use super::resources::PODS;

/// Most combinations of tracked shared-set counts; beyond, the kind is left to branch and bound.
const SET_STATES: usize = 64;

/// The grid: per dimension (two resources, then the pod count) its model dimension, unit and
/// cells (0 ..= capacity); per tracked shared set its radix and stride; the sets whose groups
/// make a multiple-choice pass.
pub(super) struct Grid {
    dims: [Option<usize>; 3],
    cells: [usize; 3],
    units: [i64; 3],
    radix: Vec<usize>,
    stride: Vec<usize>,
    tracked: Vec<usize>,
    choice: Vec<usize>,
    /// Every request is a whole number of units, and the pod count is on the grid wherever it
    /// can bind.
    pub exact: bool,
}

impl Grid {
    pub fn size(&self) -> usize {
        self.radix.iter().product::<usize>() * self.cells.iter().product::<usize>()
    }

    fn cells_of(&self, requests: &[i64]) -> [usize; 3] {
        [0, 1, 2].map(|i| self.dims[i].map_or(0, |d| (requests[d] / self.units[i]) as usize))
    }

    /// The state index of a pass's step.
    fn offset(&self, sets: usize, cells: [usize; 3]) -> usize {
        ((sets * self.cells[0] + cells[0]) * self.cells[1] + cells[1]) * self.cells[2] + cells[2]
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The grids to try, each with the resource dimension to price out (`None`: none). Units are
/// the gcd of the requests per dimension: both resource dimensions when they fit `states`;
/// otherwise the one with fewer cells alone (its unit doubled as needed) with the other
/// returned to be priced out, then both with the larger one's unit doubled until they fit,
/// unless that rounds some request down to nothing. With `pods`, the pod count is a dimension
/// of every grid where it can bind and fits. With `choices`, each shared set of one pod per
/// node whose groups are in no other is a choice, not tracked. `None` when the tracked sets
/// need more than [`SET_STATES`] combinations.
pub(super) fn grids(
    m: &Model,
    k: usize,
    groups: &[usize],
    states: usize,
    choices: bool,
    pods: bool,
) -> Option<Vec<(Grid, Option<usize>)>> {
    let resource: Vec<usize> = (0..m.dims.len()).filter(|&d| m.dims[d] != PODS).take(2).collect();
    let alloc = &m.kinds[k].alloc;
    let unit = |d: usize| groups.iter().map(|&g| m.groups[g].requests[d]).filter(|q| *q > 0).fold(0, gcd).max(1);
    let smallest = |d: usize| groups.iter().map(|&g| m.groups[g].requests[d]).filter(|q| *q > 0).min().unwrap_or(0);
    let live: Vec<usize> =
        (0..m.shared.len()).filter(|&s| m.shared[s].groups.iter().any(|g| groups.contains(g))).collect();
    let alone = |s: usize| {
        choices
            && m.shared[s].per_node == 1
            && m.shared[s].groups.iter().all(|g| live.iter().all(|&o| o == s || !m.shared[o].groups.contains(g)))
    };
    let (choice, tracked): (Vec<usize>, Vec<usize>) = live.iter().partition(|&&s| alone(s));
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
    // The pod count binds only where the resources let a node hold more pods than it allows.
    let pods = (0..m.dims.len()).filter(|_| pods).find(|&d| m.dims[d] == PODS).filter(|&p| {
        let most: i64 = groups.iter().map(|&g| m.most(g, k) as i64).sum();
        let by = |d: usize| if smallest(d) > 0 { alloc[d] / smallest(d) } else { i64::MAX };
        alloc[p] < most.min(resource.iter().map(|&d| by(d)).min().unwrap_or(i64::MAX))
    });
    let make = |dims: [Option<usize>; 2]| {
        let units = dims.map(|d| d.map_or(1, unit));
        let cells = [0, 1].map(|i| dims[i].map_or(1, |d| (alloc[d].max(0) / units[i]) as usize + 1));
        let with_pods = pods.filter(|&p| radix.iter().product::<usize>() * (alloc[p].max(0) as usize + 1) <= states);
        let mut g = Grid {
            dims: [dims[0], dims[1], with_pods],
            cells: [cells[0], cells[1], with_pods.map_or(1, |p| alloc[p].max(0) as usize + 1)],
            units: [units[0], units[1], 1],
            radix: radix.clone(),
            stride: stride.clone(),
            tracked: tracked.clone(),
            choice: choice.clone(),
            exact: false,
        };
        g.exact = g.size() <= states && pods == with_pods;
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
            if (0..2).all(|i| both.dims[i].is_none_or(|d| both.units[i] <= smallest(d))) {
                out.push((both, None));
            }
            out
        }
        [a] => vec![(make([Some(a), None])?, None)],
        _ => vec![(make([None, None])?, None)],
    })
}

/// A pass of the program: one of `alts` taken (or any number of its one alternative when
/// `unbounded`), each alternative a group, its `copies` pods' cells and value.
struct Pass {
    alts: Vec<(usize, [usize; 3], f64)>,
    copies: u32,
    /// Offset of one pass in the sets' part of the state index.
    sets: usize,
    /// Tracked set positions the pass counts in.
    members: Vec<usize>,
    unbounded: bool,
}

/// Which states a pass improved: a bit per state, or for a multiple-choice pass the
/// alternative (1-based; 0: none).
enum Took {
    Bits(Vec<u64>),
    Choice(Vec<u8>),
}

/// The program's optimum over `groups` at `values` on `grid`, and a node attaining it (which
/// fits the grid, not necessarily the kind).
pub(super) fn program(m: &Model, k: usize, grid: &Grid, values: &[f64], groups: &[usize]) -> (f64, Vec<u32>) {
    let mut counts = vec![0u32; m.groups.len()];
    if groups.is_empty() {
        return (0.0, counts);
    }
    let passes = passes(m, k, values, groups, grid);
    let size = grid.size();
    let mut best = vec![0.0f64; size];
    let took: Vec<Took> = passes.iter().map(|p| run(grid, p, &mut best)).collect();
    let mut at = size - 1;
    let upper = best[at];
    for (p, took) in passes.iter().zip(&took).rev() {
        match took {
            Took::Bits(bits) => {
                let (g, cells, _) = p.alts[0];
                while bits[at / 64] >> (at % 64) & 1 == 1 {
                    counts[g] += p.copies;
                    at -= grid.offset(p.sets, cells);
                    if !p.unbounded {
                        break;
                    }
                }
            }
            Took::Choice(chosen) => {
                if let Some(&(g, cells, _)) = (chosen[at] as usize).checked_sub(1).map(|i| &p.alts[i]) {
                    counts[g] += 1;
                    at -= grid.offset(0, cells);
                }
            }
        }
    }
    (upper, counts)
}

/// One pass per group, or its copies split in powers of two when the node could hold more
/// than the group allows; one multiple-choice pass per choice set.
fn passes(m: &Model, k: usize, values: &[f64], groups: &[usize], grid: &Grid) -> Vec<Pass> {
    let mut out = Vec::new();
    for &s in &grid.choice {
        let alts: Vec<(usize, [usize; 3], f64)> = groups
            .iter()
            .filter(|g| m.shared[s].groups.contains(g))
            .map(|&g| (g, grid.cells_of(&m.groups[g].requests), values[g]))
            .collect();
        // One alternative is a group's own pass; more than `u8` holds, their own passes too.
        if alts.len() > 1 && alts.len() < u8::MAX as usize {
            out.push(Pass { alts, copies: 1, sets: 0, members: Vec::new(), unbounded: false });
        }
    }
    let chosen = |g: &usize| out.iter().any(|p: &Pass| p.alts.iter().any(|a| a.0 == *g));
    let single: Vec<usize> = groups.iter().copied().filter(|g| !chosen(g)).collect();
    for g in single {
        // A choice set's group on its own still takes one pod at most.
        let one = grid.choice.iter().any(|&s| m.shared[s].groups.contains(&g));
        let most = if one { m.most(g, k).min(1) } else { m.most(g, k) };
        let cells = grid.cells_of(&m.groups[g].requests);
        let members: Vec<usize> =
            (0..grid.tracked.len()).filter(|&i| m.shared[grid.tracked[i]].groups.contains(&g)).collect();
        let room = (0..3).filter(|&i| cells[i] > 0).map(|i| (grid.cells[i] - 1) / cells[i]).min().unwrap_or(usize::MAX);
        let pass = |copies: u32, unbounded: bool| Pass {
            alts: vec![(g, cells.map(|c| c * copies as usize), values[g] * copies as f64)],
            copies,
            sets: members.iter().map(|&i| grid.stride[i] * copies as usize).sum(),
            members: members.clone(),
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

/// Calls `visit` on every state whose coordinates are at least `cells` and whose tracked sets
/// pass `set_ok`, in index order or its reverse.
fn sweep(grid: &Grid, cells: [usize; 3], set_ok: impl Fn(usize) -> bool, reverse: bool, mut visit: impl FnMut(usize)) {
    let [c0, c1, c2] = grid.cells;
    let sets = grid.size() / (c0 * c1 * c2);
    let rows = |s: usize, a: usize| (cells[1]..c1).map(move |b| ((s * c0 + a) * c1 + b) * c2);
    if reverse {
        for s in (0..sets).rev().filter(|&s| set_ok(s)) {
            for a in (cells[0]..c0).rev() {
                for row in rows(s, a).rev() {
                    (row + cells[2]..row + c2).rev().for_each(&mut visit);
                }
            }
        }
    } else {
        for s in (0..sets).filter(|&s| set_ok(s)) {
            for a in cells[0]..c0 {
                for row in rows(s, a) {
                    (row + cells[2]..row + c2).for_each(&mut visit);
                }
            }
        }
    }
}

/// One pass over every state; returns the states it improved.
fn run(grid: &Grid, p: &Pass, best: &mut [f64]) -> Took {
    let size = best.len();
    if p.alts.len() > 1 {
        // Every alternative from the states as they were before the pass: at most one is taken.
        let before = best.to_vec();
        let mut chosen = vec![0u8; size];
        for (i, &(_, cells, value)) in p.alts.iter().enumerate() {
            let step = grid.offset(0, cells);
            sweep(
                grid,
                cells,
                |_| true,
                false,
                |x| {
                    let v = before[x - step] + value;
                    if v > best[x] + 1e-15 {
                        best[x] = v;
                        chosen[x] = i as u8 + 1;
                    }
                },
            );
        }
        return Took::Choice(chosen);
    }
    let (_, cells, value) = p.alts[0];
    let mut bits = vec![0u64; size.div_ceil(64)];
    let step = grid.offset(p.sets, cells);
    let copies = p.copies as usize;
    let set_ok = |s: usize| p.members.iter().all(|&i| (s / grid.stride[i]) % grid.radix[i] >= copies);
    // Unbounded passes sweep upwards (a state may build on one the pass improved), the others
    // downwards.
    sweep(grid, cells, set_ok, !p.unbounded, |x| {
        let v = best[x - step] + value;
        if v > best[x] + 1e-15 {
            best[x] = v;
            bits[x / 64] |= 1 << (x % 64);
        }
    });
    Took::Bits(bits)
}
