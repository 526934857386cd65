//! The nodes a batch of notices replaces, solved for together: one solve for every pod of the
//! batch, so a storm of warnings launches what the pods need once, and each node lists the
//! replacements holding its pods.

use std::collections::{BTreeSet, HashMap};

use crate::cloud::OfferingKey;
use crate::cloud::interruption::{Kind, Notice};
use crate::cloud::provider::Instance;
use crate::cluster::marks::{self, DisruptionMarks};
use crate::cluster::model::{ClusterNode, ClusterPod};
use crate::provisioning::{Launch, claim_name, nodes};
use crate::rules::Reason;
use crate::scheduling::catalog::{CapacityType, Catalog};
use crate::scheduling::plan::NewClaim;
use crate::scheduling::{Input, Strategy, solve};

use super::super::candidate::candidates;
use super::super::{Budgets, Command, Request, Target};
use super::{Action, Intent, interrupted, offering};

/// The nodes this batch replaces, solved for together.
pub(super) struct Batch {
    /// Instance id → its replacement command.
    commands: HashMap<String, Command>,
    /// Instance id → why a rebalance recommendation for it is not acted on now.
    kept: HashMap<String, Action>,
}

impl Batch {
    /// Chooses the nodes to replace (every node an involuntary notice names; those a rebalance
    /// recommendation names that budgets and `do-not-disrupt` allow and whose pods all find a
    /// place) and solves for all their pods at once.
    pub(super) fn plan<'a>(
        req: &Request<'a>,
        strongest: &HashMap<&str, Intent>,
        node_of: &dyn Fn(&str) -> Option<&'a ClusterNode>,
        ours: &dyn Fn(&str) -> Option<&'a Instance>,
        notices: &[Notice],
    ) -> Batch {
        let snapshot = req.snapshot();
        let mut kept: HashMap<String, Action> = HashMap::new();
        let mut involuntary: Vec<(&'a Instance, &'a ClusterNode)> = Vec::new();
        let mut voluntary: Vec<(&'a Instance, &'a ClusterNode)> = Vec::new();
        for (id, want) in strongest {
            let (Some(i), Some(node)) = (ours(id), node_of(id)) else { continue };
            if marks::disrupting(node) {
                continue;
            }
            match want {
                Intent::Involuntary => involuntary.push((i, node)),
                Intent::Voluntary => voluntary.push((i, node)),
                _ => {}
            }
        }
        involuntary.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        voluntary.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        // Voluntary: what forbids disrupting the node, then the budgets, in instance order.
        let all = candidates(snapshot, req.instances(), req.rules(), req.now);
        let mut budgets = Budgets::new(snapshot);
        voluntary.retain(|(i, node)| {
            let Some(c) = all.iter().find(|c| c.node.name == node.name) else {
                kept.insert(i.id.clone(), Action::Kept("the node is not Ready, or is cordoned".into()));
                return false;
            };
            if let Some(why) = &c.blocked {
                kept.insert(i.id.clone(), Action::Kept(why.clone()));
                return false;
            }
            if !budgets.take(req, c.pool, Reason::Rebalance) {
                let pool = &req.rules().pools[c.pool].name;
                kept.insert(i.id.clone(), Action::Later(format!("disruption budget of NodePool {pool} is used up")));
                return false;
            }
            true
        });
        // The offerings the solve avoids: those interrupted, and those recommended against.
        let avoid: Vec<OfferingKey> = notices
            .iter()
            .filter_map(|n| n.event.as_ref().ok())
            .flat_map(|e| e.instance_ids.iter().filter_map(move |id| ours(id).and_then(|i| avoided(e.kind, i))))
            .collect();
        let mut catalog: Catalog = req.catalog().clone();
        mark_unavailable(&mut catalog, &avoid);
        // One solve for every pod of the batch; a rebalanced node one of whose pods has no place
        // is kept, and the rest solved again.
        loop {
            let leaving: Vec<(&Instance, &ClusterNode)> = involuntary.iter().chain(&voluntary).copied().collect();
            let plan = solve_for(req, &catalog, &leaving);
            let homeless: BTreeSet<&str> = plan.unschedulable.iter().map(|u| u.pod.as_str()).collect();
            let before = voluntary.len();
            voluntary.retain(|(i, node)| {
                let stuck = pods_of(snapshot, node).find(|p| homeless.contains(p.spec.name.as_str()));
                if let Some(p) = stuck {
                    kept.insert(i.id.clone(), Action::Kept(format!("pod {} would have no place", p.key())));
                }
                stuck.is_none()
            });
            if voluntary.len() < before {
                continue;
            }
            let commands = commands(req, &involuntary, &voluntary, plan.claims, homeless.len());
            return Batch { commands, kept };
        }
    }

    pub(super) fn voluntary(&self, id: &str, node: Option<&ClusterNode>) -> Action {
        let Some(node) = node else { return Action::Ignore("no node yet: nothing to replace".into()) };
        if marks::disrupting(node) {
            return Action::AlreadyDraining;
        }
        self.command(id)
    }

    pub(super) fn involuntary(&self, id: &str, node: Option<&ClusterNode>) -> Action {
        let Some(node) = node else { return Action::Terminate };
        if interrupted(node) {
            return Action::AlreadyDraining;
        }
        if marks::disrupting(node)
            && let Some(m) = DisruptionMarks::read(node)
        {
            return Action::Hasten { node: node.name.clone(), replacements: m.replacements };
        }
        self.command(id)
    }

    fn command(&self, id: &str) -> Action {
        match (self.commands.get(id), self.kept.get(id)) {
            (Some(c), _) => Action::Replace(Box::new(c.clone())),
            (None, Some(a)) => a.clone(),
            (None, None) => Action::AlreadyDraining,
        }
    }
}

/// The pods a drain of `node` evicts.
fn pods_of<'a>(snapshot: &'a crate::cluster::Snapshot, node: &'a ClusterNode) -> impl Iterator<Item = &'a ClusterPod> {
    snapshot.pods_on(&node.name).filter(|p| !p.is_node_bound())
}

/// The solve for the pods of the `leaving` nodes on the rest of the cluster (none of the
/// leaving nodes, nor any cordoned node) and new capacity from `catalog`. Pods of nodes already
/// draining for earlier commands are not in it: their own replacements are on their way.
fn solve_for(req: &Request, catalog: &Catalog, leaving: &[(&Instance, &ClusterNode)]) -> crate::scheduling::plan::Plan {
    let snapshot = req.snapshot();
    let capacity = nodes::capacity(snapshot, req.instances(), &req.rules().pools, catalog);
    let gone: BTreeSet<&str> = leaving.iter().map(|(_, n)| n.name.as_str()).collect();
    let input = Input {
        pods: leaving.iter().flat_map(|(_, n)| pods_of(snapshot, n)).map(|p| p.spec.clone()).collect(),
        nodes: capacity.into_iter().filter(|n| !n.unschedulable && !gone.contains(n.name.as_str())).collect(),
        daemonsets: snapshot.daemonsets.clone(),
        pools: req.rules().pools.clone(),
        catalog,
        cluster_limits: req.rules().cluster.limits.clone(),
        strategy: Strategy::CostOptimal,
    };
    solve(&input)
}

/// One command per node replaced, each with the launches holding its pods.
fn commands(
    req: &Request,
    involuntary: &[(&Instance, &ClusterNode)],
    voluntary: &[(&Instance, &ClusterNode)],
    claims: Vec<NewClaim>,
    homeless: usize,
) -> HashMap<String, Command> {
    let snapshot = req.snapshot();
    let all: Vec<(&Instance, &ClusterNode, Reason)> = involuntary
        .iter()
        .map(|(i, n)| (*i, *n, Reason::Interrupted))
        .chain(voluntary.iter().map(|(i, n)| (*i, *n, Reason::Rebalance)))
        .collect();
    // Pod name → the instance whose node it leaves.
    let owner: HashMap<&str, &str> = all
        .iter()
        .flat_map(|(i, n, _)| pods_of(snapshot, n).map(move |p| (p.spec.name.as_str(), i.id.as_str())))
        .collect();
    let launches: Vec<(Launch, BTreeSet<&str>)> = claims
        .into_iter()
        .map(|c| {
            let from: BTreeSet<&str> = c.pods.iter().filter_map(|p| owner.get(p.as_str()).copied()).collect();
            (replacement(c, req, &from), from)
        })
        .collect();
    let mut out = HashMap::new();
    for (i, node, reason) in all {
        let pods = pods_of(snapshot, node).count();
        let replacements: Vec<Launch> =
            launches.iter().filter(|(_, from)| from.contains(i.id.as_str())).map(|(l, _)| l.clone()).collect();
        let detail = match (reason, homeless) {
            (Reason::Rebalance, _) => format!("{pods} pod(s) to move, once the replacements are ready"),
            (_, 0) => format!("{pods} pod(s) to move before the instance goes"),
            (_, n) => format!("{pods} pod(s) to move before the instance goes; {n} pod(s) of the batch have no place"),
        };
        let target = Target {
            node: node.name.clone(),
            instance: i.id.clone(),
            node_pool: node.labels.get(marks::NODE_POOL).cloned().unwrap_or_else(|| i.node_pool.clone()),
            instance_type: i.instance_type.clone(),
            price: i.price,
            pods,
        };
        let savings = i.price - replacements.iter().map(|l| l.plan.price).sum::<f64>();
        out.insert(i.id.clone(), Command { reason, targets: vec![target], replacements, savings, detail });
    }
    out
}

/// The launch of a replacement holding pods of the instances `from`, named after them: the
/// same pods under the same revision would otherwise name the claim an instance was launched
/// for (and `create`, idempotent by claim name, would answer with the instance that goes),
/// while a notice read again names the same replacement (and launches nothing twice).
fn replacement(c: NewClaim, req: &Request, from: &BTreeSet<&str>) -> Launch {
    let rules = req.rules();
    let mut l = crate::provisioning::launch(c, rules);
    let ids: Vec<&str> = from.iter().copied().collect();
    let salt = format!("{}\nreplaces {}", rules.revision, ids.join(" "));
    l.claim.name = claim_name(&l.claim.node_pool, &salt, &l.plan.instance_type, &l.plan.pods);
    l.plan.name = l.claim.name.clone();
    l
}

/// The offerings this batch's replacements avoid: those [`offering`] marks, and the spot
/// offering a rebalance recommendation names (a replacement there would be at the same risk).
fn avoided(kind: Kind, i: &Instance) -> Option<OfferingKey> {
    match (kind, i.capacity_type) {
        (Kind::RebalanceRecommendation, CapacityType::Spot) => {
            Some(OfferingKey::new(&i.instance_type, &i.zone, CapacityType::Spot))
        }
        _ => offering(kind, i),
    }
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
