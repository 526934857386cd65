//! What a policy change does to capacity: a workload trace replayed on the simulated cluster
//! and EC2 (the world of `capstan demo`, the same capacity loop) once under each revision's
//! effective policy, measured side by side, and checked against the outcome guardrails.
//!
//! ```text
//! Trace ─┬─ replay(base policy) ─► Run ─┐
//!        └─ replay(head policy) ─► Run ─┴─► ClusterOutcome (+ breaches) ─► text | markdown | json | html
//! ```

mod chart;
pub mod guard;
pub mod html;
pub mod markdown;
pub mod measure;
pub mod replay;
pub mod text;

use std::collections::BTreeMap;

use serde::Serialize;

/// Pending time of pods, in seconds: from creation to binding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// The cluster at one moment of the replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Seconds since the start of the trace.
    pub t: u64,
    /// Nodes capstan launched and static nodes, running.
    pub nodes: usize,
    /// What those nodes cost per hour, in USD.
    pub cost_per_hour: f64,
    /// Pods waiting for a node.
    pub pending_pods: usize,
    /// Nodes disrupted (cordoned for consolidation, emptiness, drift, expiry) since the last sample.
    pub disruptions: usize,
}

/// One revision's replay, measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// The revision whose policy governed the replay.
    pub revision: String,
    /// Total cost over the trace, in USD.
    pub cost_usd: f64,
    /// Average cost per hour, in USD.
    pub cost_per_hour: f64,
    pub nodes_avg: f64,
    pub nodes_peak: usize,
    /// Node-hours by instance type.
    pub instance_types: BTreeMap<String, f64>,
    /// Node-hours by capacity type (`on-demand`, `spot`, `static`).
    pub capacity_types: BTreeMap<String, f64>,
    pub pending: Percentiles,
    /// Pods that got a node.
    pub pods_scheduled: usize,
    /// Pods that never got one: removed while waiting, or still waiting at the end.
    pub pods_never_scheduled: usize,
    /// Instances launched (each once, however often its launch was asked for).
    pub launches: usize,
    /// Nodes disrupted, by reason (`empty`, `underutilized`, `drifted`, `expired`…).
    pub disruptions: BTreeMap<String, usize>,
    /// Pods evicted by drains.
    pub evicted_pods: u64,
    /// Pods that a NodePool's or the cluster's limits kept from a node (each pod once).
    pub limits_hit: usize,
    /// Spot instances interrupted by the trace.
    pub interruptions: usize,
    /// The cluster over time, a sample a minute (less often for traces over a day, see
    /// [`measure::sample_every`]).
    pub series: Vec<Sample>,
}

impl Run {
    /// Disruptions of every reason.
    pub fn disrupted(&self) -> usize {
        self.disruptions.values().sum()
    }

    /// Disruptions per hour over a trace of `seconds`.
    pub fn disruptions_per_hour(&self, seconds: u64) -> f64 {
        self.disrupted() as f64 * 3600.0 / seconds.max(1) as f64
    }
}

/// A guardrail of `guardrails.yaml`'s `spec.simulation` that the head broke.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Breach {
    /// The rule's field: `maxCostIncreasePercent`, `maxPendingP99`, `maxDisruptionsPerHour`,
    /// `maxPodsNeverScheduled`.
    pub rule: String,
    pub limit: String,
    pub actual: String,
    /// A sentence for the reviewer.
    pub message: String,
}

/// One cluster replayed under both revisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOutcome {
    pub cluster: String,
    pub base: Run,
    pub head: Run,
    pub breaches: Vec<Breach>,
}

/// The trace that was replayed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceInfo {
    pub name: String,
    /// Its length in seconds.
    pub seconds: u64,
    pub events: usize,
    /// Pods asked for at the busiest moment the trace describes (replicas summed).
    pub peak_pods: u64,
}

/// One side of the comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Side {
    /// As given on the command line.
    pub rev: String,
    /// The commit it resolved to.
    pub sha: String,
}

/// Everything `capstan simulate` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub trace: TraceInfo,
    pub base: Side,
    pub head: Side,
    pub clusters: Vec<ClusterOutcome>,
}

impl Report {
    /// Every breach of every cluster.
    pub fn breaches(&self) -> impl Iterator<Item = (&str, &Breach)> {
        self.clusters.iter().flat_map(|c| c.breaches.iter().map(move |b| (c.cluster.as_str(), b)))
    }
}

/// The relative change from `base` to `head` in percent; `None` when base is zero.
pub fn change_pct(base: f64, head: f64) -> Option<f64> {
    (base.abs() > f64::EPSILON).then(|| (head - base) / base * 100.0)
}
