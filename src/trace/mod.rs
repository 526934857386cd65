//! Workload traces (`capstan.io/v1alpha1`, kind `Trace`): what a cluster runs and what happens
//! to it over time, replayed by `capstan simulate` under two policy revisions.
//!
//! ```yaml
//! apiVersion: capstan.io/v1alpha1
//! kind: Trace
//! metadata: {name: inflate}
//! spec:
//!   start: 2026-01-05T00:00:00Z  # when hour 0 is (optional; this is the default)
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
use std::collections::HashMap;

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
/// A trace's hour 0 when it does not say: Monday 2026-01-05 00:00 UTC (seconds since the epoch).
pub const DEFAULT_START: u64 = 1_767_571_200;
/// The earliest and latest start accepted: the years 2000 to 2100.
pub const START_RANGE: std::ops::Range<i64> = 946_684_800..4_102_444_800;

/// The most pods a trace may ask for at once (replicas and Job parallelism summed).
pub const MAX_PODS_AT_ONCE: u64 = 20_000;
/// The most nodes a trace may start with.
pub const MAX_START_NODES: u64 = 2_000;

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
    /// When the trace's hour 0 is (RFC 3339); it places the trace in the week for disruption
    /// budgets' schedules. Default: [`DEFAULT_START`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<chrono::DateTime<chrono::Utc>>,
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimedEvent {
    /// Time since the start of the trace.
    pub at: GoDuration,
    #[serde(flatten)]
    pub action: Action,
}

/// An event as written: `at` and exactly one action; any other key is refused.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEvent {
    at: GoDuration,
    scale: Option<Scale>,
    create: Option<Value>,
    delete: Option<ObjectRef>,
    interrupt: Option<Interrupt>,
    shortage: Option<Shortage>,
}

impl<'de> Deserialize<'de> for TimedEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = RawEvent::deserialize(d)?;
        let mut actions: Vec<Action> = [
            r.scale.map(Action::Scale),
            r.create.map(Action::Create),
            r.delete.map(Action::Delete),
            r.interrupt.map(Action::Interrupt),
            r.shortage.map(Action::Shortage),
        ]
        .into_iter()
        .flatten()
        .collect();
        match actions.len() {
            1 => Ok(TimedEvent { at: r.at, action: actions.remove(0) }),
            0 => {
                Err(serde::de::Error::custom("an event needs one action: scale, create, delete, interrupt or shortage"))
            }
            n => Err(serde::de::Error::custom(format!("an event holds one action, this one {n}; split it"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// What one object asks for, for [`Trace::peak_pods`].
enum Asked {
    Replicas(u64),
    Job { parallelism: u64, lasts: u64 },
    Gone,
}

/// The object's key and what it asks for; `None` for kinds without pods of their own.
fn asked(v: &Value) -> Option<((String, String, String), Asked)> {
    let kind = v["kind"].as_str()?;
    let ns = v["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
    let key = (kind.to_string(), ns, v["metadata"]["name"].as_str().unwrap_or_default().to_string());
    let spec = &v["spec"];
    let what = match kind {
        "Deployment" | "StatefulSet" => Asked::Replicas(spec["replicas"].as_u64().unwrap_or(1)),
        "Job" => {
            let parallelism = spec["parallelism"].as_u64().unwrap_or(1);
            let completions = spec["completions"].as_u64().unwrap_or(parallelism);
            let runtime = v["metadata"]["annotations"][POD_RUNTIME]
                .as_str()
                .and_then(GoDuration::parse)
                .map_or(DEFAULT_POD_RUNTIME_SECS, |d| d.duration().as_secs());
            let waves = completions.div_ceil(parallelism.max(1));
            Asked::Job { parallelism: parallelism.min(completions), lasts: runtime.saturating_mul(waves) }
        }
        _ => return None,
    };
    Some((key, what))
}

impl Trace {
    /// An empty trace of `duration` named `name`.
    pub fn new(name: &str, duration: GoDuration) -> Trace {
        Trace {
            api_version: API_VERSION.to_string(),
            kind: KIND.to_string(),
            metadata: TraceMeta { name: name.to_string(), description: None },
            spec: TraceSpec { start: None, duration, nodes: Vec::new(), workloads: Vec::new(), events: Vec::new() },
        }
    }

    /// When the trace's hour 0 is, as time since the epoch.
    pub fn start(&self) -> std::time::Duration {
        let secs = self.spec.start.map_or(DEFAULT_START, |t| t.timestamp().max(0) as u64);
        std::time::Duration::from_secs(secs)
    }

    /// The most pods the trace asks for at once: Deployment and StatefulSet replicas and the
    /// parallelism of Jobs while they run (at least their pods' runtime for each wave of
    /// `parallelism` completions), summed at the busiest moment. DaemonSet pods, one per node,
    /// are not counted.
    pub fn peak_pods(&self) -> u64 {
        type Key = (String, String, String);
        let mut replicas: HashMap<Key, u64> = HashMap::new();
        let mut jobs: HashMap<Key, (u64, u64)> = HashMap::new();
        let (mut now, mut peak) = (0u64, 0u64);
        let mut apply = |t: u64, change: Option<(Key, Asked)>, replicas: &mut HashMap<Key, u64>, now: &mut u64| {
            let ended: Vec<Key> = jobs.iter().filter(|(_, (end, _))| *end <= t).map(|(k, _)| k.clone()).collect();
            for k in ended {
                *now -= jobs.remove(&k).map_or(0, |(_, p)| p);
            }
            match change {
                Some((key, Asked::Replicas(n))) => {
                    *now = *now + n - replicas.insert(key, n).unwrap_or(0);
                }
                Some((key, Asked::Job { parallelism, lasts })) => {
                    let old = jobs.insert(key, (t.saturating_add(lasts), parallelism)).map_or(0, |(_, p)| p);
                    *now = *now + parallelism - old;
                }
                Some((key, Asked::Gone)) => {
                    *now -= replicas.remove(&key).unwrap_or(0) + jobs.remove(&key).map_or(0, |(_, p)| p);
                }
                None => {}
            }
        };
        for v in &self.spec.workloads {
            apply(0, asked(v), &mut replicas, &mut now);
            peak = peak.max(now);
        }
        for e in &self.spec.events {
            let t = e.at.duration().as_secs();
            let change = match &e.action {
                Action::Scale(s) => Some((
                    (s.kind.clone(), s.namespace.clone(), s.name.clone()),
                    Asked::Replicas(u64::from(s.replicas)),
                )),
                Action::Create(v) => asked(v),
                Action::Delete(r) => Some(((r.kind.clone(), r.namespace.clone(), r.name.clone()), Asked::Gone)),
                Action::Interrupt(_) | Action::Shortage(_) => None,
            };
            apply(t, change, &mut replicas, &mut now);
            peak = peak.max(now);
        }
        peak
    }

    /// The trace as YAML, as `load` reads it back.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("a trace serializes")
    }
}
