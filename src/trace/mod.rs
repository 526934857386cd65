//! Workload traces (`capstan.io/v1alpha1`, kind `Trace`): what a cluster runs and what happens
//! to it over time, replayed by `capstan simulate` under two policy revisions.
//!
//! ```yaml
//! apiVersion: capstan.io/v1alpha1
//! kind: Trace
//! metadata: {name: inflate}
//! spec:
//!   duration: 10m              # how long the replay runs
//!   nodes: []                  # nodes present at the start that capstan does not manage
//!   workloads: [...]           # Kubernetes objects at the start: Deployment, StatefulSet,
//!                              # Job, DaemonSet, PodDisruptionBudget
//!   events:
//!     - {at: 5s, scale: {name: inflate, replicas: 16}}
//!     - {at: 1h, create: {apiVersion: batch/v1, kind: Job, ...}}
//!     - {at: 2h, delete: {kind: Job, name: nightly}}
//!     - {at: 3h, interrupt: {count: 2}}                     # spot interruption notices
//!     - {at: 4h, shortage: {instanceType: c6g.4xlarge, for: 30m}}
//! ```
//!
//! A Job's pods run for the duration in its `capstan.io/pod-runtime` annotation (default 5m),
//! since a Kubernetes Job does not say how long its work takes.

pub mod load;
pub mod record;
pub mod synth;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::policy::duration::GoDuration;

pub use load::{TraceError, load, parse};

pub const API_VERSION: &str = "capstan.io/v1alpha1";
pub const KIND: &str = "Trace";
pub use crate::cluster::workload::{DEFAULT_POD_RUNTIME_SECS, POD_RUNTIME};
/// The longest trace replayed: 31 days.
pub const MAX_DURATION_SECS: u64 = 31 * 24 * 3600;
/// The most replicas one workload may ask for.
pub const MAX_REPLICAS: u32 = 100_000;
/// The most events a trace may hold.
pub const MAX_EVENTS: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Trace {
    pub api_version: String,
    pub kind: String,
    pub metadata: TraceMeta,
    pub spec: TraceSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TraceMeta {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TraceSpec {
    /// How long the replay runs; events after it are refused.
    pub duration: GoDuration,
    /// Nodes present from the start that no NodePool manages (a kOps `CloudGroup` group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<StartNode>,
    /// Kubernetes objects present at the start, as `kubectl apply` takes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<Value>,
    /// What happens, in time order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<TimedEvent>,
}

/// Nodes of one instance type present from the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartNode {
    pub instance_type: String,
    pub zone: String,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedEvent {
    /// Time since the start of the trace.
    pub at: GoDuration,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// `kubectl scale` of a Deployment or StatefulSet.
    Scale(Scale),
    /// `kubectl apply` of one object (creates or replaces it).
    Create(Value),
    /// `kubectl delete` of one workload.
    Delete(ObjectRef),
    /// EC2 sends spot interruption notices to running spot instances.
    Interrupt(Interrupt),
    /// EC2 has no capacity for an offering (insufficient capacity errors).
    Shortage(Shortage),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scale {
    #[serde(default = "deployment")]
    pub kind: String,
    #[serde(default = "default_ns")]
    pub namespace: String,
    pub name: String,
    pub replicas: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    pub kind: String,
    #[serde(default = "default_ns")]
    pub namespace: String,
    pub name: String,
}

fn deployment() -> String {
    "Deployment".to_string()
}

fn default_ns() -> String {
    "default".to_string()
}

/// Which running spot instances get a notice: `count` of them, oldest first, optionally only of
/// one instance type or zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Interrupt {
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// An offering without capacity; unset fields match every value. Lasts `for`, or to the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Shortage {
    pub instance_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_type: Option<String>,
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub lasts: Option<GoDuration>,
}

impl Trace {
    /// An empty trace of `duration` named `name`.
    pub fn new(name: &str, duration: GoDuration) -> Trace {
        Trace {
            api_version: API_VERSION.to_string(),
            kind: KIND.to_string(),
            metadata: TraceMeta { name: name.to_string(), description: None },
            spec: TraceSpec { duration, nodes: Vec::new(), workloads: Vec::new(), events: Vec::new() },
        }
    }

    /// The trace as YAML, as `load` reads it back.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("a trace serializes")
    }
}
