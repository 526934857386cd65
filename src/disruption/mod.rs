//! Disruption: which nodes to remove, and why. Pure: [`plan`] takes a snapshot, the instances,
//! the rules and the time, and returns commands in priority order; the capacity loop
//! re-validates a command after [`VALIDATION_DELAY`] and only then drains.
//!
//! ```text
//! candidates ─► static NodePools: drift / expiration (replace one for one); nothing else
//!            ─► drift / expiration (replace, one node)
//!            ─► emptiness (delete every empty node past consolidateAfter, within budgets)
//!            ─► consolidation: multi-node (delete, or replace with new nodes costing less)
//!                              then single-node (delete, or replace with a cheaper node)
//! ```
//!
//! `Balanced` pools take a consolidation only when its score (share of the pool's cost saved
//! over share of its disruption caused, see [`balanced`]) reaches the threshold; every scored
//! move, taken or not, is in [`Plan::scores`].
//!
//! Beyond Karpenter: the ClusterPolicy's utilization threshold (only nodes below it are
//! consolidated) and minimum node lifetime (no node with pods is disrupted younger than it);
//! and a multi-node consolidation may launch several nodes where Karpenter's launches one.

pub mod balanced;
pub mod budget;
pub mod candidate;
mod consolidation;
pub mod drain;
pub mod interrupt;
pub mod simulate;
pub mod static_pools;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cloud::provider::Instance;
use crate::cluster::model::{ClusterPod, Snapshot};
use crate::provisioning::{Launch, nodes};
use crate::rules::{Reason, Rules};
use crate::scheduling::catalog::Catalog;
use crate::scheduling::pool::NODE_POOL_LABEL;

use candidate::{Candidate, candidates, disrupting};
use consolidation::{multi, single, underutilized};
use simulate::{World, relocate};

/// How often disruption is evaluated.
pub const POLL: Duration = Duration::from_secs(10);
/// How long a decision waits before it is checked again and acted on.
pub const VALIDATION_DELAY: Duration = Duration::from_secs(15);

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
    /// Every consolidation scored for a `Balanced` pool, approved or rejected.
    pub scores: Vec<balanced::Scored>,
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
        pods: c.pods.iter().filter(|p| !crate::provisioning::buffer::is_placeholder(&p.key())).count(),
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
    let (fixed, all): (Vec<Candidate>, Vec<Candidate>) =
        candidates(req.snapshot(), req.instances(), req.rules(), req.now)
            .into_iter()
            .partition(|c| req.rules().pool_rules[c.pool].replicas.is_some());
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

    if let Some(c) = static_pools::replace(&req, &fixed, &mut budgets, &mut out) {
        out.commands.push(c);
        return out;
    }
    if let Some(c) = replace_stale(&req, &all, &world, &mut budgets, &mut out) {
        out.commands.push(c);
        return out;
    }
    if let Some(c) = empty(&req, &all, &mut budgets, &mut out) {
        out.commands.push(c);
        return out;
    }
    // Real pods pending hold consolidation back; placeholders with no room do not.
    if req.snapshot().pending().any(|p| !crate::provisioning::buffer::is_placeholder(&p.key())) {
        return out;
    }
    let consolidatable: Vec<&Candidate> = all.iter().filter(|c| underutilized(&req, c, &mut out)).collect();
    let totals = balanced::totals(req.snapshot(), req.instances());
    if let Some(c) = multi(&req, &consolidatable, &world, &mut budgets, &totals, &mut out) {
        out.commands.push(c);
    } else if let Some(c) = single(&req, &consolidatable, &world, &mut budgets, &totals, &mut out) {
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
    for (c, reason, why) in candidate::stale(req, all) {
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

/// Whether `cmd` still holds: a fresh plan disrupts at least the same nodes for the same reason.
pub fn still_valid(cmd: &Command, fresh: &Plan) -> bool {
    fresh.commands.iter().any(|c| c.reason == cmd.reason && cmd.nodes().all(|n| c.nodes().any(|m| m == n)))
}
