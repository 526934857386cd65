//! Interruptions: what to do about each notice read from the interruption queue. Pure: [`decide`]
//! takes the notices and what provisioning sees, and says for each notice and each instance it
//! names what the capacity loop does; the loop only executes it.
//!
//! ```text
//! notice ─ unreadable / unknown ───────────────────────────► acknowledge (logged)
//!        ─ rebalance, policy `record` ─────────────────────► record
//!        ─ state change to running / pending ──────────────► acknowledge
//!        ─ instance not capstan's (no NodeClaim tag) ──────► acknowledge
//!        ─ no node yet ────────────────────────────────────► terminate the instance
//!        ─ node already drained for an interruption ───────► acknowledge
//!        ─ node drained for another reason ────────────────► re-mark: drain now
//!        ─ otherwise ─► replace (pods re-solved without the interrupted offering) and drain
//!                       at once, without waiting for the replacement
//! ```
//!
//! An interruption is involuntary: no budget, `do-not-disrupt` or validation delay holds it
//! back, since the instance goes in two minutes whatever capstan does.

use std::collections::HashSet;

use crate::app::config::RebalancePolicy;
use crate::cloud::OfferingKey;
use crate::cloud::interruption::{Kind, Notice};
use crate::cloud::provider::Instance;
use crate::cluster::marks::{self, DisruptionMarks};
use crate::cluster::model::{ClusterNode, ClusterPod, Snapshot};
use crate::provisioning::{Launch, Request, claim_name, nodes};
use crate::rules::Reason;
use crate::scheduling::catalog::{CapacityType, Catalog};
use crate::scheduling::plan::NewClaim;

use super::simulate::{World, relocate};
use super::{Command, Target};

/// What to do about one instance a notice names.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing: the notice is acknowledged (why, for the log).
    Ignore(String),
    /// Only record the notice (a rebalance recommendation under the `record` policy).
    Record,
    /// The instance has no node yet: terminate it, so its pods are planned elsewhere.
    Terminate,
    /// The node is already being drained for an interruption: nothing more.
    AlreadyDraining,
    /// The node is being drained for a voluntary reason and waits for its replacements: mark it
    /// interrupted (keeping those replacements) so it is drained at once.
    Hasten {
        /// The replacements recorded on the node.
        replacements: Vec<String>,
    },
    /// Launch the replacements and drain the node at once.
    Replace(Box<Command>),
}

impl Action {
    /// The action's name in decisions and events.
    pub fn label(&self) -> &'static str {
        match self {
            Action::Ignore(_) => "ignore",
            Action::Record => "record",
            Action::Terminate => "terminate",
            Action::AlreadyDraining => "already-draining",
            Action::Hasten { .. } => "drain-now",
            Action::Replace(_) => "replace",
        }
    }
}

/// One instance a notice names, and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The instance id the notice names.
    pub instance: String,
    /// Its node, when it has registered.
    pub node: Option<String>,
    /// What the capacity loop does about it.
    pub action: Action,
    /// The offering the capacity loop avoids from now on (the spot offering interrupted).
    pub unavailable: Option<OfferingKey>,
}

/// What to do about one notice. The notice is acknowledged once every item was acted on.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What deletes the message once acted on.
    pub receipt: String,
    /// The queue's id of the message, for the record.
    pub message_id: String,
    /// The event's kind; `None` for an unreadable or unknown message.
    pub kind: Option<Kind>,
    /// Why the message cannot be read, when it cannot.
    pub unreadable: Option<String>,
    /// One per instance the event names (none for an unreadable message).
    pub items: Vec<Item>,
}

/// Whether a node is being drained for an interruption.
pub fn interrupted(node: &ClusterNode) -> bool {
    marks::disrupting(node) && DisruptionMarks::read(node).is_some_and(|m| m.reason == Reason::Interrupted.label())
}

/// Decides what to do about each notice, in order. `rebalance` is what a rebalance
/// recommendation does.
pub fn decide(notices: &[Notice], view: Request, rebalance: RebalancePolicy) -> Vec<Verdict> {
    let snapshot = view.snapshot;
    let node_of = |id: &str| snapshot.nodes.iter().find(|n| n.instance_id() == Some(id));
    let ours = |id: &str| view.instances.iter().find(|i| i.id == id && !i.claim.is_empty());
    let acts = |kind: Kind, away: bool| {
        away || (kind == Kind::RebalanceRecommendation && rebalance == RebalancePolicy::Replace)
    };
    // Every node any notice of this batch takes away: no replacement is planned onto one.
    let mut leaving: Vec<&str> = Vec::new();
    let mut avoid: Vec<OfferingKey> = Vec::new();
    for n in notices {
        let Ok(e) = &n.event else { continue };
        if !acts(e.kind, e.takes_instances_away()) {
            continue;
        }
        for id in &e.instance_ids {
            if let (Some(i), Some(node)) = (ours(id), node_of(id)) {
                leaving.push(node.name.as_str());
                avoid.extend(offering(e.kind, i));
            }
        }
    }
    let mut catalog: Catalog = view.catalog.clone();
    mark_unavailable(&mut catalog, &avoid);
    let capacity = nodes::capacity(snapshot, view.instances, &view.rules.pools, &catalog);
    let displaced: Vec<&ClusterPod> = snapshot
        .nodes
        .iter()
        .filter(|n| marks::disrupting(n))
        .flat_map(|n| snapshot.pods_on(&n.name).filter(|p| !p.is_node_bound()))
        .collect();
    let world = World {
        capacity: &capacity,
        daemonsets: &snapshot.daemonsets,
        rules: view.rules,
        catalog: &catalog,
        displaced,
    };
    let mut done: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for n in notices {
        let mut v = Verdict {
            receipt: n.receipt.clone(),
            message_id: n.message_id.clone(),
            kind: n.event.as_ref().ok().map(|e| e.kind),
            unreadable: n.event.as_ref().err().cloned(),
            items: Vec::new(),
        };
        if let Ok(e) = &n.event {
            for id in &e.instance_ids {
                let node = node_of(id);
                let instance = ours(id);
                let unavailable = instance.and_then(|i| offering(e.kind, i));
                let action = if !acts(e.kind, e.takes_instances_away()) {
                    if e.kind == Kind::RebalanceRecommendation {
                        Action::Record
                    } else {
                        Action::Ignore(format!("state {}: the instance stays", e.state.as_deref().unwrap_or("unknown")))
                    }
                } else if let Some(i) = instance {
                    if !done.insert(i.id.as_str()) {
                        Action::AlreadyDraining
                    } else {
                        act(&world, snapshot, &leaving, i, node)
                    }
                } else {
                    Action::Ignore("not an instance capstan launched (no NodeClaim tag)".into())
                };
                let unavailable = match action {
                    Action::Replace(_) | Action::Terminate | Action::Hasten { .. } => unavailable,
                    _ => None,
                };
                v.items.push(Item { instance: id.clone(), node: node.map(|n| n.name.clone()), action, unavailable });
            }
        }
        out.push(v);
    }
    out
}

/// What to do about capstan's instance `i`, which goes away, with its node `node`.
fn act(world: &World, snapshot: &Snapshot, leaving: &[&str], i: &Instance, node: Option<&ClusterNode>) -> Action {
    let Some(node) = node else { return Action::Terminate };
    if interrupted(node) {
        return Action::AlreadyDraining;
    }
    if marks::disrupting(node)
        && let Some(m) = DisruptionMarks::read(node)
    {
        return Action::Hasten { replacements: m.replacements };
    }
    Action::Replace(Box::new(replace(world, snapshot, leaving, i, node)))
}

/// The command replacing `node`: its movable pods re-solved on the rest of the cluster (no node
/// leaving in this batch) and new capacity without the interrupted offering. When they cannot
/// all be placed, the node is drained all the same, without replacements: it goes anyway.
fn replace(world: &World, snapshot: &Snapshot, leaving: &[&str], i: &Instance, node: &ClusterNode) -> Command {
    let pods: Vec<&ClusterPod> = snapshot.pods_on(&node.name).filter(|p| !p.is_node_bound()).collect();
    let (claims, detail) = match relocate(world, leaving, &pods, None) {
        Ok(claims) => (claims, format!("{} pod(s) to move before the instance goes", pods.len())),
        Err(why) => (Vec::new(), format!("drained without a replacement: {why}")),
    };
    let replacements: Vec<_> = claims.into_iter().map(|c| replacement(c, world, i)).collect();
    let target = Target {
        node: node.name.clone(),
        instance: i.id.clone(),
        node_pool: node.labels.get(marks::NODE_POOL).cloned().unwrap_or_else(|| i.node_pool.clone()),
        instance_type: i.instance_type.clone(),
        price: i.price,
        pods: pods.len(),
    };
    let savings = i.price - replacements.iter().map(|l| l.plan.price).sum::<f64>();
    Command { reason: Reason::Interrupted, targets: vec![target], replacements, savings, detail }
}

/// The launch of a replacement for interrupted instance `i`, named after it: the same pods
/// under the same revision would otherwise name the claim the instance was launched for (and
/// `create`, idempotent by claim name, would answer with the instance that goes), while a
/// notice read again names the same replacement (and launches nothing twice).
fn replacement(c: NewClaim, world: &World, i: &Instance) -> Launch {
    let mut l = crate::provisioning::launch(c, world.rules);
    let salt = format!("{}\nreplaces {}", world.rules.revision, i.id);
    l.claim.name = claim_name(&l.claim.node_pool, &salt, &l.plan.instance_type, &l.plan.pods);
    l.plan.name = l.claim.name.clone();
    l
}

/// The spot offering an interruption warning (or a rebalance recommendation) says is short.
fn offering(kind: Kind, i: &Instance) -> Option<OfferingKey> {
    let spot = i.capacity_type == CapacityType::Spot;
    let short = matches!(kind, Kind::SpotInterruption | Kind::RebalanceRecommendation);
    (spot && short).then(|| OfferingKey::new(&i.instance_type, &i.zone, CapacityType::Spot))
}

fn mark_unavailable(catalog: &mut Catalog, offerings: &[OfferingKey]) {
    for t in &mut catalog.types {
        for o in &mut t.offerings {
            if offerings.contains(&OfferingKey::new(&t.name, &o.zone, o.capacity_type)) {
                o.available = false;
            }
        }
    }
}
