//! Interruptions: what to do about each notice read from the interruption queue. Pure: [`decide`]
//! takes the notices and what provisioning sees, and says for each notice and each instance it
//! names what the capacity loop does; the loop only executes it.
//!
//! ```text
//! notice ─ unreadable / unknown ───────────────────────────► acknowledge (logged)
//!        ─ rebalance, policy `record` ─────────────────────► record
//!        ─ state change to running / pending ──────────────► acknowledge
//!        ─ not listed, and `get` failed ───────────────────► keep the message (comes back)
//!        ─ instance not capstan's (no NodeClaim tag) ──────► acknowledge
//!        ─ state change of an instance already going,
//!          with no node (capstan's own scale-down) ────────► acknowledge
//!        ─ rebalance, policy `replace` ─► voluntary: budgets and `do-not-disrupt` apply; the
//!          node is marked `rebalance-recommendation` and drained once its replacements are
//!          initialized (a budget used up keeps the message for later)
//!        ─ no node yet ────────────────────────────────────► terminate the instance
//!        ─ node already drained for an interruption ───────► nothing more
//!        ─ node drained for another reason ────────────────► re-mark: drain now
//!        ─ otherwise ─► replace and drain at once, without waiting for the replacement
//! ```
//!
//! An interruption is involuntary: no budget, `do-not-disrupt` or validation delay holds it
//! back, since the instance goes whatever capstan does. Every node the batch replaces is
//! solved for in one solve, so a storm of warnings launches what the pods need once.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::cloud::OfferingKey;
use crate::cloud::interruption::RebalancePolicy;
use crate::cloud::interruption::{Event, Kind, Notice};
use crate::cloud::provider::{Instance, InstanceState};
use crate::cluster::marks::{self, DisruptionMarks};
use crate::cluster::model::ClusterNode;
use crate::rules::Reason;
use crate::scheduling::catalog::CapacityType;

use super::{Command, Request};

mod batch;
use batch::Batch;

/// What to do about one instance a notice names.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing: the notice is acknowledged (why, for the log).
    Ignore(String),
    /// Only record the notice (a rebalance recommendation under the `record` policy).
    Record,
    /// A rebalance recommendation not acted on (why): recorded and acknowledged.
    Kept(String),
    /// Not decided now (why): the message stays in the queue and is decided again when it
    /// comes back (a budget used up; the instance not known yet).
    Later(String),
    /// The instance has no node yet: terminate it, so its pods are planned elsewhere.
    Terminate,
    /// The node is already being drained for this or a stronger reason: nothing more.
    AlreadyDraining,
    /// The node is being drained for a voluntary reason and waits for its replacements: mark it
    /// interrupted (keeping those replacements) so it is drained at once.
    Hasten {
        /// The node to mark.
        node: String,
        /// The replacements recorded on the node.
        replacements: Vec<String>,
    },
    /// Launch the replacements and mark the node: for reason `interrupted` it is drained at
    /// once, for `rebalance-recommendation` once the replacements are initialized. The
    /// replacements are those holding the node's pods; one may hold pods of several nodes of
    /// the batch (and be listed on each), and is launched once.
    Replace(Box<Command>),
}

impl Action {
    /// The action's name in decisions and events.
    pub fn label(&self) -> &'static str {
        match self {
            Action::Ignore(_) => "ignore",
            Action::Record => "record",
            Action::Kept(_) => "kept",
            Action::Later(_) => "later",
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
    /// The offering the capacity loop avoids from now on: the spot offering a spot warning
    /// interrupts, the reserved offering a capacity-reservation warning takes back.
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

/// What `get` answered for an instance a notice names that the last listing did not hold
/// (EC2's listing lags right after a launch).
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The cloud knows it; `ours` when it carries a NodeClaim tag and this cluster's tag.
    Found { instance: Instance, ours: bool },
    /// The cloud does not know it.
    NotFound,
    /// Another error: nothing can be said, and the notice is kept for later.
    Failed(String),
}

/// Whether a node is being drained for an interruption.
pub fn interrupted(node: &ClusterNode) -> bool {
    marks::disrupting(node) && DisruptionMarks::read(node).is_some_and(|m| m.reason == Reason::Interrupted.label())
}

/// How strongly a notice asks capstan to act on an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Intent {
    /// Nothing to do (a state change that keeps the instance).
    None,
    /// Record only.
    Record,
    /// Replace voluntarily (a rebalance recommendation under `replace`).
    Voluntary,
    /// The instance goes: replace and drain at once.
    Involuntary,
}

fn intent(e: &Event, rebalance: RebalancePolicy) -> Intent {
    match e.kind {
        Kind::RebalanceRecommendation if rebalance == RebalancePolicy::Replace => Intent::Voluntary,
        Kind::RebalanceRecommendation => Intent::Record,
        _ if e.takes_instances_away() => Intent::Involuntary,
        _ => Intent::None,
    }
}

/// Decides what to do about each notice, in order. `rebalance` is what a rebalance
/// recommendation does; `fetched` holds what `get` said of the named instances the listing
/// does not hold.
pub fn decide(
    notices: &[Notice],
    req: Request,
    rebalance: RebalancePolicy,
    fetched: &BTreeMap<String, Fetched>,
) -> Vec<Verdict> {
    let snapshot = req.snapshot();
    let node_of = |id: &str| snapshot.nodes.iter().find(|n| n.instance_id() == Some(id));
    let listed = |id: &str| req.instances().iter().find(|i| i.id == id);
    // The instance, when it is capstan's in this cluster: `Err` when that cannot be told now.
    let ours = |id: &str| -> Result<Option<&Instance>, String> {
        match (listed(id), fetched.get(id)) {
            (Some(i), _) => Ok((!i.claim.is_empty()).then_some(i)),
            (None, Some(Fetched::Found { instance, ours })) => Ok(ours.then_some(instance)),
            (None, Some(Fetched::Failed(why))) => Err(why.clone()),
            (None, Some(Fetched::NotFound)) => Ok(None),
            (None, None) => Err("not listed and not looked up".into()),
        }
    };
    // The strongest intent of the batch for each instance: a spot warning outranks a
    // rebalance recommendation for the same instance.
    let mut strongest: HashMap<&str, Intent> = HashMap::new();
    for e in notices.iter().filter_map(|n| n.event.as_ref().ok()) {
        for id in &e.instance_ids {
            let s = strongest.entry(id.as_str()).or_insert(Intent::None);
            *s = (*s).max(intent(e, rebalance));
        }
    }
    let batch = Batch::plan(&req, &strongest, &node_of, &|id| ours(id).ok().flatten(), notices);
    let mut done: BTreeSet<&str> = BTreeSet::new();
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
                let mine = ours(id);
                let unavailable = mine.as_ref().ok().copied().flatten().and_then(|i| offering(e.kind, i));
                let want = intent(e, rebalance);
                let action = match (want, mine) {
                    (Intent::None, _) => {
                        Action::Ignore(format!("state {}: the instance stays", e.state.as_deref().unwrap_or("unknown")))
                    }
                    (Intent::Record, _) => Action::Record,
                    (_, Err(why)) => Action::Later(format!("whose instance this is is not known yet: {why}")),
                    (_, Ok(None)) => Action::Ignore("not an instance capstan launched in this cluster".into()),
                    (_, Ok(Some(i))) if node.is_none() && going(e, i) => {
                        Action::Ignore(format!("instance {} already {:?}, without a node", i.id, i.state))
                    }
                    (_, Ok(Some(_))) if want < strongest[id.as_str()] || !done.insert(id.as_str()) => {
                        Action::AlreadyDraining
                    }
                    (Intent::Voluntary, Ok(Some(_))) => batch.voluntary(id, node),
                    (_, Ok(Some(_))) => batch.involuntary(id, node),
                };
                v.items.push(Item { instance: id.clone(), node: node.map(|n| n.name.clone()), action, unavailable });
            }
        }
        out.push(v);
    }
    out
}

/// Whether a state change reports an instance already on its way out (or gone): after a
/// scale-down capstan made itself, EC2 reports `shutting-down` and `terminated`.
fn going(e: &Event, i: &Instance) -> bool {
    e.kind == Kind::StateChange && matches!(i.state, InstanceState::ShuttingDown | InstanceState::Terminated)
}

/// The offering a notice says is short, which the capacity loop avoids from now on: the spot
/// offering of a spot interruption warning, the reserved offering of a capacity-reservation
/// interruption warning. A rebalance recommendation marks nothing: it is sent to whole pools.
fn offering(kind: Kind, i: &Instance) -> Option<OfferingKey> {
    let short = match (kind, i.capacity_type) {
        (Kind::SpotInterruption, CapacityType::Spot) => CapacityType::Spot,
        (Kind::CapacityReservationInterruption, CapacityType::Reserved) => CapacityType::Reserved,
        _ => return None,
    };
    Some(OfferingKey::new(&i.instance_type, &i.zone, short))
}
