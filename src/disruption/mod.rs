//! Disruption: which nodes to remove, and why. Pure: [`plan`] takes a snapshot, the instances,
//! the rules and the time, and returns commands in priority order; the capacity loop
//! re-validates a command after [`VALIDATION_DELAY`] and only then drains.
//!
//! ```text
//! candidates ─► drift / expiration (replace, one node)
//!            ─► emptiness (delete every empty node past consolidateAfter, within budgets)
//!            ─► consolidation: multi-node (delete or replace with one cheaper node)
//!                              then single-node (delete, or replace with a cheaper node)
//! ```
//!
//! Beyond Karpenter: the ClusterPolicy's utilization threshold (only nodes below it are
//! consolidated) and minimum node lifetime (no node with pods is disrupted younger than it).

pub mod budget;
pub mod candidate;
pub mod drain;
pub mod interrupt;
pub mod simulate;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cloud::provider::Instance;
use crate::cluster::model::{ClusterPod, Snapshot};
use crate::policy::nodepool::ConsolidationPolicy;
use crate::provisioning::{Launch, nodes};
use crate::rules::{Reason, Rules};
use crate::scheduling::catalog::Catalog;
use crate::scheduling::pool::NODE_POOL_LABEL;

use candidate::{Candidate, candidates, disrupting};
use simulate::{World, relocate};

/// How often disruption is evaluated.
pub const POLL: Duration = Duration::from_secs(10);
/// How long a decision waits before it is checked again and acted on.
pub const VALIDATION_DELAY: Duration = Duration::from_secs(15);
/// Most nodes one multi-node consolidation considers.
const MAX_MULTI: usize = 100;
/// Most single-node consolidations tried per pass.
const MAX_SINGLE: usize = 50;
/// A `Balanced` pool replaces a node only for at least this fraction of its price.
const BALANCED_SAVING: f64 = 0.2;

/// A node a command removes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub node: String,
    pub instance: String,
    pub node_pool: String,
    pub instance_type: String,
    pub price: f64,
    pub pods: usize,
}

/// One disruption decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub reason: Reason,
    pub targets: Vec<Target>,
    /// Launched (and initialized) before the targets are drained.
    pub replacements: Vec<Launch>,
    /// Price per hour saved: targets less replacements.
    pub savings: f64,
    /// Why, for people.
    pub detail: String,
}

impl Command {
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().map(|t| t.node.as_str())
    }
}

/// Everything a disruption decision is made from: what provisioning sees, and the time.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub view: crate::provisioning::Request<'a>,
    pub now: Duration,
    /// Wall-clock time for budget schedules.
    pub wall: DateTime<Utc>,
}

impl<'a> Request<'a> {
    fn snapshot(&self) -> &'a Snapshot {
        self.view.snapshot
    }
    fn instances(&self) -> &'a [Instance] {
        self.view.instances
    }
    fn rules(&self) -> &'a Rules {
        self.view.rules
    }
    fn catalog(&self) -> &'a Catalog {
        self.view.catalog
    }
}

/// The decision and the nodes kept for a stated reason.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub commands: Vec<Command>,
    /// (node, why it was not disrupted) for candidates a method wanted but could not take.
    pub kept: Vec<(String, String)>,
}

/// How many more nodes each pool may lose for a reason.
struct Budgets {
    /// pool → (total, busy)
    counts: HashMap<String, (u64, u64)>,
    taken: HashMap<String, u64>,
}

impl Budgets {
    fn new(snapshot: &Snapshot) -> Budgets {
        let mut counts: HashMap<String, (u64, u64)> = HashMap::new();
        for n in &snapshot.nodes {
            if let Some(p) = n.labels.get(NODE_POOL_LABEL) {
                let c = counts.entry(p.clone()).or_default();
                c.0 += 1;
                if disrupting(n) || !n.ready {
                    c.1 += 1;
                }
            }
        }
        Budgets { counts, taken: HashMap::new() }
    }

    fn take(&mut self, req: &Request, pool: usize, reason: Reason) -> bool {
        let rules = &req.rules().pool_rules[pool];
        let (total, busy) = self.counts.get(&rules.name).copied().unwrap_or_default();
        let taken = self.taken.entry(rules.name.clone()).or_default();
        if budget::allowed(&rules.budgets, reason, total, busy + *taken, req.wall) == 0 {
            return false;
        }
        *taken += 1;
        true
    }
}

fn target(c: &Candidate, req: &Request) -> Target {
    Target {
        node: c.node.name.clone(),
        instance: c.instance.id.clone(),
        node_pool: req.rules().pools[c.pool].name.clone(),
        instance_type: c.instance.instance_type.clone(),
        price: c.instance.price,
        pods: c.pods.len(),
    }
}

fn command(
    req: &Request,
    reason: Reason,
    chosen: &[&Candidate],
    claims: Vec<crate::scheduling::plan::NewClaim>,
    detail: String,
) -> Command {
    let targets: Vec<Target> = chosen.iter().map(|c| target(c, req)).collect();
    let replacements: Vec<Launch> = claims.into_iter().map(|c| crate::provisioning::launch(c, req.rules())).collect();
    let savings = targets.iter().map(|t| t.price).sum::<f64>() - replacements.iter().map(|l| l.plan.price).sum::<f64>();
    Command { reason, targets, replacements, savings, detail }
}

fn pods_of<'a>(chosen: &[&Candidate<'a>]) -> Vec<&'a ClusterPod> {
    chosen.iter().flat_map(|c| c.pods.iter().copied()).collect()
}

/// Decides which nodes to disrupt now.
pub fn plan(req: Request) -> Plan {
    let mut out = Plan::default();
    let all = candidates(req.snapshot(), req.instances(), req.rules(), req.now);
    let capacity = nodes::capacity(req.snapshot(), req.instances(), &req.rules().pools, req.catalog());
    let snapshot = req.snapshot();
    let displaced = snapshot
        .nodes
        .iter()
        .filter(|n| disrupting(n))
        .flat_map(|n| snapshot.pods_on(&n.name).filter(|p| !p.is_node_bound()))
        .collect();
    let world = World {
        capacity: &capacity,
        daemonsets: &snapshot.daemonsets,
        rules: req.rules(),
        catalog: req.catalog(),
        displaced,
    };
    let mut budgets = Budgets::new(req.snapshot());

    if let Some(c) = replace_stale(&req, &all, &world, &mut budgets, &mut out) {
        out.commands.push(c);
        return out;
    }
    if let Some(c) = empty(&req, &all, &mut budgets, &mut out) {
        out.commands.push(c);
        return out;
    }
    if req.snapshot().pending().next().is_some() {
        return out;
    }
    let consolidatable: Vec<&Candidate> = all.iter().filter(|c| underutilized(&req, c, &mut out)).collect();
    if let Some(c) = multi(&req, &consolidatable, &world, &mut budgets) {
        out.commands.push(c);
    } else if let Some(c) = single(&req, &consolidatable, &world, &mut budgets, &mut out) {
        out.commands.push(c);
    }
    out
}

/// Drifted and expired nodes, oldest first, replaced one at a time.
fn replace_stale(
    req: &Request,
    all: &[Candidate],
    world: &World,
    budgets: &mut Budgets,
    out: &mut Plan,
) -> Option<Command> {
    let mut stale: Vec<(&Candidate, Reason, String)> = all
        .iter()
        .filter_map(|c| {
            if let Some(d) = &c.drift {
                return Some((c, Reason::Drifted, d.clone()));
            }
            let expire = req.rules().pool_rules[c.pool].expire_after?;
            (c.age >= expire).then(|| (c, Reason::Expired, format!("older than expireAfter {}s", expire.as_secs())))
        })
        .collect();
    stale.sort_by_key(|(c, _, _)| std::cmp::Reverse(c.age));
    for (c, reason, why) in stale {
        if let Some(b) = &c.blocked {
            out.kept.push((c.node.name.clone(), format!("{}: {b}", reason.label())));
            continue;
        }
        match relocate(world, &[c.node.name.as_str()], &c.pods, None) {
            Ok(claims) if budgets.take(req, c.pool, reason) => {
                return Some(command(req, reason, &[c], claims, why));
            }
            Ok(_) => out.kept.push((
                c.node.name.clone(),
                format!(
                    "{}: disruption budget of NodePool {} is used up",
                    reason.label(),
                    req.rules().pools[c.pool].name
                ),
            )),
            Err(e) => out.kept.push((c.node.name.clone(), format!("{}: {e}", reason.label()))),
        }
    }
    None
}

/// Every empty node past its pool's consolidateAfter, within budgets.
fn empty(req: &Request, all: &[Candidate], budgets: &mut Budgets, out: &mut Plan) -> Option<Command> {
    let mut chosen = Vec::new();
    for c in all.iter().filter(|c| c.pods.is_empty()) {
        let Some(after) = req.rules().pool_rules[c.pool].consolidate_after else { continue };
        if c.idle < after {
            continue;
        }
        if c.node.do_not_disrupt() {
            out.kept.push((c.node.name.clone(), "empty: node is annotated karpenter.sh/do-not-disrupt".into()));
        } else if budgets.take(req, c.pool, Reason::Empty) {
            chosen.push(c);
        } else {
            out.kept.push((
                c.node.name.clone(),
                format!("empty: disruption budget of NodePool {} is used up", req.rules().pools[c.pool].name),
            ));
        }
    }
    (!chosen.is_empty()).then(|| {
        let idle = chosen.iter().map(|c| c.idle).min().unwrap_or_default();
        command(
            req,
            Reason::Empty,
            &chosen,
            Vec::new(),
            format!("no pods for {}s (consolidateAfter elapsed)", idle.as_secs()),
        )
    })
}

fn underutilized(req: &Request, c: &Candidate, out: &mut Plan) -> bool {
    let rules = &req.rules().pool_rules[c.pool];
    if c.pods.is_empty() || rules.consolidation == ConsolidationPolicy::WhenEmpty {
        return false;
    }
    let Some(after) = rules.consolidate_after else { return false };
    if c.idle < after {
        return false;
    }
    let cluster = &req.rules().cluster;
    if let Some(min) = cluster.min_node_lifetime
        && c.age < min
    {
        return false;
    }
    if let Some(t) = cluster.utilization_threshold
        && c.utilization >= t
    {
        return false;
    }
    if let Some(b) = &c.blocked {
        out.kept.push((c.node.name.clone(), format!("underutilized: {b}")));
        return false;
    }
    true
}

/// Cheapest to disrupt first: fewest pods, then the most expensive node.
fn by_cost<'a, 'b>(cands: &[&'b Candidate<'a>]) -> Vec<&'b Candidate<'a>> {
    let mut v = cands.to_vec();
    v.sort_by(|a, b| {
        a.pods
            .len()
            .cmp(&b.pods.len())
            .then(b.instance.price.total_cmp(&a.instance.price))
            .then(a.node.name.cmp(&b.node.name))
    });
    v
}

fn cheaper(req: &Request, chosen: &[&Candidate], claims: &[crate::scheduling::plan::NewClaim]) -> bool {
    let before: f64 = chosen.iter().map(|c| c.instance.price).sum();
    let after: f64 = claims.iter().map(|c| c.price).sum();
    let balanced = chosen.iter().any(|c| req.rules().pool_rules[c.pool].consolidation == ConsolidationPolicy::Balanced);
    let need = if balanced { before * (1.0 - BALANCED_SAVING) } else { before };
    claims.is_empty() || after < need - 1e-9
}

/// Several nodes at once: the largest prefix (by disruption cost) whose pods fit on the rest
/// with at most one new, cheaper node.
fn multi(req: &Request, cands: &[&Candidate], world: &World, budgets: &mut Budgets) -> Option<Command> {
    let mut trial = Budgets { counts: budgets.counts.clone(), taken: budgets.taken.clone() };
    let prefix: Vec<&Candidate> =
        by_cost(cands).into_iter().filter(|c| trial.take(req, c.pool, Reason::Underutilized)).take(MAX_MULTI).collect();
    if prefix.len() < 2 {
        return None;
    }
    let attempt = |k: usize| -> Option<Vec<crate::scheduling::plan::NewClaim>> {
        let chosen = &prefix[..k];
        let names: Vec<&str> = chosen.iter().map(|c| c.node.name.as_str()).collect();
        let claims = relocate(world, &names, &pods_of(chosen), Some(1)).ok()?;
        cheaper(req, chosen, &claims).then_some(claims)
    };
    let (mut lo, mut hi, mut best) = (2usize, prefix.len(), None);
    while lo <= hi {
        let mid = (lo + hi) / 2;
        match attempt(mid) {
            Some(claims) => {
                best = Some((mid, claims));
                lo = mid + 1;
            }
            None => hi = mid - 1,
        }
    }
    let (k, claims) = best?;
    for c in &prefix[..k] {
        budgets.take(req, c.pool, Reason::Underutilized);
    }
    let detail = format!(
        "{k} underutilized nodes; their pods fit on the rest{}",
        if claims.is_empty() { "" } else { " and one cheaper node" }
    );
    Some(command(req, Reason::Underutilized, &prefix[..k], claims, detail))
}

/// One node: deleted when its pods fit elsewhere, or replaced with a cheaper node.
fn single(
    req: &Request,
    cands: &[&Candidate],
    world: &World,
    budgets: &mut Budgets,
    out: &mut Plan,
) -> Option<Command> {
    for c in by_cost(cands).into_iter().take(MAX_SINGLE) {
        let claims = match relocate(world, &[c.node.name.as_str()], &c.pods, Some(1)) {
            Ok(claims) => claims,
            Err(_) => continue,
        };
        if !cheaper(req, &[c], &claims) {
            continue;
        }
        if !budgets.take(req, c.pool, Reason::Underutilized) {
            out.kept.push((
                c.node.name.clone(),
                format!("underutilized: disruption budget of NodePool {} is used up", req.rules().pools[c.pool].name),
            ));
            continue;
        }
        let detail = format!(
            "utilization {:.0}%; {}",
            c.utilization * 100.0,
            match claims.first() {
                None => "its pods fit on other nodes".to_string(),
                Some(r) => format!(
                    "a cheaper {} (${:.4}/h vs ${:.4}/h) holds its pods",
                    r.instance_type, r.price, c.instance.price
                ),
            }
        );
        return Some(command(req, Reason::Underutilized, &[c], claims, detail));
    }
    None
}

/// Whether `cmd` still holds: a fresh plan disrupts at least the same nodes for the same reason.
pub fn still_valid(cmd: &Command, fresh: &Plan) -> bool {
    fresh.commands.iter().any(|c| c.reason == cmd.reason && cmd.nodes().all(|n| c.nodes().any(|m| m == n)))
}
