//! What a person looks at: the board of nodes and pods behind the daemon's page at `/` and
//! `capstan nodes`. [`build::board`] is a pure function of a cluster snapshot, the cloud's
//! instances, the policy in force and the loop's reasons; the daemon rebuilds it when the
//! cluster changes and serves it as JSON (`GET /status/board`). Times are instants on the
//! daemon's clock, so a board that did not change need not be sent again for ages to move.
//!
//! ```text
//! Snapshot + instances + rules + catalog + unplaced reasons ─► board() ─► Board (JSON)
//!                                                                      ├─► page at /  (browser)
//!                                                                      └─► capstan nodes (terminal)
//! ```

pub mod build;
pub mod page;
pub mod table;

use serde::{Deserialize, Serialize};

/// Bound pods are listed one by one up to this many in the cluster; beyond it each node carries
/// its pod count by owner instead, so a board of 150,000 pods stays a few megabytes.
pub const LIST_PODS_UP_TO: usize = 3_000;

/// Pending pods listed by name; the rest are counted by reason.
pub const LIST_PENDING_UP_TO: usize = 100;

/// Owners named per node when pods are counted, not listed; the rest are summed as `other`.
pub const OWNERS_PER_NODE: usize = 6;

/// Hours in a month, as AWS prices a month (8,760 hours / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// The cluster's nodes and pods at one time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Board {
    pub cluster: String,
    /// The policy revision the capacity loop runs under, once one is in force.
    pub revision: Option<String>,
    pub nodes: Vec<NodeView>,
    pub pending: Pending,
    pub pools: Vec<PoolUsage>,
    pub cost: Cost,
    /// Bound pods are listed per node (`podList`); else counted by owner (`owners`).
    pub pods_listed: bool,
    pub totals: Totals,
}

/// Counts over the whole cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub nodes: usize,
    /// Pods bound to a node.
    pub pods: usize,
    pub running: usize,
    pub pending: usize,
    pub cpu: Bar,
    pub memory: Bar,
}

/// What runs, per hour and per month (of [`HOURS_PER_MONTH`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub per_hour: f64,
    pub per_month: f64,
}

impl Cost {
    pub fn hourly(per_hour: f64) -> Cost {
        Cost { per_hour, per_month: per_hour * HOURS_PER_MONTH }
    }
}

/// Requests against allocatable: millicores for cpu, bytes for memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bar {
    pub requested: i64,
    pub allocatable: i64,
}

impl Bar {
    /// Requested over allocatable, from 0; 0 when nothing is allocatable.
    pub fn fraction(&self) -> f64 {
        if self.allocatable <= 0 { 0.0 } else { self.requested.max(0) as f64 / self.allocatable as f64 }
    }

    pub fn add(&mut self, other: Bar) {
        self.requested += other.requested;
        self.allocatable += other.allocatable;
    }
}

/// Where a node is in its life, as the capacity loop sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeState {
    /// An instance with no node yet.
    #[default]
    Launching,
    /// The node joined; capstan has not seen it Ready with its startup taints gone.
    Registered,
    Ready,
    NotReady,
    /// Unschedulable: by hand, or for a disruption waiting for its replacements.
    Cordoned,
    /// Cordoned for a disruption and being emptied.
    Draining,
    /// Its instance is shutting down or gone.
    Terminating,
}

impl NodeState {
    pub fn label(self) -> &'static str {
        match self {
            NodeState::Launching => "launching",
            NodeState::Registered => "registered",
            NodeState::Ready => "Ready",
            NodeState::NotReady => "NotReady",
            NodeState::Cordoned => "cordoned",
            NodeState::Draining => "draining",
            NodeState::Terminating => "terminating",
        }
    }
}

/// One node, or one instance still launching.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// The node's name; the NodeClaim's while launching.
    pub name: String,
    pub claim: Option<String>,
    pub instance: Option<String>,
    pub node_pool: Option<String>,
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    pub capacity_type: Option<String>,
    pub price_per_hour: Option<f64>,
    /// When it was launched (or joined, for a node capstan did not launch): seconds since the
    /// Unix epoch on the daemon's clock, the simulated world's with the simulated backends.
    pub since: f64,
    pub state: NodeState,
    /// The disruption it is cordoned for (`empty`, `underutilized`, `drifted`, `expired`…).
    pub reason: Option<String>,
    /// The policy revision that launched it, or that decided its disruption.
    pub revision: Option<String>,
    pub cpu: Bar,
    pub memory: Bar,
    pub pods: usize,
    pub max_pods: Option<i64>,
    /// Its pods, when the board lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_list: Vec<PodDot>,
    /// Its pods counted by owner, when the board does not list them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<OwnerCount>,
}

/// A pod on a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodDot {
    /// `namespace/name`.
    pub name: String,
    pub owner: Option<String>,
    pub running: bool,
    /// Run by a DaemonSet, or a static pod.
    pub daemon: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerCount {
    /// `namespace/controller`, `other` for the rest, `(none)` for bare pods.
    pub owner: String,
    pub pods: usize,
}

/// Pods waiting for a node, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub total: usize,
    /// The oldest first, at most [`LIST_PENDING_UP_TO`].
    pub pods: Vec<PendingPod>,
    /// Every pending pod counted by reason, the most common first.
    pub by_reason: Vec<ReasonCount>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingPod {
    pub name: String,
    pub owner: Option<String>,
    /// When it was created, on the daemon's clock.
    pub since: f64,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasonCount {
    pub reason: String,
    pub pods: usize,
}

/// A NodePool's nodes against its limits (node capacity, launching nodes included, as the
/// loop counts it when it checks a limit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolUsage {
    pub name: String,
    pub nodes: i64,
    pub cpu: i64,
    pub memory: i64,
    pub limit_nodes: Option<i64>,
    /// Millicores.
    pub limit_cpu: Option<i64>,
    /// Bytes.
    pub limit_memory: Option<i64>,
    pub cost: Cost,
}

#[cfg(test)]
mod tests;
