//! What the capacity loop tells the world: a timeline of events (for `capstan demo`, logs and
//! tests), the status page's numbers, and Prometheus metrics.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Serialize;
use serde_json::Value;

use crate::cloud::provider::Instance;
use crate::kops::decisions::Decision;
use crate::rules::Rules;
use crate::scheduling::catalog::Catalog;

/// One thing that happened, at a time on the loop's clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopEvent {
    /// Time since the epoch of the loop's clock.
    #[serde(skip)]
    pub at: Duration,
    /// `scale-up-decision`, `launch`, `node-registered`, `node-ready`, `disruption-decision`,
    /// `cordon`, `evict`, `evict-blocked`, `terminate`, `unschedulable`, …
    pub event: String,
    /// A sentence for people.
    pub message: String,
    pub detail: Value,
}

/// Most recent decisions kept for the status page.
pub const RECENT_DECISIONS: usize = 50;

/// The loop's state for `/status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoopStatus {
    pub revision: String,
    pub pending_pods: usize,
    pub nodes_per_node_pool: BTreeMap<String, usize>,
    /// NodeClaims launched whose node is not initialized yet.
    pub in_flight: Vec<String>,
    /// Nodes being drained.
    pub draining: Vec<String>,
    pub recent_decisions: VecDeque<Decision>,
    pub last_error: Option<String>,
    /// The oldest pod waiting for capacity: when it was created (loop clock) and its name.
    #[serde(skip)]
    pub oldest_pending: Option<(Duration, String)>,
    /// The last launch that failed for lack of any usable offering: when and why.
    #[serde(skip)]
    pub last_unserved: Option<(Duration, String)>,
    /// What the status board is drawn from, as of the last pass: the cloud's instances, the
    /// catalog, the rules in force, and the pods the loop could not place with its reason.
    #[serde(skip)]
    pub seen: Seen,
}

/// The last pass's inputs, shared rather than copied.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The cloud's instances as listed at the start of the pass, with what the pass itself did
    /// to them: instances it launched are added, and those it terminated are `ShuttingDown`.
    pub instances: Arc<Vec<Instance>>,
    pub catalog: Option<Arc<Catalog>>,
    pub rules: Option<Arc<Rules>>,
    /// `namespace/name` → why the loop cannot place the pod: the scheduler found no place for
    /// it, or the launch planned for it failed (or was not carried out, in a dry run).
    pub unplaced: Arc<BTreeMap<String, String>>,
    /// `namespace/name` → what the pending pod waits for, from the latest provisioning verdict:
    /// a NodeClaim launched for it, or the node or launching NodeClaim it was nominated to. A
    /// pending pod is in at most one of `unplaced` and `planned`; pods no longer pending are in
    /// neither. Each map is replaced (a new `Arc`) only when it changes.
    pub planned: Arc<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub nodepool: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TerminationLabels {
    pub nodepool: String,
    pub reason: String,
}

/// Prometheus metrics of the capacity loop.
#[derive(Debug, Clone)]
pub struct LoopMetrics {
    pub launched: Family<PoolLabels, Counter>,
    pub terminated: Family<TerminationLabels, Counter>,
    pub pending_pods: Gauge,
    /// Seconds spent in the scheduler per provisioning pass.
    pub solve_seconds: Histogram,
    /// Seconds from a pod turning unschedulable to the launch request for it.
    pub decision_latency_seconds: Histogram,
    /// Passes run: with passes driven by change, a quiet cluster adds about one per
    /// `wake::IDLE_PASS_BOUND` or disruption poll.
    pub passes: Counter,
}

impl Default for LoopMetrics {
    fn default() -> Self {
        LoopMetrics {
            launched: Family::default(),
            terminated: Family::default(),
            pending_pods: Gauge::default(),
            solve_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            decision_latency_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            passes: Counter::default(),
        }
    }
}

impl LoopMetrics {
    pub fn register(registry: &mut Registry) -> LoopMetrics {
        let m = LoopMetrics::default();
        registry.register("capstan_nodeclaims_launched", "NodeClaims launched, by NodePool", m.launched.clone());
        registry.register(
            "capstan_nodeclaims_terminated",
            "Nodes terminated, by NodePool and reason",
            m.terminated.clone(),
        );
        registry.register("capstan_pending_pods", "Pods waiting for capacity", m.pending_pods.clone());
        registry.register("capstan_solve_seconds", "Time spent in the scheduler per pass", m.solve_seconds.clone());
        registry.register(
            "capstan_decision_latency_seconds",
            "From a pod turning unschedulable to the launch request for it",
            m.decision_latency_seconds.clone(),
        );
        registry.register("capstan_capacity_passes", "Capacity loop passes run", m.passes.clone());
        m
    }
}
