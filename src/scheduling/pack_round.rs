//! Rounding the configuration LP: column generation over every kind the pools offer for the
//! groups left, the LP's primal (fractional node counts per column) over the columns it found,
//! and each column's whole nodes opened, in the zone and capacity type that holds most of its
//! pods for least; the packer then places what is left. A small batch takes the whole nodes
//! of an integer program over the columns instead.
//!
//! The packer's own fills choose one node at a time at given values, so a mix of node kinds
//! that only pays as a whole (the LP's optimum) is out of its reach; the LP's rounding is not.

use microlp::{ComparisonOp, OptimizationDirection, Problem, SolveOptions, SolveOutcome, Variable};

use super::bound_columns::{self, Budget, PROGRAMS, Pattern};
use super::bound_master::{self, Master};
use super::bound_model::Model;
use super::catalog::CapacityType;
use super::groups::{ExclCounts, Group};
use super::pack::{Fill, Offer, State};
use super::pack_price::{self, LP_GROUPS};
use super::pack_swap::{Moved, Swaps};
use super::solve::{Ctx, fit_count};
use super::{pack_commit, pack_whole, pack_zoned};

pub(super) use super::pack_zoned::Memo;

/// Column generation's work for a rounding: fewer rounds than the bound's, as a column it
/// misses costs the plan a little, not the bound's validity.
pub(super) const BUDGET: Budget = Budget {
    rounds: 20,
    nodes: 500,
    integer: 0,
    programs: PROGRAMS,
    exact: 0,
    room: false,
    choices: false,
    work: None,
};

/// How the rounding makes whole nodes of the LP's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rounding {
    /// The LP's fractional node counts rounded down: for a batch of many nodes per column.
    Floor,
    /// For a batch too small to be rounded down, which would lose a large share of its nodes:
    /// the integer program over the columns ([`whole`]). On the generic mix at 100 to 999 pods
    /// its plans cost up to 2.9 % less than the re-packs' on the built-in catalog ($15.7584
    /// instead of $16.2288 at 999 pods) and up to 6.8 % less on the full one ($0.5796 instead
    /// of $0.6216 at 50, $6.3168 instead of $6.5772 at 500), for a solve of 0.07–2.9 s instead
    /// of 3–95 ms (release build).
    Whole,
    /// For a large batch some of whose groups are held to zones: the LP that knows the zones
    /// ([`pack_zoned`]), rounded down, solved again for what the floor leaves at most `passes`
    /// times in all.
    Zoned { passes: usize },
}

impl Rounding {
    /// The roundings to try, of which the packer keeps the cheapest plan: the zoned LP's floor
    /// once as well as in passes, since the passes, cheaper on most batches, are not on all.
    /// On Karpenter's synthetic catalog at 20,000 pods the single floor's plan cost $5,013.63
    /// and the passes' $5,024.64 (at 10 rounds of column generation per pass after the first).
    pub(super) fn tries(self) -> Vec<Rounding> {
        match self {
            Rounding::Zoned { passes } if passes > 1 => vec![self, Rounding::Zoned { passes: 1 }],
            _ => vec![self],
        }
    }
}

/// Whether, and how, the rounding is tried for the groups left at `level`: never when pods
/// must share a node; for a batch of at least [`ROUND_PODS`] pods, rounded down, in the
/// zone-free LP when no group is held to a zone or apart from other pods, and in the zoned LP
/// ([`pack_zoned`]) when some group is held to a zone; for a smaller one free of both, whole.
/// The zone-free LP knows nothing of zones and only a relaxation of the
/// exclusions: on the Karpenter mix its rounded plans cost 7–11 % more than the re-packs' at 20
/// to 10,000 pods, while the zoned LP's cost 2.1 % less at 10,000 on the built-in catalog and
/// 4.0 % less on the full one (for a solve of about 2 s instead of 1.3–1.5 s).
pub(super) fn rounding(groups: &[Group], level: usize) -> Option<Rounding> {
    let left = || groups.iter().filter(|g| !g.pods.is_empty() && level < g.levels.len());
    if left().any(|g| g.colocate) {
        return None;
    }
    let free = left().all(|g| g.roles.is_empty() && g.pinned.is_empty());
    let pinned = left().any(|g| !g.pinned.is_empty());
    match left().map(|g| g.pods.len()).sum::<usize>() {
        n if n >= ROUND_PODS && free => Some(Rounding::Floor),
        n if n >= ROUND_PODS && pinned => Some(Rounding::Zoned { passes: pack_zoned::PASSES }),
        _ if free => Some(Rounding::Whole),
        _ => None,
    }
}

/// Fewest pods the LP's fractional counts are rounded down for: that loses up to a node per
/// column, which only a batch of many nodes per column makes small (at 12 and 100 generic pods
/// the rounded-down plans cost more than the re-packs', at 1,000 and 10,000 less).
pub const ROUND_PODS: usize = 1_000;

/// Most branch-and-bound nodes the integer program may take; past it the best whole solution
/// found so far is used, or none.
const NODE_LIMIT: u64 = 2_000;

/// How far the enumeration of the columns within the gap may go.
const WITHIN: pack_whole::Limits = pack_whole::Limits { columns: 5_000, visits: 2_000_000 };

/// Opens the whole nodes of the rounded LP for the groups' remaining `demand`, column
/// generation starting from `seeds` (the nodes earlier packings opened); returns the pods
/// placed. `memo` keeps the zoned rounding's first LP for the next rounding of the same pods.
pub(super) fn open(
    ctx: &mut Ctx,
    st: &mut State,
    demand: &[u32],
    seeds: &[pack_price::Pattern],
    how: Rounding,
    memo: &mut Memo,
) -> u64 {
    let groups: Vec<usize> = (0..demand.len()).filter(|&gi| demand[gi] > 0).collect();
    match how {
        Rounding::Floor => zone_free(ctx, st, demand, &groups, seeds, false),
        Rounding::Whole => zone_free(ctx, st, demand, &groups, seeds, true),
        Rounding::Zoned { passes } => pack_zoned::open(ctx, st, demand, &groups, seeds, passes, memo),
    }
}

/// [`open`] in the zone-free LP, rounded down or, when `whole`, made whole by the integer
/// program.
fn zone_free(
    ctx: &mut Ctx,
    st: &mut State,
    demand: &[u32],
    groups: &[usize],
    seeds: &[pack_price::Pattern],
    whole_nodes: bool,
) -> u64 {
    let kinds: Vec<(usize, usize)> = (0..ctx.views.len())
        .flat_map(|pi| (0..ctx.views[pi].types.len()).map(move |pt| (pi, pt)))
        .filter(|&(pi, pt)| {
            st.type_price[pi][pt].is_finite()
                && groups.iter().any(|&gi| st.table[pi][gi].as_ref().is_some_and(|f| f.any_type(pt)))
        })
        .collect();
    let (classes, index) = pack_price::classes(st, groups, demand.len());
    let (m, target) = pack_price::model(ctx, st, demand, &kinds, &classes);
    if m.groups.len() > LP_GROUPS || kinds.is_empty() {
        return 0;
    }
    // A small batch's LP and integer program work on the kinds no other beats for no more: the
    // same optimum over fewer kinds.
    let (m, kinds) = if whole_nodes {
        let keep = m.undominated();
        let some: Vec<_> = keep.iter().map(|&k| m.kinds[k].clone()).collect();
        (Model { kinds: some, ..m }, keep.iter().map(|&k| kinds[k]).collect())
    } else {
        (m, kinds)
    };
    // The earlier packings' nodes as the first columns: column generation starts near their
    // cost instead of from one greedy fill per type.
    let start = pack_price::columns(&m, seeds, &kinds, &index, &target);
    // A small batch's LP is worth proving, as only then are the columns within its gap all an
    // optimum may need.
    let budget = if whole_nodes { Budget { exact: 0, ..Budget::default() } } else { BUDGET };
    let Some((conf, mut columns)) = bound_columns::generate(&m, budget, &start) else { return 0 };
    let x = match whole_nodes {
        false => cover(&m, &columns, false, false).map(|c| (c.x, c.swaps)),
        true => whole(&m, &mut columns, conf.proven).map(|x| (x, Swaps::none(m.groups.len()))),
    };
    let Some((x, mut swaps)) = x else { return 0 };
    // Rounded down, the fills place what the fractions leave; an integer variable's value is
    // within the solver's tolerance of a whole number.
    let count = |v: f64| if whole_nodes { v.round() as u32 } else { (v + 1e-6).floor() as u32 };
    let mut nodes: Vec<(u32, Pattern)> = x.iter().map(|v| count(*v)).zip(columns).filter(|(n, _)| *n > 0).collect();
    if !whole_nodes {
        nodes.sort_by(|a, b| b.cmp(a));
    }
    // The packer's groups behind each of the model's.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); m.groups.len()];
    for &gi in groups {
        members[target[index[gi]]].push(gi);
    }
    let mut placed = 0;
    for (count, (k, counts)) in nodes {
        let (pi, pt) = kinds[k];
        for _ in 0..count {
            let Some((f, used)) = best_offer(ctx, st, pi, pt, &counts, &members, &swaps) else { break };
            let (n, _) = pack_commit::commit(ctx, st, &f, 1);
            if n == 0 {
                break;
            }
            swaps.take(&used);
            placed += n;
        }
    }
    placed
}

/// A small batch's whole node counts per column: the integer program over `columns` and, when
/// the LP is `proven`, every column within its gap ([`pack_whole`], added to `columns`); where
/// the enumeration answers at duals that price no column above its cost, that is the model's
/// optimum.
fn whole(m: &Model, columns: &mut Vec<Pattern>, proven: bool) -> Option<Vec<f64>> {
    let Covered { x, cost, .. } = cover(m, columns, true, false)?;
    let Some(more) = proven.then(|| within_gap(m, columns, cost)).flatten() else { return Some(x) };
    columns.extend(more);
    columns.sort();
    columns.dedup();
    cover(m, columns, true, false).map(|c| c.x)
}

/// Node counts per column of the LP that covers the demand with `columns` (and each group's
/// cheapest node of it alone) at least cost, whole numbers when `integer` (branch and bound
/// within [`NODE_LIMIT`]), and that cost. With `swaps`, a group's pods may also take the
/// places the columns make for a group they can replace ([`bound_master::swaps`]), as in
/// column generation's master, and the moves are returned ([`Swaps`]).
pub(super) fn cover(m: &Model, columns: &[Pattern], integer: bool, swaps: bool) -> Option<Covered> {
    let mut p = Problem::new(OptimizationDirection::Minimize);
    let var = |p: &mut Problem, price: f64| match integer {
        false => p.add_var(price, (0.0, f64::INFINITY)),
        true => p.add_integer_var(price, (0, i32::MAX)),
    };
    let xs: Vec<_> = columns.iter().map(|(k, _)| var(&mut p, m.kinds[*k].price)).collect();
    let mut moves: Vec<Vec<(Variable, f64)>> = vec![Vec::new(); m.groups.len()];
    let mut pairs = Vec::new();
    if swaps {
        // A pod of g in a place the columns make for h: h's row gives it up, g's takes it.
        for (g, h) in bound_master::swaps(m) {
            let s = p.add_var(0.0, (0.0, f64::INFINITY));
            moves[g].push((s, 1.0));
            moves[h].push((s, -1.0));
            pairs.push((g, h, s));
        }
    }
    for (g, d) in m.groups.iter().enumerate() {
        let mut row: Vec<_> =
            columns.iter().zip(&xs).filter(|((_, c), _)| c[g] > 0).map(|((_, c), x)| (*x, c[g] as f64)).collect();
        row.extend(moves[g].iter().copied());
        let (k, n) = m.alone(g)?;
        row.push((var(&mut p, m.kinds[k].price), n as f64));
        p.add_constraint(row, ComparisonOp::Ge, d.pods as f64);
    }
    let mut options = SolveOptions::default();
    options.node_limit = Some(NODE_LIMIT);
    let sol = match p.solve_with(options).ok()? {
        SolveOutcome::Solution(s) => s,
        SolveOutcome::Interrupted(_) => return None,
    };
    let x = xs.iter().map(|x| sol[*x].max(0.0)).collect();
    let moved = pairs.iter().map(|&(g, h, s)| (g, h, sol[s])).collect::<Vec<_>>();
    Some(Covered { x, cost: sol.objective(), swaps: Swaps::of(m.groups.len(), &moved) })
}

/// The LP's cover: node counts per column, its cost, and the pods it moves into places its
/// columns make for other groups.
#[derive(Clone)]
pub(super) struct Covered {
    pub x: Vec<f64>,
    pub cost: f64,
    pub swaps: Swaps,
}

/// The columns within the gap between a whole solution costing `cost` and the LP over
/// `columns`, at the duals of that LP; `None` when there is no gap, the LP fails or the
/// enumeration gives up.
fn within_gap(m: &Model, columns: &[Pattern], cost: f64) -> Option<Vec<Pattern>> {
    let master = Master::new(m, columns)?;
    let gap = cost - master.value();
    if gap <= 1e-9 * cost {
        return None;
    }
    let (pi, sigma) = master.duals();
    pack_whole::within(m, &pi, sigma, gap, WITHIN)
}

/// The node of pool type `pt` of pool `pi` in the zone and capacity type where the column's
/// pods (as many as remain and fit there) are most, then cheapest.
fn best_offer(
    ctx: &Ctx,
    st: &State,
    pi: usize,
    pt: usize,
    counts: &[u32],
    members: &[Vec<usize>],
    swaps: &Swaps,
) -> Option<(Fill, Vec<Moved>)> {
    let mut best: Option<(u32, Fill, Vec<Moved>)> = None;
    for &(zone, cap, price) in &st.offers[pi][pt] {
        if cap == CapacityType::Reserved {
            continue;
        }
        let at = Offer { pi, pt, zone, cap, price };
        let Some((pods, f, used)) = fill(ctx, st, at, counts, members, swaps) else { continue };
        if best.as_ref().is_none_or(|(n, b, _)| pods > *n || (pods == *n && price < b.at.price)) {
            best = Some((pods, f, used));
        }
    }
    best.map(|(_, f, used)| (f, used))
}

/// The column's pods at `at`, from the member groups that may run there, and in the places
/// the LP moves to other groups ([`Swaps`]), from theirs; and the pods so moved.
pub(super) fn fill(
    ctx: &Ctx,
    st: &State,
    at: Offer,
    counts: &[u32],
    members: &[Vec<usize>],
    swaps: &Swaps,
) -> Option<(u32, Fill, Vec<Moved>)> {
    let pool_type = &ctx.views[at.pi].types[at.pt];
    let mut free = pool_type.alloc.clone();
    let mut excl = ExclCounts::new(ctx.keys.len());
    let mut takes = Vec::new();
    let mut pods = 0;
    let mut used = Vec::new();
    for (g, &want) in counts.iter().enumerate() {
        let mut need = want;
        let own = members[g].iter().map(|&gi| (gi, None));
        let moved =
            swaps.takers(g).iter().flat_map(|&(r, left)| members[r].iter().map(move |&gi| (gi, Some((r, left)))));
        for (gi, by) in own.chain(moved) {
            if need == 0 {
                break;
            }
            let h = &st.groups[gi];
            // A group may come up again as another's replacer: what this node took is not left.
            let at_i = takes.iter().position(|(t, _)| *t == gi);
            let left = st.rem[gi] - at_i.map_or(0, |i| takes[i].1);
            if left == 0 || h.colocate {
                continue;
            }
            let Some(fit) = &st.table[at.pi][gi] else { continue };
            if fit.alt_for(at.pt, at.zone, at.cap).is_none() {
                continue;
            }
            let moved_already =
                |r: usize| used.iter().filter(|u: &&Moved| u.0 == g && u.1 == r).map(|u| u.2).sum::<u32>();
            let may = by.map_or(u32::MAX, |(r, left)| left.saturating_sub(moved_already(r)));
            let n = fit_count(&free, &h.requests).min(excl.room(&h.roles)).min(left).min(need).min(may);
            if n == 0 {
                continue;
            }
            if let Some((r, _)) = by {
                used.push((g, r, n));
            }
            free.sub_times(&h.requests, n as i64);
            excl.add(&h.roles, n);
            match at_i {
                Some(i) => takes[i].1 += n,
                None => takes.push((gi, n)),
            }
            need -= n;
            pods += n;
        }
    }
    if takes.is_empty() {
        return None;
    }
    let requests = &pool_type.alloc - &free;
    Some((pods, Fill { at, takes, value: 0.0, requests }, used))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::catalog::ZONE;
    use crate::scheduling::groups;
    use crate::scheduling::mix::{self, Mix};
    use crate::scheduling::requirements::{Requirements, ValueSet};

    fn generic(n: usize) -> Vec<Group> {
        groups::group(&mix::pods(Mix::Generic, n, 1))
    }

    #[test]
    fn every_free_batch_is_rounded_whole_below_the_size_rounded_down() {
        assert_eq!(rounding(&generic(12), 0), Some(Rounding::Whole));
        assert_eq!(rounding(&generic(ROUND_PODS - 1), 0), Some(Rounding::Whole));
        assert_eq!(rounding(&generic(ROUND_PODS), 0), Some(Rounding::Floor));
    }

    #[test]
    fn a_batch_with_a_group_held_to_a_zone_is_rounded_only_when_large() {
        let pin = |mut gs: Vec<Group>| {
            let mut zone = Requirements::new();
            zone.add(ZONE, ValueSet::one("zone-a"));
            gs[0].pinned = zone;
            gs
        };
        assert_eq!(rounding(&pin(generic(500)), 0), None);
        assert_eq!(rounding(&pin(generic(ROUND_PODS)), 0), Some(Rounding::Zoned { passes: pack_zoned::PASSES }));
    }

    #[test]
    fn the_zoned_rounding_in_passes_is_also_tried_as_a_single_floor() {
        let passes = Rounding::Zoned { passes: pack_zoned::PASSES };
        assert_eq!(passes.tries(), vec![passes, Rounding::Zoned { passes: 1 }]);
        assert_eq!(Rounding::Zoned { passes: 1 }.tries(), vec![Rounding::Zoned { passes: 1 }]);
        assert_eq!(Rounding::Floor.tries(), vec![Rounding::Floor]);
    }

    #[test]
    fn with_swaps_a_smaller_pod_takes_a_larger_ones_spare_place_in_the_columns() {
        use crate::scheduling::bound_model::{Demand, Kind};
        // 0: [800, 100], 1: [900, 100], 2: [100, 900]; one node of the kind holds 1 and 2 together.
        let demand =
            |cpu: i64, memory: i64, pods: u32| Demand { pods, requests: vec![cpu, memory], per_node: u32::MAX };
        let m = Model {
            dims: vec!["cpu".to_string(), "memory".to_string()],
            groups: vec![demand(800, 100, 1), demand(900, 100, 1), demand(100, 900, 2)],
            kinds: vec![Kind {
                name: "k".to_string(),
                alloc: vec![1000, 1000],
                price: 1.0,
                holds: vec![true; 3],
                zone: 0,
            }],
            shared: Vec::new(),
            zoned: Vec::new(),
            min_nodes: 0.0,
            left_out: 0,
        };
        let columns = vec![(0, vec![0, 1, 1])];
        // Two such nodes for group 2's pods leave a place of group 1 spare; without the swap, 0
        // needs a node of its own.
        let without = cover(&m, &columns, false, false).unwrap();
        assert!((without.cost - 3.0).abs() < 1e-9, "{}", without.cost);
        assert!(without.swaps.takers(1).is_empty());
        let with = cover(&m, &columns, false, true).unwrap();
        assert!((with.cost - 2.0).abs() < 1e-9, "{}", with.cost);
        assert!((with.x[0] - 2.0).abs() < 1e-9);
        assert_eq!(with.swaps.takers(1), &[(0, 1)]);
    }
}
