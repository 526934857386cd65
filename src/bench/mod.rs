//! Benchmarks run from the command line, printing what they measured.

pub mod board;
pub mod consolidation;
pub mod fleet;
pub mod gitops;
pub mod healthz;
pub mod provisioning;
pub mod simulate;
pub mod state_store;

use std::time::Instant;

use serde::Serialize;

use crate::scheduling::catalog::Catalog;
use crate::scheduling::mix::{self, Mix};
use crate::scheduling::pool::{Limits, PoolSpec};
use crate::scheduling::{Input, Strategy, bound, solve};

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
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Solves `n` pods of `mix` against `catalog` with one unconstrained on-demand NodePool, with
/// the cost-optimal strategy and with the Karpenter-style baseline.
pub fn scheduling(catalog: &Catalog, n: usize, which: Mix, seed: u64) -> SchedulingResult {
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
    let started = Instant::now();
    let plan = solve(&input);
    let solve_ms = started.elapsed().as_secs_f64() * 1000.0;
    input.strategy = Strategy::FirstFitDecreasing;
    let started = Instant::now();
    let ffd = solve(&input);
    let ffd_ms = started.elapsed().as_secs_f64() * 1000.0;
    let lower = bound::lower_bound(&input).unwrap_or(0.0);
    let cost = plan.cost_per_hour();
    let ratio = |c: f64| if lower > 0.0 { round(c / lower, 4) } else { 0.0 };
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
    }
}
