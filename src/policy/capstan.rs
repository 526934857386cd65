//! capstan's own kinds (`capstan.io/v1alpha1`): ClusterPolicy, Fleet and Guardrails.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::GoDuration;
use super::meta::ObjectMeta;
use super::quantity::Quantity;

pub const API_VERSION: &str = "capstan.io/v1alpha1";

/// Cluster-wide behaviour of the capacity loop. One per cluster: `base/policy.yaml`, optionally
/// overridden field by field in `clusters/<name>/policy.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterPolicy {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ClusterPolicySpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterPolicySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batching: Option<Batching>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolidation: Option<Consolidation>,
    /// Spare capacity kept free so that new pods start without waiting for a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headroom: Option<Headroom>,
    /// Ceilings over all NodePools of the cluster together (`cpu`, `memory`, `nodes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<BTreeMap<String, Quantity>>,
    /// Decide and record, but launch and terminate nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Delete state-store InstanceGroups that carry capstan's ownership label but are no longer
    /// in the repository. Off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_instance_groups: Option<bool>,
    /// When the cluster counts as healthy for a fleet rollout's soak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// The thresholds of the cluster's health, which a fleet rollout's soak and halt are judged by.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Health {
    /// A pod waiting for capacity longer than this under the revision in force makes the cluster
    /// unhealthy (default 5m; a node is Ready about 2 minutes after launch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending_time: Option<GoDuration>,
}

/// The provisioning batch window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Batching {
    /// A pass starts this long after the last new pending pod (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_duration: Option<GoDuration>,
    /// …and at most this long after the first (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<GoDuration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Consolidation {
    /// A node whose requested cpu and memory are both below this fraction (0–1) of its
    /// allocatable is a consolidation candidate; unset means Karpenter's behaviour (any node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization_threshold: Option<f64>,
    /// No voluntary disruption of a node younger than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_node_lifetime: Option<GoDuration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Headroom {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// The NodePool the headroom is kept in; the highest-weight pool when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_pool: Option<String>,
    /// Keep the headroom only from each fire of this five-field cron schedule …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<super::meta::CronSchedule>,
    /// … for this long (required with `schedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<GoDuration>,
}

/// The clusters a config repository serves and the order a revision rolls out to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fleet {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: FleetSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetSpec {
    pub clusters: Vec<FleetCluster>,
    #[serde(default)]
    pub waves: Vec<Wave>,
    /// No cluster takes a revision that changes its policy while set; halts and rollbacks still
    /// happen. Takes effect from the newest accepted commit, without a rollout of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// A cluster whose status has not changed for this long, as seen by the reader, is not
    /// healthy (default 2m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_timeout: Option<GoDuration>,
    /// Approvals for waves with `requireApproval`: a wave may take revisions up to the commit
    /// named. Read from the newest accepted commit, without a rollout of its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
}

/// Lets a wave that requires approval take revisions up to and including a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Approval {
    pub wave: u32,
    /// The commit id (full, or at least 7 hex digits).
    pub revision: String,
    /// Why, for the record; Git keeps who and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetCluster {
    /// The folder under `clusters/`.
    pub name: String,
    /// The kOps cluster name: the folder in the state store, e.g. `dev.example.com`.
    pub kops_name: String,
    /// `s3://bucket[/prefix]` or `file:///path`.
    pub state_store: String,
    pub region: String,
    /// The rollout wave; wave 0 goes first.
    #[serde(default)]
    pub wave: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Wave {
    pub wave: u32,
    /// How long every cluster of this wave must stay healthy on a revision before the next wave
    /// takes it.
    pub soak_time: GoDuration,
    /// The wave takes a revision only once an entry of `spec.approvals` covers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_approval: Option<bool>,
}

/// Rules `capstan validate` enforces. The built-in set ships with capstan; a repository's
/// `guardrails.yaml` may tighten it, and loosen a rule only under `spec.relax` with a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Guardrails {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: GuardrailsSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardrailsSpec {
    /// Every NodePool must set `spec.limits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_node_pool_limits: Option<bool>,
    /// A NodePool that may launch spot must allow at least this many instance types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_spot_instance_types: Option<u32>,
    /// Instance families no NodePool may allow (`t2`, `m4`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbidden_instance_families: Vec<String>,
    /// The most cpu any one cluster may reach (its ClusterPolicy or NodePool limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cluster_cpu: Option<Quantity>,
    /// Per-cluster cpu ceilings, by cluster folder name; the lower of this and `maxClusterCpu`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cluster_cpu: BTreeMap<String, Quantity>,
    /// Limits on what `capstan simulate` shows for the head revision; a run that crosses one
    /// fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulation: Option<SimulationGuardrails>,
    /// Built-in rules this repository loosens, each with the reason on record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relax: Vec<Relaxation>,
}

/// One built-in guardrail loosened by a repository, with why. Git keeps who and when.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Relaxation {
    /// The built-in rule: `requireNodePoolLimits`, `minSpotInstanceTypes` or
    /// `forbiddenInstanceFamilies`.
    pub rule: String,
    /// `minSpotInstanceTypes` only: the lower minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u32>,
    /// `forbiddenInstanceFamilies` only: the built-in families to allow again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Why the rule does not fit this repository (required, not empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Outcome guardrails: limits on a simulated replay of a trace under the head revision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimulationGuardrails {
    /// The most the total cost may rise over the base revision's, in percent (`0` allows no
    /// rise; a negative value requires a saving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_increase_percent: Option<f64>,
    /// The longest the 99th percentile of pods' pending time may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending_p99: Option<GoDuration>,
    /// The most nodes that may be disrupted per hour of the trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_disruptions_per_hour: Option<f64>,
    /// The most pods that may never get a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pods_never_scheduled: Option<u64>,
}
