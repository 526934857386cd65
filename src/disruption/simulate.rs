//! "If these nodes went away, where would their pods go?" The same scheduler as provisioning,
//! run over the remaining capacity: the answer is either nowhere new (delete), a few new
//! NodeClaims (replace), or pods left without a place (keep the nodes).

use crate::cluster::model::ClusterPod;
use crate::rules::Rules;
use crate::scheduling::catalog::Catalog;
use crate::scheduling::node::Node;
use crate::scheduling::plan::NewClaim;
use crate::scheduling::pod::Pod;
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
        strategy: Strategy::CostOptimal,
    };
    let plan = solve(&input);
    if let Some(u) = plan.unschedulable.first() {
        return Err(format!("{} pod(s) would have no place ({}: {})", plan.unschedulable.len(), u.pod, u.reason));
    }
    if let Some(max) = max_new
        && plan.claims.len() > max
    {
        return Err(format!("moving the pods needs {} new nodes, at most {max} allowed", plan.claims.len()));
    }
    Ok(plan.claims)
}
