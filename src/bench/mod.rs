//! Benchmarks run from the command line, printing what they measured.

pub mod board;
pub mod consolidation;
pub mod consolidation_quality;
pub mod fleet;
pub mod gitops;
pub mod healthz;
pub mod memory;
pub mod provisioning;
pub mod simulate;
pub mod state_store;
pub mod synthetic;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::scheduling::bound_columns::{self, Budget};
use crate::scheduling::catalog::Catalog;
use crate::scheduling::exact::{self, Limits as ExactLimits};
use crate::scheduling::mix::{self, Mix};
use crate::scheduling::pool::{Limits, PoolSpec};
use crate::scheduling::{Input, Strategy, bound, bound_assign, bound_zoned, solve};

/// One scheduling benchmark run.
#[derive(Debug, Clone, Serialize)]
pub struct SchedulingResult {
    pub pods: usize,
    pub instance_types: usize,
    pub solve_ms: f64,
    pub pods_per_sec: f64,
    pub nodes: usize,
    pub cost_per_hour: f64,
    pub lower_bound_per_hour: f64,
    pub cost_ratio: f64,
    pub ffd_cost_per_hour: f64,
    pub ffd_ratio: f64,
    pub unschedulable: usize,
    /// Nodes and solve time of the baseline, for comparison.
    pub ffd_nodes: usize,
    pub ffd_solve_ms: f64,
    pub ffd_unschedulable: usize,
    /// The assignment LP bound (`None`: too large to solve).
    pub assignment_bound_per_hour: Option<f64>,
    /// The configuration LP bound (Farley's when column generation stopped early).
    pub configuration_bound_per_hour: Option<f64>,
    /// Column generation proved the configuration LP optimum.
    pub configuration_proven: bool,
    /// The last restricted master's value: the configuration LP's optimum lies between the
    /// bound and this, so when they differ it says how much column generation left open.
    pub configuration_master_per_hour: Option<f64>,
    pub configuration_ratio: Option<f64>,
    /// The configuration LP bound of the zoned model, where zone spreads put their share in
    /// every zone (`None`: no zone spread applies); valid for plans that keep each spread even
    /// over every pod it counts, as the packer's do.
    pub zoned_bound_per_hour: Option<f64>,
    pub zoned_proven: bool,
    /// The zoned LP's last restricted master: its optimum is at most this.
    pub zoned_master_per_hour: Option<f64>,
    pub zoned_ratio: Option<f64>,
    /// The largest of the LP bounds, all valid (the resource LP only when every pod is
    /// placed: it counts the pods nothing can hold too).
    pub best_bound_per_hour: f64,
    pub best_ratio: Option<f64>,
    /// Time to compute the models and their LP bounds.
    pub bounds_ms: f64,
    /// The cheapest packing of the model, when asked for and small enough.
    pub optimum_per_hour: Option<f64>,
    pub optimum_ratio: Option<f64>,
    /// Pods no node kind can hold, left out of the model's bounds.
    pub left_out: u32,
    /// Peak resident memory of the process while the cost-optimal solver ran, in MB (the
    /// pods' memory included; `None` where the peak cannot be read and reset).
    pub solve_peak_rss_mb: Option<f64>,
    /// The same while the baseline ran (the cost-optimal plan still held).
    pub ffd_peak_rss_mb: Option<f64>,
    /// The same while the lower bounds were computed.
    pub bounds_peak_rss_mb: Option<f64>,
}

/// How far `--exact` searches: ten times the default, as a benchmark may take seconds.
const EXACT: ExactLimits = ExactLimits { states: 2_000_000, configs: 50_000_000 };

/// What the scheduling benchmark computes besides the two packings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extras {
    /// Also search for the exact optimum (small instances only).
    pub exact: bool,
    /// Also compute the zoned configuration LP bound, where zone spreads apply.
    pub zoned: bool,
}

/// The peak resident memory of this process since the last call, in MB, then resets the peak
/// to the current size so the next call measures the next phase. Linux only (`VmHWM` of
/// `/proc/self/status`, reset by writing 5 to `/proc/self/clear_refs`); `None` elsewhere or
/// when either file cannot be used.
#[cfg(target_os = "linux")]
fn take_peak_rss_mb() -> Option<f64> {
    let peak = status_mib("VmHWM:")?;
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    Some(round(peak, 1))
}

#[cfg(not(target_os = "linux"))]
fn take_peak_rss_mb() -> Option<f64> {
    None
}

/// A memory field of `/proc/self/status` (`VmRSS:`, `VmHWM:` …) in MiB; `None` where that file
/// cannot be read.
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 =
        status.lines().find_map(|l| l.strip_prefix(field))?.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib / 1024.0)
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Solves `n` pods of `mix` against `catalog` with one unconstrained on-demand NodePool, with
/// the cost-optimal strategy and with the Karpenter-style baseline, and computes the bounds.
pub fn scheduling(catalog: &Catalog, n: usize, which: Mix, seed: u64, extras: Extras) -> SchedulingResult {
    let pods = mix::pods(which, n, seed);
    let mut input = Input {
        pods,
        nodes: Vec::new(),
        daemonsets: Vec::new(),
        pools: vec![PoolSpec::named("default")],
        catalog,
        cluster_limits: Limits::default(),
        strategy: Strategy::CostOptimal,
    };
    // The cost-optimal solver runs first, from a reset peak, so its memory is its own.
    take_peak_rss_mb();
    let started = Instant::now();
    let plan = solve(&input);
    let solve_ms = started.elapsed().as_secs_f64() * 1000.0;
    let solve_peak_rss_mb = take_peak_rss_mb();
    input.strategy = Strategy::FirstFitDecreasing;
    let started = Instant::now();
    let ffd = solve(&input);
    let ffd_ms = started.elapsed().as_secs_f64() * 1000.0;
    let ffd_peak_rss_mb = take_peak_rss_mb();
    let lower = bound::lower_bound(&input).unwrap_or(0.0);
    let cost = plan.cost_per_hour();
    let ratio = |c: f64| if lower > 0.0 { round(c / lower, 4) } else { 0.0 };
    let started = Instant::now();
    let model = bound::Model::of(&input);
    // Alike shared sets merged: fewer groups for the LPs, still a lower bound.
    let relaxed = model.merged();
    let assignment = bound_assign::assignment_bound(&relaxed, Duration::from_secs(60));
    let configuration = bound_columns::configuration_bound(&relaxed, Budget::default());
    // The zoned LP starts from the plan's nodes: a cover near its optimum.
    let zoned = extras.zoned.then(|| bound_zoned::zoned(&input)).flatten().map(|z| z.merged()).and_then(|z| {
        let start = z.columns(&plan, &input);
        bound_columns::generate(&z.model, Budget { room: true, choices: true, ..Budget::default() }, &start)
            .map(|(c, _)| c)
    });
    let bounds_ms = started.elapsed().as_secs_f64() * 1000.0;
    let bounds_peak_rss_mb = take_peak_rss_mb();
    // The plan is a packing of the model, so a bound that meets its cost proves it optimal (up
    // to the share column generation's pricing may leave out, twice over for rounding).
    let complete = plan.unschedulable.is_empty() && model.left_out == 0;
    let resource = if complete { lower } else { 0.0 };
    let best_bound = [assignment, configuration.as_ref().map(|c| c.bound), zoned.as_ref().map(|c| c.bound)]
        .into_iter()
        .flatten()
        .fold(resource, f64::max);
    let optimum = if !extras.exact {
        None
    } else if complete && best_bound >= cost * (1.0 - 2.0 * bound_columns::SLACK) {
        Some(cost)
    } else {
        exact::optimum(&model, EXACT).map(|o| o.cost)
    };
    let over = |b: f64| (b > 0.0).then(|| round(cost / b, 4));
    SchedulingResult {
        pods: n,
        instance_types: catalog.types.len(),
        solve_ms: round(solve_ms, 1),
        pods_per_sec: round(n as f64 / (solve_ms / 1000.0).max(1e-9), 0),
        nodes: plan.claims.len(),
        cost_per_hour: round(cost, 4),
        lower_bound_per_hour: round(lower, 4),
        cost_ratio: ratio(cost),
        ffd_cost_per_hour: round(ffd.cost_per_hour(), 4),
        ffd_ratio: ratio(ffd.cost_per_hour()),
        unschedulable: plan.unschedulable.len(),
        ffd_nodes: ffd.claims.len(),
        ffd_solve_ms: round(ffd_ms, 1),
        ffd_unschedulable: ffd.unschedulable.len(),
        assignment_bound_per_hour: assignment.map(|b| round(b, 4)),
        configuration_bound_per_hour: configuration.as_ref().map(|c| round(c.bound, 4)),
        configuration_proven: configuration.as_ref().is_some_and(|c| c.proven),
        configuration_master_per_hour: configuration.as_ref().map(|c| round(c.master, 4)),
        configuration_ratio: configuration.as_ref().and_then(|c| over(c.bound)),
        zoned_bound_per_hour: zoned.as_ref().map(|c| round(c.bound, 4)),
        zoned_proven: zoned.as_ref().is_some_and(|c| c.proven),
        zoned_master_per_hour: zoned.as_ref().map(|c| round(c.master, 4)),
        zoned_ratio: zoned.as_ref().and_then(|c| over(c.bound)),
        best_bound_per_hour: round(best_bound, 4),
        best_ratio: over(best_bound),
        bounds_ms: round(bounds_ms, 1),
        optimum_per_hour: optimum.map(|o| round(o, 4)),
        optimum_ratio: optimum.and_then(over),
        left_out: model.left_out,
        solve_peak_rss_mb,
        ffd_peak_rss_mb,
        bounds_peak_rss_mb,
    }
}
