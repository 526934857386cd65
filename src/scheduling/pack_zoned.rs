//! The configuration LP's rounding where groups are held to zones. The zone-free LP merges the
//! zone-pinned copies of a shape, so its columns mix pods no one zone holds together, and each
//! zone's own offerings and prices are out of its sight. Here a kind is an instance type the
//! earlier packings' nodes use, once per zone and capacity type that offers it, and the
//! classes tell the zones apart: every column is a node that opens as it is. (Column
//! generation over every type the pools offer, in every zone, found plans under 0.5 % cheaper
//! for several times the time.) The LP is the one column generation's master solves, where a
//! pod may take the place the columns make for a larger one ([`super::pack_swap`]): its
//! columns were found for that LP, and without the swaps they cover the demand at more.
//!
//! ```text
//! earlier packings' nodes ─types─► (type, zone, capacity type) kinds ┐
//! groups ─shape and zones─► classes ─────────────────────────────────┴─► column generation ─► LP ─► whole nodes
//! ```

use std::collections::HashMap;

use super::bound_columns::{self, Budget, Pattern as Column};
use super::bound_model::Model;
use super::catalog::CapacityType;
use super::pack::{Offer, State};
use super::pack_commit;
use super::pack_price::{self, Pattern, Place};
use super::pack_round::{BUDGET, Covered, cover, fill};
use super::solve::Ctx;

/// Column generation's work for the zoned rounding: the zone-free rounding's, with the finer
/// grid program (one-pod sets as choices, `Budget::choices`) held to [`ZONED_WORK`] per kind.
/// On the Karpenter mix at 10,000 pods the plan went from $126.13 to $125.53 on the full
/// catalog (solve about 5 s either way) and from $164.17 to $162.25 on the built-in one (3.3 s
/// to 6–7 s), and on Karpenter's synthetic catalog at 1,000 pods from $258.41 to $256.52. The
/// grid program without choices changed nothing.
const ZONED_BUDGET: Budget = Budget { choices: true, work: Some(ZONED_WORK), ..BUDGET };

/// Most state updates of one grid program in the zoned rounding. At the zoned bound's 200
/// million the built-in catalog's solve took 14.7 s for a plan 3 cents dearer than at 10
/// million ($162.29); at 5 million the plan cost $162.42.
const ZONED_WORK: usize = 10_000_000;

/// Column generation's work for the first LP of a zoned rounding, the one every later pass
/// rounds what it leaves of: [`ZONED_BUDGET`] with 60 rounds. On the Karpenter mix at 10,000
/// pods (full catalog, seeds 1 to 5) its 20 left the plans 1.0284 to 1.0346 times the
/// configuration bound (seed 4's LP itself at 1.033, its plan 0.16 % above it; solve 8–10 s,
/// release build); 60 took the plans to 1.0238 to 1.0288 (13–16 s), 40 took seed 4's to
/// 1.0312. With 60 here, 10 rounds for the later passes put seed 3 at 1.0301.
const FIRST_BUDGET: Budget = Budget { rounds: 60, ..ZONED_BUDGET };

/// Most merged groups the zoned LP may have: more than the zone-free one's, as each shape held
/// to a zone is a group per zone.
const ZONED_GROUPS: usize = 600;

/// Opens the whole nodes of the zoned LP's rounding for the `groups` with `demand` left, on the
/// pool types of `seeds` (the nodes earlier packings opened), column generation starting from
/// those nodes; returns the pods placed. The LP's node counts are rounded down, and the LP is
/// solved again for the pods the opened nodes leave, at most `passes` times, until a floor
/// places less than [`WHOLE_BELOW`] of them; then the integer program over the next LP's
/// columns opens the last few. The packer places what remains.
pub(super) fn open(
    ctx: &mut Ctx,
    st: &mut State,
    demand: &[u32],
    groups: &[usize],
    seeds: &[Pattern],
    passes: usize,
    memo: &mut Memo,
) -> u64 {
    let mut types: Vec<(usize, usize)> = seeds.iter().map(|(pi, pt, _)| (*pi, *pt)).collect();
    types.sort_unstable();
    types.dedup();
    let offers = offers(st, &types);
    let mut placed = 0;
    let mut demand = demand.to_vec();
    let mut how = Round::First;
    for _ in 0..passes {
        let left: Vec<usize> = groups.iter().copied().filter(|&gi| demand[gi] > 0).collect();
        let Some(n) = pass(ctx, st, &demand, &left, (&offers, seeds), how, memo) else { break };
        placed += n;
        let before: u64 = left.iter().map(|&gi| demand[gi] as u64).sum();
        how = match how {
            Round::Whole => break,
            _ if (n as f64) < WHOLE_BELOW * before as f64 => Round::Whole,
            _ => Round::Down,
        };
        for &gi in groups {
            demand[gi] = st.rem[gi];
        }
    }
    placed
}

/// Most LPs one rounding solves. On the Karpenter mix at 10,000 pods (full catalog) the first
/// LP's floor left 877 pods, which the packer placed for $10.35 where that LP had $9.60. Solved
/// again for what each floor leaves, then made whole, the plan fell from $125.53 to $125.05
/// with 10 rounds of column generation per pass after the first (solve 3.7 s to 5.5 s, release
/// build), and to $124.95 with 20 in every pass (8.7 s); on two other seeds 20
/// rounds instead of 10 took it from $127.68 to $127.49 and from $125.07 to $124.93. At 5 it cost
/// $125.08; with columns carried from pass to pass, no less.
pub(super) const PASSES: usize = 12;

/// Share of the pods left below which a floor's nodes make the next pass the integer program:
/// past that point each LP opens a few nodes for as much work as the first. Run until a floor
/// placed nothing, the passes at 2,000 pods (full catalog) went on placing 8 to 17 pods for
/// 0.5–0.9 s each; at 20 rounds per pass the solve took 7.9 s at 15 % and 6.9 s at 30 %.
const WHOLE_BELOW: f64 = 0.3;

/// How one pass makes whole nodes of its LP.
#[derive(Debug, Clone, Copy)]
enum Round {
    /// The first LP's node counts rounded down.
    First,
    /// Node counts rounded down, for what earlier passes left.
    Down,
    /// The integer program over the columns, once a floor places few of the pods left.
    Whole,
}

/// The first LP of a zoned rounding, its columns and cover, and the demand it was solved for:
/// another rounding of the same pods from the same state starts from it instead of solving it
/// again: trying the single floor as well took the solve at 10,000 pods (full catalog, 10
/// rounds per pass after the first) from 5.5 s to 8.4 s without it, to 5.8 s with it.
#[derive(Default)]
pub(super) struct Memo(Option<(Vec<u32>, Vec<Column>, Covered)>);

/// One LP of [`open`] for `demand` on `offers`, column generation starting from the nodes of
/// `seeds`, and the nodes it opens; `None` when there is no LP.
fn pass(
    ctx: &mut Ctx,
    st: &mut State,
    demand: &[u32],
    groups: &[usize],
    (offers, seeds): (&[Offer], &[Pattern]),
    how: Round,
    memo: &mut Memo,
) -> Option<u64> {
    // Groups without exclusion roles are told apart by shape and the zones they may run in.
    let (classes, index) =
        pack_price::classes_by(st, groups, demand.len(), |gi| (&st.groups[gi].requests, zones(ctx, st, gi)));
    let places: Vec<Place> = offers
        .iter()
        .map(|at| Place {
            pi: at.pi,
            pt: at.pt,
            price: at.price,
            holds: classes
                .iter()
                .map(|members| {
                    members.iter().any(|&gi| {
                        st.table[at.pi][gi].as_ref().is_some_and(|f| f.alt_for(at.pt, at.zone, at.cap).is_some())
                    })
                })
                .collect(),
        })
        .collect();
    let (m, target) = pack_price::model_of(ctx, st, demand, &places, &classes);
    if m.groups.len() > ZONED_GROUPS || places.is_empty() || groups.is_empty() {
        return None;
    }
    let (columns, Covered { x, mut swaps, .. }) = match (how, &memo.0) {
        (Round::First, Some((solved, columns, covered))) if solved == demand => (columns.clone(), covered.clone()),
        _ => {
            let start = columns(&m, offers, seeds, &index, &target);
            let budget = if matches!(how, Round::First) { FIRST_BUDGET } else { ZONED_BUDGET };
            let (_, columns) = bound_columns::generate(&m, budget, &start)?;
            // With the swaps column generation's master counts on: without them the LP over
            // the same columns cost 1.1 % more on the Karpenter mix at 10,000 pods (full
            // catalog).
            let covered = cover(&m, &columns, matches!(how, Round::Whole), true)?;
            if matches!(how, Round::First) {
                memo.0 = Some((demand.to_vec(), columns.clone(), covered.clone()));
            }
            (columns, covered)
        }
    };
    let mut nodes: Vec<(u32, usize, Vec<u32>)> = x
        .iter()
        .zip(columns)
        .map(|(v, (k, counts))| (whole_nodes(*v, how), k, counts))
        .filter(|(n, _, _)| *n > 0)
        .collect();
    nodes.sort_by(|a, b| b.cmp(a));
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); m.groups.len()];
    for &gi in groups {
        members[target[index[gi]]].push(gi);
    }
    let mut placed = 0;
    for (count, k, counts) in nodes {
        for _ in 0..count {
            let Some((_, f, used)) = fill(ctx, st, offers[k], &counts, &members, &swaps) else { break };
            let (n, _) = pack_commit::commit(ctx, st, &f, 1);
            if n == 0 {
                break;
            }
            swaps.take(&used);
            placed += n;
        }
    }
    Some(placed)
}

/// An LP value rounded down, an integer program's rounded (it is within the solver's tolerance
/// of a whole number).
fn whole_nodes(v: f64, how: Round) -> u32 {
    match how {
        Round::First | Round::Down => (v + 1e-6).floor() as u32,
        Round::Whole => v.round().max(0.0) as u32,
    }
}

/// Each pool type's offerings other than reserved ones, one per zone and capacity type.
fn offers(st: &State, types: &[(usize, usize)]) -> Vec<Offer> {
    let mut out = Vec::new();
    for &(pi, pt) in types {
        let mut here: Vec<Offer> = Vec::new();
        for &(zone, cap, price) in &st.offers[pi][pt] {
            if cap == CapacityType::Reserved {
                continue;
            }
            match here.iter_mut().find(|o| o.zone == zone && o.cap == cap) {
                Some(o) if price < o.price => o.price = price,
                Some(_) => {}
                None => here.push(Offer { pi, pt, zone, cap, price }),
            }
        }
        here.sort_by_key(|o| (o.zone, super::view::cap_index(o.cap)));
        out.extend(here);
    }
    out
}

/// The zones any pool allows group `gi` in.
fn zones(ctx: &Ctx, st: &State, gi: usize) -> Vec<bool> {
    (0..ctx.zones.len())
        .map(|z| {
            st.table.iter().any(|row| {
                row[gi].as_ref().is_some_and(|f| f.alts.iter().any(|a| a.zones.get(z).copied().unwrap_or(false)))
            })
        })
        .collect()
}

/// The zoned model's columns for the nodes of `patterns`: each in the cheapest zone and
/// capacity type whose kind holds all its pods; without repeats.
fn columns(m: &Model, offers: &[Offer], patterns: &[Pattern], index: &[usize], target: &[usize]) -> Vec<Column> {
    let mut of_type: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    for (k, o) in offers.iter().enumerate() {
        of_type.entry((o.pi, o.pt)).or_default().push(k);
    }
    pack_price::columns_by(m, patterns, index, target, |pi, pt, counts| {
        of_type
            .get(&(pi, pt))?
            .iter()
            .copied()
            .filter(|&k| m.fits(k, counts))
            .filter(|&k| counts.iter().zip(&m.kinds[k].holds).all(|(n, h)| *n == 0 || *h))
            .min_by(|a, b| offers[*a].price.total_cmp(&offers[*b].price))
    })
}
