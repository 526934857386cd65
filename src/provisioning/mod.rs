//! Provisioning: pending pods → NodeClaims. Pure: the caller gathers the snapshot, the
//! instances and the catalog; [`provision`] returns what to launch.
//!
//! ```text
//! pending pods ─batch─► solve(existing nodes, in-flight instances, pools) ─► NodeClaims
//! ```
//!
//! A claim's name is derived from the policy revision and the pods it serves, so a daemon that
//! crashes after deciding and decides again asks EC2 for the same claim (CreateFleet's
//! ClientToken) and launches nothing twice.

pub mod batch;
pub mod buffer;
pub mod lifecycle;
pub mod nodes;
pub mod static_pools;

use std::collections::BTreeMap;

use crate::cloud::provider::{Instance, NodeClaim};
use crate::cluster::model::Snapshot;
use crate::digest::fnv64;
use crate::rules::Rules;
use crate::scheduling::catalog::Catalog;
use crate::scheduling::plan::{Binding, NewClaim, Unschedulable};
use crate::scheduling::pool::PoolSpec;
use crate::scheduling::{Input, Strategy, solve};

/// Tag and annotation holding the NodePool drift digest a node was launched under.
pub const POOL_HASH_TAG: &str = "karpenter.sh/nodepool-hash";

/// Everything a provisioning decision is made from.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub snapshot: &'a Snapshot,
    pub instances: &'a [Instance],
    pub rules: &'a Rules,
    /// Offerings that recently ran out of capacity are marked unavailable.
    pub catalog: &'a Catalog,
}

/// One launch: the claim for the cloud and what the scheduler planned for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub claim: NodeClaim,
    pub plan: NewClaim,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provision {
    /// Pending pods considered.
    pub pending: usize,
    pub launches: Vec<Launch>,
    /// Pods that will run on nodes that exist or are launching.
    pub nominated: Vec<Binding>,
    pub unschedulable: Vec<Unschedulable>,
}

/// A stable claim name: `<pool>-<digest of revision, type and pods>`.
pub fn claim_name(pool: &str, revision: &str, instance_type: &str, pods: &[String]) -> String {
    let mut sorted = pods.to_vec();
    sorted.sort();
    let text = format!("{revision}\n{instance_type}\n{}", sorted.join("\n"));
    format!("{pool}-{:010x}", fnv64(text.as_bytes()) & 0xff_ffff_ffff)
}

/// Decides what to launch for the pending pods.
pub fn provision(req: Request) -> Provision {
    let pending: Vec<_> = req.snapshot.pending().map(|p| p.spec.clone()).collect();
    if pending.is_empty() {
        return Provision::default();
    }
    let rules = req.rules;
    let input = Input {
        pods: pending,
        nodes: nodes::capacity(req.snapshot, req.instances, &rules.pools, req.catalog),
        daemonsets: req.snapshot.daemonsets.clone(),
        pools: dynamic_pools(rules),
        catalog: req.catalog,
        cluster_limits: rules.cluster.limits.clone(),
        strategy: Strategy::CostOptimal,
    };
    let plan = solve(&input);
    let launches = plan.claims.into_iter().map(|c| launch(c, rules)).collect();
    Provision { pending: input.pods.len(), launches, nominated: plan.bindings, unschedulable: plan.unschedulable }
}

/// The pools pending pods may launch nodes in: all but the static ones (`replicas` set), whose
/// node count is theirs alone to keep, as in Karpenter.
pub fn dynamic_pools(rules: &Rules) -> Vec<PoolSpec> {
    rules.pools.iter().zip(&rules.pool_rules).filter(|(_, r)| r.replicas.is_none()).map(|(p, _)| p.clone()).collect()
}

/// The cloud's claim for a planned node, named stably.
pub fn launch(mut c: NewClaim, rules: &Rules) -> Launch {
    let (node_class, hash) = match rules.pool(&c.node_pool) {
        Some((_, pool, pool_rules)) => (pool.node_class.clone(), pool_rules.hash.clone()),
        None => (String::new(), String::new()),
    };
    c.name = claim_name(&c.node_pool, &rules.revision.to_string(), &c.instance_type, &c.pods);
    let claim = NodeClaim {
        name: c.name.clone(),
        node_pool: c.node_pool.clone(),
        node_class,
        options: c.options.as_ref().clone(),
        policy_revision: rules.revision.to_string(),
        tags: BTreeMap::from([(POOL_HASH_TAG.to_string(), hash)]),
    };
    Launch { claim, plan: c }
}
