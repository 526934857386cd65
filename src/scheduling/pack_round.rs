//! Rounding the configuration LP: column generation over every kind the pools offer for the
//! groups left, the LP's primal (fractional node counts per column) over the columns it found,
//! and each column's whole nodes opened, in the zone and capacity type that holds most of its
//! pods for least; the packer then places what is left.
//!
//! The packer's own fills choose one node at a time at given values, so a mix of node kinds
//! that only pays as a whole (the LP's optimum) is out of its reach; the LP's rounding is not.

use microlp::{ComparisonOp, OptimizationDirection, Problem, SolveOutcome};

use super::bound_columns::{self, Budget, Pattern};
use super::bound_model::Model;
use super::groups::{ExclCounts, Group};
use super::pack::{Fill, Offer, State};
use super::pack_commit;
use super::pack_price::{self, LP_GROUPS};
use super::solve::{Ctx, fit_count};

/// Column generation's work for a rounding: fewer rounds than the bound's, as a column it
/// misses costs the plan a little, not the bound's validity.
const BUDGET: Budget = Budget { rounds: 20, nodes: 500 };

/// Whether the rounding is tried for the groups left at `level`: when none is held to a zone, to
/// a node of its own pods, or apart from other pods. The LP knows nothing of zones and only a
/// relaxation of the exclusions; on groups free of both, its columns are nodes the packer can
/// open as they are. On the Karpenter mix, whose groups are not, the rounded plans cost 7–11 %
/// more than the re-packs' at 20 to 10,000 pods.
pub(super) fn applies(groups: &[Group], level: usize) -> bool {
    let left = || groups.iter().filter(|g| !g.pods.is_empty() && level < g.levels.len());
    left().map(|g| g.pods.len()).sum::<usize>() >= ROUND_PODS
        && left().all(|g| g.roles.is_empty() && !g.colocate && g.pinned.is_empty())
}

/// Fewest pods the rounding is tried for: rounding down loses up to a node per column, which
/// only a batch of many nodes per column makes small (at 12 and 100 generic pods the rounded
/// plans cost more than the re-packs', at 1,000 and 10,000 less).
pub const ROUND_PODS: usize = 1_000;

/// Opens the whole nodes of the rounded LP for the groups' remaining `demand`, column
/// generation starting from `seeds` (the nodes earlier packings opened); returns the pods placed.
pub(super) fn open(ctx: &mut Ctx, st: &mut State, demand: &[u32], seeds: &[pack_price::Pattern]) -> u64 {
    let groups: Vec<usize> = (0..demand.len()).filter(|&gi| demand[gi] > 0).collect();
    let kinds: Vec<(usize, usize)> = (0..ctx.views.len())
        .flat_map(|pi| (0..ctx.views[pi].types.len()).map(move |pt| (pi, pt)))
        .filter(|&(pi, pt)| {
            st.type_price[pi][pt].is_finite()
                && groups.iter().any(|&gi| st.table[pi][gi].as_ref().is_some_and(|f| f.any_type(pt)))
        })
        .collect();
    let (classes, index) = pack_price::classes(st, &groups, demand.len());
    let (m, target) = pack_price::model(ctx, st, demand, &kinds, &classes);
    if m.groups.len() > LP_GROUPS || kinds.is_empty() {
        return 0;
    }
    // The earlier packings' nodes as the first columns: column generation starts near their
    // cost instead of from one greedy fill per type.
    let start = pack_price::columns(&m, seeds, &kinds, &index, &target);
    let Some((_, columns)) = bound_columns::generate(&m, BUDGET, &start) else { return 0 };
    let Some(counts) = primal(&m, &columns) else { return 0 };
    // The packer's groups behind each of the model's.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); m.groups.len()];
    for &gi in &groups {
        members[target[index[gi]]].push(gi);
    }
    let mut order: Vec<(u32, usize)> =
        counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(c, n)| (*n, c)).collect();
    order.sort_by(|a, b| b.cmp(a));
    let mut placed = 0;
    for (nodes, c) in order {
        let (k, counts) = &columns[c];
        let (pi, pt) = kinds[*k];
        for _ in 0..nodes {
            let Some(f) = best_offer(ctx, st, pi, pt, counts, &members) else { break };
            let (n, _) = pack_commit::commit(ctx, st, &f, 1);
            if n == 0 {
                break;
            }
            placed += n;
        }
    }
    placed
}

/// Whole nodes per column of the LP that covers the demand with `columns` (and each group's
/// cheapest node of it alone) at least cost.
fn primal(m: &Model, columns: &[Pattern]) -> Option<Vec<u32>> {
    let mut p = Problem::new(OptimizationDirection::Minimize);
    let xs: Vec<_> = columns.iter().map(|(k, _)| p.add_var(m.kinds[*k].price, (0.0, f64::INFINITY))).collect();
    for (g, d) in m.groups.iter().enumerate() {
        let mut row: Vec<_> =
            columns.iter().zip(&xs).filter(|((_, c), _)| c[g] > 0).map(|((_, c), x)| (*x, c[g] as f64)).collect();
        let per_pod = |k: usize| m.kinds[k].price / m.most(g, k) as f64;
        let k = (0..m.kinds.len()).filter(|&k| m.most(g, k) > 0).min_by(|&a, &b| per_pod(a).total_cmp(&per_pod(b)))?;
        row.push((p.add_var(m.kinds[k].price, (0.0, f64::INFINITY)), m.most(g, k) as f64));
        p.add_constraint(row, ComparisonOp::Ge, d.pods as f64);
    }
    let sol = match p.solve().ok()? {
        SolveOutcome::Solution(s) => s,
        SolveOutcome::Interrupted(_) => return None,
    };
    Some(xs.iter().map(|x| (sol[*x] + 1e-6).floor().max(0.0) as u32).collect())
}

/// The node of pool type `pt` of pool `pi` in the zone and capacity type where the column's
/// pods (as many as remain and fit there) are most, then cheapest.
fn best_offer(ctx: &Ctx, st: &State, pi: usize, pt: usize, counts: &[u32], members: &[Vec<usize>]) -> Option<Fill> {
    let mut best: Option<(u32, Fill)> = None;
    for &(zone, cap, price) in &st.offers[pi][pt] {
        if cap == super::catalog::CapacityType::Reserved {
            continue;
        }
        let at = Offer { pi, pt, zone, cap, price };
        let Some((pods, f)) = fill(ctx, st, at, counts, members) else { continue };
        if best.as_ref().is_none_or(|(n, b)| pods > *n || (pods == *n && price < b.at.price)) {
            best = Some((pods, f));
        }
    }
    best.map(|b| b.1)
}

/// The column's pods at `at`, from the member groups that may run there.
fn fill(ctx: &Ctx, st: &State, at: Offer, counts: &[u32], members: &[Vec<usize>]) -> Option<(u32, Fill)> {
    let pool_type = &ctx.views[at.pi].types[at.pt];
    let mut free = pool_type.alloc.clone();
    let mut excl = ExclCounts::new(ctx.keys.len());
    let mut takes = Vec::new();
    let mut pods = 0;
    for (g, &want) in counts.iter().enumerate() {
        let mut need = want;
        for &gi in &members[g] {
            if need == 0 {
                break;
            }
            let h = &st.groups[gi];
            if st.rem[gi] == 0 || h.colocate {
                continue;
            }
            let Some(fit) = &st.table[at.pi][gi] else { continue };
            if fit.alt_for(at.pt, at.zone, at.cap).is_none() {
                continue;
            }
            let n = fit_count(&free, &h.requests).min(excl.room(&h.roles)).min(st.rem[gi]).min(need);
            if n == 0 {
                continue;
            }
            free.sub_times(&h.requests, n as i64);
            excl.add(&h.roles, n);
            takes.push((gi, n));
            need -= n;
            pods += n;
        }
    }
    if takes.is_empty() {
        return None;
    }
    let requests = &pool_type.alloc - &free;
    Some((pods, Fill { at, takes, value: 0.0, requests }))
}
