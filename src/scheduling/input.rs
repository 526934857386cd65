//! What the scheduler decides from: pending pods, nodes, pools, the catalog, limits and the
//! strategy, as plain data the caller gathers.

use super::catalog::Catalog;
use super::node::Node;
use super::pod::Pod;
use super::pool::{Limits, PoolSpec};

/// How new capacity is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Minimise the price per hour of the new NodeClaims.
    CostOptimal,
    /// The cost-optimal packer's first packing alone, without re-packing at the values its own
    /// nodes give: for consolidation, which solves many small what-ifs and compares their costs.
    Greedy,
    /// Karpenter's behaviour: pods largest first onto the first claim that fits, each claim
    /// launched as the cheapest type that holds its pods. Kept as a baseline.
    FirstFitDecreasing,
}

/// Everything the scheduler decides from. Plain data; the caller gathers it.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub pods: Vec<Pod>,
    /// Registered nodes and in-flight NodeClaims.
    pub nodes: Vec<Node>,
    /// One template pod per DaemonSet.
    pub daemonsets: Vec<Pod>,
    /// Highest weight first.
    pub pools: Vec<PoolSpec>,
    pub catalog: &'a Catalog,
    /// Cluster-wide ceilings (ClusterPolicy `limits`).
    pub cluster_limits: Limits,
    pub strategy: Strategy,
}
