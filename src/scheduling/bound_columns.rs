//! The configuration LP bound (Gilmore–Gomory), by column generation.
//!
//! A column is one node: a kind and how many pods of each group it holds, fitting the kind's
//! allocatable, each group's per-node cap and each shared set's. The master LP covers every
//! group's demand with fractional nodes at least cost ([`super::bound_master`], in its dual
//! form). It starts from greedy fills of every kind.
//!
//! Pricing solves, per kind, the bounded knapsack `max Σ_g π_g·a_g` by branch and bound under a
//! node budget: first a relaxation of every kind, which rules out most; then the kinds left, most
//! promising first, with a small budget, stopping at [`BATCH`] new columns; the grid program and
//! the full budget only when that finds none; last, for the kinds still open, the integer
//! program ([`super::bound_mip`]), whose relaxation holds every dimension at once; and for the
//! few kinds still open, highest bound first, the grid program at exact units with far more
//! states ([`exact_knapsack`]), which settles medium kinds the others cannot. Column
//! generation stops when the bound is within [`GAP`] of the master after one full pricing at
//! the master's duals tries to prove it.
//!
//! In a zoned model a kind's knapsack values a pod at its group's π plus the λ of its zone
//! class's rows ([`Duals::per_zone`]); nothing else changes.
//!
//! The reported bound is Farley's: with `r = max_k (best_k + σ) ÷ price_k`, where `best_k` is
//! the knapsack optimum when proven and a relaxation's value otherwise, `(π, λ, σ) ÷ r` is dual
//! feasible for every column, so `dual value ÷ max(r, 1)` is a lower bound whether or not column
//! generation converged. When every pricing proves no column has negative reduced cost, it
//! equals the LP optimum. When it did not, the bound is also taken over every point priced at
//! once ([`super::bound_cone`]).
//!
//! Pricing at the smoothed point goes on while it finds columns; a column the master already
//! has, or columns that leave the master's value where it was, count as none, so the next
//! round prices at the master's own duals instead of finding the same nodes again.

use std::collections::HashSet;

use super::bound_cone::{Priced, combined};
use super::bound_dp::{dp_knapsack, exact_knapsack};
use super::bound_knapsack::knapsack_within;
use super::bound_master::{Duals, Master};
use super::bound_mip::mip_knapsack;
use super::bound_model::Model;

/// Most new columns one round adds to the master.
pub const BATCH: usize = 24;

/// Share of a kind's price by which pricing may miss a better node: the bound loses at most
/// this share, and branch and bound stops far sooner.
pub const SLACK: f64 = 1e-7;

/// Most kinds one pricing pass gives to the grid program, most promising first. At 16, column
/// generation stopped short of the generic mix's LP optimum at 10,000 pods ($158.92 against
/// $160.00 on the built-in catalog); 64 proves it, for up to twice the time on larger models.
pub const PROGRAMS: usize = 64;

/// Most kinds one pricing pass gives to the integer program, most promising first: the
/// kinds whose relaxations are highest set the bound's ratio.
pub const INTEGERS: usize = 16;

/// Most kinds one pricing pass gives to the exact program: on the Karpenter mix a 4-vCPU type
/// whose node neither the integer program nor branch and bound could settle set Farley's ratio.
pub const EXACT: usize = 2;

/// Relative gap between the bound and the master below which column generation stops.
pub const GAP: f64 = 1e-3;

/// How much work column generation may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Rounds of pricing and re-solving the master.
    pub rounds: usize,
    /// Branch-and-bound nodes per knapsack.
    pub nodes: u64,
    /// Branch-and-bound nodes of the integer program ([`mip_knapsack`]) for each kind the other
    /// pricings leave open; 0: none.
    pub integer: u64,
    /// Kinds a pricing pass may give the grid program ([`dp_knapsack`]).
    pub programs: usize,
    /// Kinds still open after every other pricing that a pass may give the exact program
    /// ([`exact_knapsack`]), highest bound first.
    pub exact: usize,
    /// Branch and bound's relaxations count a pod only as often as the room left holds it
    /// ([`knapsack_within`]). On the Karpenter mix at 10,000 pods the zoned bound rose from
    /// $74 to $95 with it (nodes of few pods had set Farley's ratio), but the zone-free bound
    /// fell from $160.52 to $159.92 on the built-in catalog (its search took another path to
    /// the same stall) and the packer's rounding made a dearer plan on the full one ($128.91
    /// against $128.42), so only the zoned bound asks for it.
    pub room: bool,
    /// The grid programs take each shared set of one pod per node as one choice among its
    /// groups, so hostname anti-affinity and spreads of max skew one add no states, and put
    /// the pod count on the grid where it binds ([`dp_knapsack`]). On the Karpenter mix at
    /// 10,000 pods the zoned bound rose from $97.07 to $102.63 with it on the full catalog and
    /// from $126.98 to $158.88 on the built-in one, but in the packer's LPs the full catalog's
    /// solve took 47 s instead of 4.2 s: the zone-free rounding does not ask for it, and the
    /// zoned one holds the programs to less `work`.
    pub choices: bool,
    /// Most state updates one grid program may take; `None`: [`dp_knapsack`]'s own.
    pub work: Option<usize>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            rounds: 60,
            nodes: 2_000,
            integer: 4_000,
            programs: PROGRAMS,
            exact: EXACT,
            room: false,
            choices: false,
            work: None,
        }
    }
}

/// The outcome of column generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Configuration {
    /// The lower bound, USD per hour.
    pub bound: f64,
    /// The last restricted master's value (not a bound unless `proven`).
    pub master: f64,
    /// No column with negative reduced cost exists: `bound` is the LP optimum.
    pub proven: bool,
    pub columns: usize,
    pub rounds: usize,
}

/// A column: a kind and its pods per group.
pub type Pattern = (usize, Vec<u32>);

/// The configuration LP bound; `None` when the solver fails.
pub fn configuration_bound(m: &Model, budget: Budget) -> Option<Configuration> {
    generate(m, budget, &[]).map(|(c, _)| c)
}

/// Column generation from `start` and one greedy fill per kind: the bound and the master's
/// columns (less the one-group column per group it starts from).
pub fn generate(m: &Model, budget: Budget, start: &[Pattern]) -> Option<(Configuration, Vec<Pattern>)> {
    if m.groups.is_empty() {
        return Some((Configuration { bound: 0.0, master: 0.0, proven: true, columns: 0, rounds: 0 }, Vec::new()));
    }
    let mut columns = seeds(m);
    columns.extend(start.iter().cloned());
    let mut known: HashSet<Pattern> = columns.iter().cloned().collect();
    let mut master = Master::new(m, &columns)?;
    let mut best = Configuration { bound: 0.0, master: 0.0, proven: false, columns: master.columns, rounds: 0 };
    // Wentges smoothing: price at a point between the duals with the best bound so far and
    // the master's; when that finds no column, price at the master's duals next.
    let mut center: Option<Duals> = None;
    let mut smooth = true;
    let mut priced: Vec<Priced> = Vec::new();
    for round in 1..=budget.rounds {
        let at = master.all_duals();
        best.master = at.value(m);
        // Close enough: one last pricing at the master's duals, with every kind's full budget.
        let closing = best.bound >= best.master * (1.0 - GAP);
        let duals = match (&center, smooth && !closing) {
            (Some(c), true) => c.halfway(&at),
            _ => at.clone(),
        };
        let at_master = center.is_none() || !smooth || closing;
        let pass = price(m, &duals, &at, budget, closing, &known);
        // Farley: the duals ÷ max(ratio, 1) are dual feasible for every column.
        let bound = duals.value(m) / pass.ratio.max(1.0) * (1.0 - 1e-9);
        priced.push(Priced { value: duals.value(m), ratios: pass.ratios.clone() });
        best.rounds = round;
        if bound >= best.bound {
            best.bound = bound;
            center = Some(duals);
        }
        if pass.ratio <= 1.0 + SLACK * (1.0 + 1e-6) && at_master {
            best.proven = true;
            break;
        }
        if closing || (pass.new.is_empty() && at_master) {
            break;
        }
        let before = master.value();
        for (k, counts) in pass.new.iter().cloned() {
            master = master.add(m, k, &counts)?;
            known.insert((k, counts.clone()));
            columns.push((k, counts));
        }
        // A smoothed point whose columns leave the master where it was has stopped moving:
        // price at the master's own duals next, as when it finds none.
        smooth = !pass.new.is_empty() && master.value() < before * (1.0 - 1e-9);
        best.columns = master.columns;
    }
    // Farley's bound over every point priced, where each point's is loose on other kinds.
    if !best.proven {
        best.bound = best.bound.max(combined(&priced).unwrap_or(0.0));
    }
    Some((best, columns))
}

/// What one pricing pass found.
struct Pass {
    /// Columns of negative reduced cost at the master's duals.
    new: Vec<(usize, Vec<u32>)>,
    /// `max_k (upper_k + σ) ÷ price_k`, with `upper_k` an upper bound of kind k's knapsack.
    ratio: f64,
    /// Per kind: `(upper_k + σ) ÷ price_k`.
    ratios: Vec<f64>,
}

/// Prices every kind at `point`: a relaxation of each, then the knapsack of those it does not
/// rule out, most promising first, until [`BATCH`] columns (unless `all`); a column enters
/// when the master's duals `at` price it below its cost.
fn price(m: &Model, point: &Duals, at: &Duals, budget: Budget, all: bool, known: &HashSet<Pattern>) -> Pass {
    // A kind's values per pod are its zone class's.
    let (zoned, zoned_at) = (point.per_zone(m), at.per_zone(m));
    let values = |k: usize| zoned[m.kinds[k].zone].as_slice();
    let s = point.node;
    let need = |k: usize| m.kinds[k].price - s;
    let ratio = |k: usize, upper: f64| (upper + s) / m.kinds[k].price;
    let open = |k: usize, upper: f64| ratio(k, upper) > 1.0 + SLACK * (1.0 + 1e-6);
    let slack = |k: usize| m.kinds[k].price * SLACK;
    let mut upper: Vec<f64> =
        (0..m.kinds.len()).map(|k| knapsack_within(m, k, values(k), 0, need(k), slack(k), budget.room).upper).collect();
    let mut order: Vec<usize> = (0..m.kinds.len()).filter(|&k| open(k, upper[k])).collect();
    order.sort_by(|&a, &b| ratio(b, upper[b]).total_cmp(&ratio(a, upper[a])));
    // Only a column the master lacks and its duals price below its cost changes the master.
    let improves = |k: usize, counts: &Vec<u32>| {
        if known.contains(&(k, counts.clone())) {
            return false;
        }
        let worth: f64 = counts.iter().zip(&zoned_at[m.kinds[k].zone]).map(|(c, v)| *c as f64 * v).sum();
        worth + at.node > m.kinds[k].price * (1.0 + 1e-9) + 1e-12
    };
    // Branch and bound on a small budget; for the kinds it leaves open, the grid program (an
    // upper bound, and the optimum where its grid is exact and its node fits); then branch and
    // bound on the full budget for the kinds still open; last, the integer program for the
    // first [`INTEGERS`] of those; and when none of these finds a column, the exact program for
    // the `budget.exact` kinds still open with the highest bounds.
    let mut settled = vec![false; m.kinds.len()];
    let mut new = Vec::new();
    let (mut programs, mut integers, mut exacts) = (0, 0, 0);
    for stage in 0..5 {
        if !new.is_empty() {
            break;
        }
        if stage == 4 {
            order.sort_by(|&a, &b| ratio(b, upper[b]).total_cmp(&ratio(a, upper[a])));
        }
        for &k in &order {
            if new.len() >= BATCH && !all {
                break;
            }
            if settled[k] || !open(k, upper[k]) {
                continue;
            }
            let found = match stage {
                0 => knapsack_within(m, k, values(k), (budget.nodes / 20).max(100), need(k), slack(k), budget.room),
                1 => {
                    if programs >= budget.programs {
                        continue;
                    }
                    programs += 1;
                    let Some(found) = dp_knapsack(m, k, values(k), budget.choices, budget.work) else { continue };
                    settled[k] = found.value >= found.upper * (1.0 - 1e-12);
                    found
                }
                2 => knapsack_within(m, k, values(k), budget.nodes, need(k), slack(k), budget.room),
                3 => {
                    if budget.integer == 0 || integers >= INTEGERS {
                        continue;
                    }
                    integers += 1;
                    let Some(found) = mip_knapsack(m, k, values(k), budget.integer) else { continue };
                    found
                }
                _ => {
                    if exacts >= budget.exact {
                        break;
                    }
                    exacts += 1;
                    let Some(found) = exact_knapsack(m, k, values(k), budget.choices) else { continue };
                    settled[k] = found.value >= found.upper * (1.0 - 1e-12);
                    found
                }
            };
            upper[k] = upper[k].min(found.upper);
            if improves(k, &found.counts) {
                new.push((k, found.counts));
            }
        }
    }
    let ratios: Vec<f64> = (0..m.kinds.len()).map(|k| ratio(k, upper[k])).collect();
    let ratio = ratios.iter().copied().fold(0.0, f64::max);
    Pass { new, ratio, ratios }
}

/// One greedy fill of every kind, groups taken by their lowest price per pod over the kinds
/// per unit of the kind's allocatable they use.
fn seeds(m: &Model) -> Vec<Pattern> {
    let value: Vec<f64> = (0..m.groups.len())
        .map(|g| {
            (0..m.kinds.len())
                .filter(|&k| m.most(g, k) > 0)
                .map(|k| m.kinds[k].price / m.most(g, k) as f64)
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    let mut out = Vec::new();
    for k in 0..m.kinds.len() {
        let alloc = &m.kinds[k].alloc;
        let size = |g: usize| -> f64 {
            let r = &m.groups[g].requests;
            r.iter().zip(alloc).map(|(q, a)| *q as f64 / (*a).max(1) as f64).sum::<f64>().max(1e-12)
        };
        let mut order: Vec<usize> = (0..m.groups.len()).filter(|&g| m.most(g, k) > 0 && value[g].is_finite()).collect();
        order.sort_by(|&a, &b| (value[b] / size(b)).total_cmp(&(value[a] / size(a))));
        let mut counts = vec![0u32; m.groups.len()];
        let mut room = alloc.clone();
        let mut set_room: Vec<u32> = m.shared.iter().map(|s| s.per_node).collect();
        for g in order {
            let mut most = m.most(g, k) as i64;
            for (q, r) in m.groups[g].requests.iter().zip(&room) {
                if *q > 0 {
                    most = most.min(r / q);
                }
            }
            for (s, r) in m.shared.iter().zip(&set_room) {
                if s.groups.contains(&g) {
                    most = most.min(*r as i64);
                }
            }
            let n = most.max(0);
            counts[g] = n as u32;
            for (q, r) in m.groups[g].requests.iter().zip(room.iter_mut()) {
                *r -= q * n;
            }
            for (s, r) in m.shared.iter().zip(set_room.iter_mut()) {
                if s.groups.contains(&g) {
                    *r -= n as u32;
                }
            }
        }
        debug_assert!(m.fits(k, &counts));
        if counts.iter().filter(|c| **c > 0).count() > 1 {
            out.push((k, counts));
        }
    }
    out
}
