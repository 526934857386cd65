//! Consolidation quality: disruption decisions taken pass after pass over the synthetic cluster
//! of [`super::consolidation`], each applied to it, until a pass finds nothing; the savings found
//! are compared with the best possible repack of all the cluster's pods onto new nodes.
//!
//! ```text
//! cluster ─► disruption::plan ─► apply: targets go, replacements join as Ready nodes, the
//!    ▲                                  targets' pods go pending and provisioning binds them
//!    └──────────────── next pass (an hour later) ◄──┘
//! ```
//!
//! Budgets are set to 100 % so the number of passes measures the search, not budget pacing.
//! The best repack is the exact optimum when it answers (few pod shapes), otherwise the
//! configuration bound, a lower bound on any packing's cost: found ÷ (cost before − bound) is
//! then a lower bound on the true ratio.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::capacity::wall;
use crate::cloud::provider::{Instance, InstanceState, tags};
use crate::cluster::model::{Phase, Snapshot};
use crate::disruption::{self, Command, Request};
use crate::policy::nodepool::BudgetNodes;
use crate::provisioning::{self, Launch, POOL_HASH_TAG};
use crate::rules::Rules;
use crate::scheduling::bound_columns::{self, Budget};
use crate::scheduling::catalog::Catalog;
use crate::scheduling::exact::{self, Limits as ExactLimits};
use crate::scheduling::{Input, Strategy, bound, builtin, solve};

use super::consolidation::{cluster_of, node_of};

/// One pass: the decision taken and what it saved.
#[derive(Debug, Clone, Serialize)]
pub struct Pass {
    pub reason: String,
    pub nodes_removed: usize,
    pub replacements: usize,
    pub savings_per_hour: f64,
    pub decide_ms: f64,
    /// Nodes provisioning launched when the moved pods were bound (0 when the decision's plan
    /// held); counted in the cluster's cost.
    pub extra_launches: usize,
}

/// All passes and the comparison with the best repack.
#[derive(Debug, Clone, Serialize)]
pub struct Quality {
    pub nodes: usize,
    pub pods: usize,
    pub passes: Vec<Pass>,
    /// A pass found nothing before the pass limit.
    pub converged: bool,
    pub nodes_after: usize,
    pub cost_before: f64,
    pub cost_after: f64,
    pub found_savings: f64,
    /// The exact search was asked for.
    pub exact: bool,
    /// Cheapest packing of all pods onto new nodes (exact search), when it answered.
    pub optimum: Option<f64>,
    /// The configuration LP bound on any such packing.
    pub bound: Option<f64>,
    /// `cost_before` less the optimum, or else less the bound (an upper bound on what any
    /// decision could save).
    pub best_savings: Option<f64>,
    /// The scheduler's own packing of all pods onto new nodes: an achievable repack, so the
    /// optimum is at most this.
    pub scheduler_repack: Option<f64>,
    /// `found_savings ÷ best_savings`.
    pub ratio: Option<f64>,
    /// `found_savings ÷ (cost_before − scheduler_repack)`: the true ratio is at most this.
    pub ratio_at_most: Option<f64>,
    /// The ratio is computed from the bound, so the true ratio is at least this.
    pub ratio_is_lower_bound: bool,
    /// Pods without a node after a pass (0 unless a decision was wrong).
    pub unplaced: usize,
}

/// What the quality run is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub nodes: usize,
    pub pods_per_node: usize,
    pub seed: u64,
    pub templates: usize,
    pub max_passes: usize,
    /// Also search for the exact optimum (small clusters with few templates only).
    pub exact: bool,
}

fn round(x: f64) -> f64 {
    super::round(x, 4)
}

fn cost(instances: &[Instance]) -> f64 {
    instances.iter().map(|i| i.price).sum()
}

/// Runs decisions until one finds nothing (or `max_passes`), applying each to the cluster.
pub fn run(o: &Options) -> Quality {
    replay(o).1
}

/// [`run`], also returning the cluster as the last pass left it.
pub(crate) fn replay(o: &Options) -> (Snapshot, Quality) {
    let (mut snapshot, mut instances, mut rules) = cluster_of(o.nodes, o.pods_per_node, o.seed, o.templates);
    for r in &mut rules.pool_rules {
        for b in &mut r.budgets {
            b.nodes = BudgetNodes::Percent(100);
        }
    }
    let rules = Arc::new(rules);
    let catalog = builtin::catalog();
    let cost_before = cost(&instances);
    let (optimum, bound, repack) = best_repack(&snapshot, &rules, &catalog, o.exact);
    let mut now = Duration::from_secs(1_767_592_800);
    let (mut passes, mut converged, mut unplaced) = (Vec::new(), false, 0);
    while passes.len() < o.max_passes {
        let view =
            provisioning::Request { snapshot: &snapshot, instances: &instances, rules: &rules, catalog: &catalog };
        let started = Instant::now();
        let plan = disruption::plan(Request { view, now, wall: wall(now) });
        let decide_ms = started.elapsed().as_secs_f64() * 1000.0;
        let Some(cmd) = plan.commands.into_iter().next() else {
            converged = true;
            break;
        };
        let (extra, left) = apply(&mut snapshot, &mut instances, &cmd, &rules, &catalog, now, passes.len());
        passes.push(Pass {
            reason: cmd.reason.label().to_string(),
            nodes_removed: cmd.targets.len(),
            replacements: cmd.replacements.len(),
            savings_per_hour: round(cmd.savings),
            decide_ms: super::round(decide_ms, 1),
            extra_launches: extra,
        });
        unplaced = left;
        if left > 0 {
            break;
        }
        now += Duration::from_secs(3600);
    }
    let cost_after = cost(&instances);
    let found = cost_before - cost_after;
    let best_savings = optimum.or(bound).map(|b| cost_before - b);
    let q = Quality {
        nodes: o.nodes,
        pods: snapshot.pods.len(),
        passes,
        converged,
        nodes_after: snapshot.nodes.len(),
        cost_before: round(cost_before),
        cost_after: round(cost_after),
        found_savings: round(found),
        exact: o.exact,
        optimum: optimum.map(round),
        bound: bound.map(round),
        best_savings: best_savings.map(round),
        scheduler_repack: repack.map(round),
        ratio: best_savings.filter(|b| *b > 1e-9).map(|b| round(found / b)),
        ratio_at_most: repack.map(|r| cost_before - r).filter(|b| *b > 1e-9).map(|b| round(found / b)),
        ratio_is_lower_bound: optimum.is_none(),
        unplaced,
    };
    (snapshot, q)
}

/// The exact optimum (when asked and small enough), the configuration bound and the scheduler's
/// packing (when it places every pod) of every pod of the cluster onto new nodes of the pools
/// the decisions may launch in.
pub fn best_repack(
    snapshot: &Snapshot,
    rules: &Rules,
    catalog: &Catalog,
    exact: bool,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let input = Input {
        pods: snapshot.pods.iter().filter(|p| !p.is_node_bound()).map(|p| p.spec.clone()).collect(),
        nodes: Vec::new(),
        daemonsets: snapshot.daemonsets.clone(),
        pools: provisioning::dynamic_pools(rules),
        catalog,
        cluster_limits: rules.cluster.limits.clone(),
        strategy: Strategy::CostOptimal,
    };
    let model = bound::Model::of(&input);
    let packed = solve(&input);
    let repack = packed.unschedulable.is_empty().then(|| packed.cost_per_hour());
    if model.left_out > 0 {
        return (None, None, repack);
    }
    let configuration = bound_columns::configuration_bound(&model, Budget::default()).map(|c| c.bound);
    let optimum = if exact { exact::optimum(&model, ExactLimits::default()).map(|o| o.cost) } else { None };
    (optimum, configuration, repack)
}

/// Applies `cmd` to the cluster: its targets go, its replacements join as Ready nodes, and the
/// targets' pods go pending and are bound where provisioning places them (launching more nodes
/// if it must). Returns the extra launches and the pods left without a node.
fn apply(
    snapshot: &mut Snapshot,
    instances: &mut Vec<Instance>,
    cmd: &Command,
    rules: &Rules,
    catalog: &Catalog,
    now: Duration,
    pass: usize,
) -> (usize, usize) {
    let gone: HashSet<&str> = cmd.targets.iter().map(|t| t.node.as_str()).collect();
    let gone_instances: HashSet<&str> = cmd.targets.iter().map(|t| t.instance.as_str()).collect();
    snapshot.nodes.retain(|n| !gone.contains(n.name.as_str()));
    instances.retain(|i| !gone_instances.contains(i.id.as_str()));
    for p in snapshot.pods.iter_mut().filter(|p| p.node.as_deref().is_some_and(|n| gone.contains(n))) {
        p.node = None;
        p.phase = Phase::Pending;
        p.unschedulable = true;
    }
    let index: HashMap<String, usize> =
        snapshot.pods.iter().enumerate().map(|(i, p)| (p.spec.name.clone(), i)).collect();
    for (k, l) in cmd.replacements.iter().enumerate() {
        join(snapshot, instances, l, rules, catalog, now, format!("i-p{pass}r{k}"));
    }
    let decided =
        provisioning::provision(provisioning::Request { snapshot: &*snapshot, instances: &*instances, rules, catalog });
    let mut bindings: Vec<(&str, String)> =
        decided.nominated.iter().map(|b| (b.pod.as_str(), b.node.clone())).collect();
    for (k, l) in decided.launches.iter().enumerate() {
        let id = format!("i-p{pass}x{k}");
        join(snapshot, instances, l, rules, catalog, now, id.clone());
        bindings.extend(l.plan.pods.iter().map(|p| (p.as_str(), id.clone())));
    }
    let mut touched = HashSet::new();
    for (pod, node) in bindings {
        if let Some(&i) = index.get(pod) {
            let p = &mut snapshot.pods[i];
            p.node = Some(node.clone());
            p.phase = Phase::Running;
            p.unschedulable = false;
            touched.insert(node);
        }
    }
    for n in snapshot.nodes.iter_mut().filter(|n| touched.contains(&n.name)) {
        n.pods_changed_at = now;
    }
    (decided.launches.len(), snapshot.pending().count())
}

/// A launched node, Ready and registered, as the instance `id`.
fn join(
    snapshot: &mut Snapshot,
    instances: &mut Vec<Instance>,
    l: &Launch,
    rules: &Rules,
    catalog: &Catalog,
    now: Duration,
    id: String,
) {
    let (Some(t), Some((_, pool, _))) = (catalog.get(&l.plan.instance_type), rules.pool(&l.plan.node_pool)) else {
        return;
    };
    let instance = Instance {
        id,
        claim: l.claim.name.clone(),
        node_pool: l.plan.node_pool.clone(),
        instance_type: l.plan.instance_type.clone(),
        zone: l.plan.zone.clone(),
        capacity_type: l.plan.capacity_type,
        price: l.plan.price,
        state: InstanceState::Running,
        launched_at: now,
        tags: l
            .claim
            .tags
            .iter()
            .filter(|(k, _)| k.as_str() == POOL_HASH_TAG)
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain([(tags::NODE_POOL.to_string(), l.plan.node_pool.clone())])
            .collect(),
    };
    snapshot.nodes.push(node_of(&instance, t, pool, now));
    instances.push(instance);
}

/// The report as text, one line per pass and a summary.
pub fn text(q: &Quality) -> String {
    let mut out = format!("{} nodes, {} pods (budgets 100 %)\n", q.nodes, q.pods);
    for (i, p) in q.passes.iter().enumerate() {
        out += &format!(
            "pass {:>3}: {:<13} {:>3} node(s) removed, {} replacement(s), saving ${:.4}/h, decided in {:.1} ms{}\n",
            i + 1,
            p.reason,
            p.nodes_removed,
            p.replacements,
            p.savings_per_hour,
            p.decide_ms,
            if p.extra_launches > 0 { format!(", {} extra launch(es)", p.extra_launches) } else { String::new() }
        );
    }
    let state = if q.converged { "converged" } else { "stopped at the pass limit" };
    out += &format!(
        "{} pass(es), {state}; {} nodes left; cost ${:.4}/h → ${:.4}/h, found ${:.4}/h\n",
        q.passes.len(),
        q.nodes_after,
        q.cost_before,
        q.cost_after,
        q.found_savings
    );
    let best = match (q.optimum, q.bound) {
        (Some(o), _) => format!("best repack (exact optimum) ${o:.4}/h"),
        (None, Some(b)) => {
            let why = if q.exact { "; exact search did not answer" } else { "" };
            format!("best repack ≥ ${b:.4}/h (configuration bound{why})")
        }
        _ => "best repack: not computed".to_string(),
    };
    out += &best;
    if let (Some(s), Some(r)) = (q.best_savings, q.ratio) {
        let at_least = if q.ratio_is_lower_bound { "≥ " } else { "" };
        out += &format!("; best possible savings ${s:.4}/h; found ÷ best {at_least}{:.1} %", r * 100.0);
    }
    if let (Some(p), Some(r)) = (q.scheduler_repack, q.ratio_at_most) {
        out += &format!("\nthe scheduler repacks all pods for ${p:.4}/h, so found ÷ best ≤ {:.1} %", r * 100.0);
    }
    if q.unplaced > 0 {
        out += &format!("\n{} pod(s) left without a node", q.unplaced);
    }
    out
}

#[cfg(test)]
#[path = "consolidation_quality_tests.rs"]
mod tests;
