//! "If these nodes went away, where would their pods go?" The same scheduler as provisioning,
//! run over the remaining capacity: the answer is either nowhere new (delete), a few new
//! NodeClaims (replace), or pods left without a place (keep the nodes).

use std::collections::HashSet;

use crate::cluster::model::ClusterPod;
use crate::rules::Rules;
use crate::scheduling::catalog::{Catalog, InstanceType};
use crate::scheduling::node::Node;
use crate::scheduling::plan::NewClaim;
use crate::scheduling::pod::Pod;
use crate::scheduling::resources::MIB;
use crate::scheduling::{Input, Strategy, solve};

/// The world a pass simulates in: all capacity, computed once per pass.
pub struct World<'a> {
    pub capacity: &'a [Node],
    pub daemonsets: &'a [Pod],
    pub rules: &'a Rules,
    pub catalog: &'a Catalog,
    /// Pods of nodes already being disrupted: they need a place too, so capacity meant for
    /// them (replacements in flight) is not counted twice.
    pub displaced: Vec<&'a ClusterPod>,
}

/// New capacity needed to move `pods` off the `removed` nodes: `Ok` with the replacements
/// (possibly none), or `Err` with why they cannot all move.
pub fn relocate(
    world: &World,
    removed: &[&str],
    pods: &[&ClusterPod],
    max_new: Option<usize>,
) -> Result<Vec<NewClaim>, String> {
    let nodes: Vec<Node> =
        world.capacity.iter().filter(|n| !n.unschedulable && !removed.contains(&n.name.as_str())).cloned().collect();
    let input = Input {
        pods: pods.iter().chain(&world.displaced).map(|p| p.spec.clone()).collect(),
        nodes,
        daemonsets: world.daemonsets.to_vec(),
        pools: crate::provisioning::dynamic_pools(world.rules),
        catalog: world.catalog,
        cluster_limits: world.rules.cluster.limits.clone(),
        strategy: Strategy::Greedy,
    };
    let plan = solve(&input);
    if let Some(u) = plan.unschedulable.first() {
        return Err(format!("{} pod(s) would have no place ({}: {})", plan.unschedulable.len(), u.pod, u.reason));
    }
    if let Some(max) = max_new
        && plan.claims.len() > max
    {
        // Small pods are cheapest spread over several small nodes; one larger node may still
        // hold them all for less than the nodes removed.
        if max == 1
            && let Some(one) = on_one_node(input, &plan.claims)
        {
            return Ok(one);
        }
        return Err(format!("moving the pods needs {} new nodes, at most {max} allowed", plan.claims.len()));
    }
    Ok(plan.claims)
}

/// Instance types tried, cheapest first, for one node holding what a plan spread over several.
const ONE_NODE_TRIES: usize = 3;

/// The pods `claims` hold on one new node: the cheapest of the few cheapest types large enough
/// for their requests together on which the scheduler places them all with one claim.
fn on_one_node(input: Input<'_>, claims: &[NewClaim]) -> Option<Vec<NewClaim>> {
    let names: HashSet<&str> = claims.iter().flat_map(|c| c.pods.iter().map(String::as_str)).collect();
    let (mut cpu, mut memory) = (0i64, 0i64);
    for p in input.pods.iter().filter(|p| names.contains(p.name.as_str())) {
        cpu += p.requests.cpu;
        memory += p.requests.memory;
    }
    let price = |t: &InstanceType| {
        input.pools.iter().filter_map(|p| t.cheapest(&p.requirements, &p.node_class)).map(|o| o.price).reduce(f64::min)
    };
    let mut large: Vec<(f64, &InstanceType)> = input
        .catalog
        .types
        .iter()
        .filter(|t| t.vcpu as i64 * 1000 >= cpu && t.memory_mib as i64 * MIB >= memory)
        .filter_map(|t| price(t).map(|p| (p, t)))
        .collect();
    large.sort_by(|a, b| a.0.total_cmp(&b.0));
    let tries: Vec<Catalog> =
        large.into_iter().take(ONE_NODE_TRIES).map(|(_, t)| Catalog { types: vec![t.clone()] }).collect();
    let mut one = input;
    for catalog in &tries {
        one.catalog = catalog;
        let plan = solve(&one);
        if plan.unschedulable.is_empty() && plan.claims.len() <= 1 {
            return Some(plan.claims);
        }
    }
    None
}
