//! Workloads read from Kubernetes YAML (Deployments, StatefulSets, Jobs, DaemonSets,
//! PodDisruptionBudgets) for the
//! simulated cluster: `examples/workloads/*.yaml` load exactly as `kubectl apply` would take them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use super::convert::{self, ConvertError};
use super::model::DO_NOT_DISRUPT;
use crate::policy::duration::GoDuration;
use crate::scheduling::pod::{Pod, Selector};

#[derive(Debug, Error)]
pub enum WorkloadError {
    /// The text is not YAML, or a document does not match its kind's schema.
    #[error("{source_name}: document {index}: {message}")]
    Parse { source_name: String, index: usize, message: String },
    /// A pod template that cannot be scheduled as written.
    #[error("{source_name}: {kind} {name}: {error}")]
    Template { source_name: String, kind: String, name: String, error: ConvertError },
}

/// A count or a percentage (`minAvailable`, `maxUnavailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Count(i64),
    Percent(i64),
}

impl Amount {
    /// A count (at least 0) or a percentage (0% to 100%), as the API server accepts them.
    fn from_k8s(v: &IntOrString) -> Result<Amount, String> {
        let bad = || format!("{v:?} is not a count of at least 0 or a percentage from 0% to 100%");
        match v {
            IntOrString::Int(n) if *n >= 0 => Ok(Amount::Count(i64::from(*n))),
            IntOrString::Int(_) => Err(bad()),
            IntOrString::String(s) => match s.strip_suffix('%') {
                Some(p) => p.parse().ok().filter(|p| (0..=100).contains(p)).map(Amount::Percent).ok_or_else(bad),
                None => {
                    s.parse().ok().filter(|n| (0..=i64::from(i32::MAX)).contains(n)).map(Amount::Count).ok_or_else(bad)
                }
            },
        }
    }

    /// The amount out of `total`, rounding a percentage up as Kubernetes does.
    pub fn of(self, total: i64) -> i64 {
        match self {
            Amount::Count(n) => n,
            Amount::Percent(p) => total.saturating_mul(p).saturating_add(99) / 100,
        }
    }
}

/// The annotation giving how long each pod of a Job runs before it succeeds: a Kubernetes Job
/// does not say how long its work takes.
pub const POD_RUNTIME: &str = "capstan.io/pod-runtime";
/// How long a Job's pod runs when its Job has no [`POD_RUNTIME`].
pub const DEFAULT_POD_RUNTIME_SECS: u64 = 300;
/// The longest [`POD_RUNTIME`]: 31 days.
pub const MAX_POD_RUNTIME_SECS: u64 = 31 * 24 * 3600;

/// How a controller of replicas names and orders its pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaKind {
    /// Pods with random suffixes, created and removed in any order.
    Deployment,
    /// Pods `name-0`, `name-1`…; with the default `OrderedReady` policy one is created only
    /// when those before it run, and scale-down removes the highest ordinal first.
    StatefulSet { ordered: bool },
}

impl ReplicaKind {
    pub fn label(self) -> &'static str {
        match self {
            ReplicaKind::Deployment => "Deployment",
            ReplicaKind::StatefulSet { .. } => "StatefulSet",
        }
    }
}

/// A Deployment's or StatefulSet's pod template.
#[derive(Debug, Clone)]
pub struct DeploymentSpec {
    pub kind: ReplicaKind,
    pub namespace: String,
    pub name: String,
    pub replicas: u32,
    /// The template pod (its name is unused).
    pub template: Pod,
    pub do_not_disrupt: bool,
}

/// A Job: `parallelism` pods at a time until `completions` have succeeded, each running for
/// `runtime`.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub namespace: String,
    pub name: String,
    pub parallelism: u32,
    pub completions: u32,
    pub runtime: std::time::Duration,
    pub template: Pod,
    pub do_not_disrupt: bool,
}

#[derive(Debug, Clone)]
pub struct DaemonSetSpec {
    pub namespace: String,
    pub name: String,
    pub template: Pod,
}

#[derive(Debug, Clone)]
pub struct PdbSpec {
    pub namespace: String,
    pub name: String,
    pub selector: Selector,
    pub min_available: Option<Amount>,
    pub max_unavailable: Option<Amount>,
}

#[derive(Debug, Clone)]
pub enum Workload {
    Deployment(DeploymentSpec),
    Job(JobSpec),
    DaemonSet(DaemonSetSpec),
    Pdb(PdbSpec),
}

/// The kinds the simulated cluster runs.
pub const KINDS: [&str; 5] = ["Deployment", "StatefulSet", "Job", "DaemonSet", "PodDisruptionBudget"];

impl Workload {
    /// Replicas asked for (Deployments, StatefulSets; a Job's parallelism).
    pub fn replicas(&self) -> Option<u32> {
        match self {
            Workload::Deployment(d) => Some(d.replicas),
            Workload::Job(j) => Some(j.parallelism.max(j.completions)),
            _ => None,
        }
    }
}

fn ns(meta: &ObjectMeta) -> String {
    meta.namespace.clone().unwrap_or_else(|| "default".to_string())
}

/// Parses every document of `text`; `source_name` names the file in errors. Kinds other than
/// those in [`KINDS`] are skipped.
pub fn parse(source_name: &str, text: &str) -> Result<Vec<Workload>, WorkloadError> {
    let mut out = Vec::new();
    for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let parse_err =
            |message: String| WorkloadError::Parse { source_name: source_name.to_string(), index: index + 1, message };
        let value = serde_yaml::Value::deserialize(doc).map_err(|e| parse_err(e.to_string()))?;
        let value = serde_json::to_value(value).map_err(|e| parse_err(e.to_string()))?;
        out.extend(from_value(source_name, index + 1, value)?);
    }
    Ok(out)
}

fn template_parts(
    t: Option<k8s_openapi::api::core::v1::PodTemplateSpec>,
) -> (BTreeMap<String, String>, bool, k8s_openapi::api::core::v1::PodSpec) {
    let t = t.unwrap_or_default();
    let meta = t.metadata.unwrap_or_default();
    let do_not_disrupt = meta.annotations.as_ref().and_then(|a| a.get(DO_NOT_DISRUPT)).is_some_and(|v| v == "true");
    (meta.labels.unwrap_or_default(), do_not_disrupt, t.spec.unwrap_or_default())
}

/// One Kubernetes object as a workload; `None` for a kind the simulated cluster does not run.
/// `index` is the document's place in its file, for errors.
pub fn from_value(source_name: &str, index: usize, value: Value) -> Result<Option<Workload>, WorkloadError> {
    let parse_err = |e: serde_json::Error| WorkloadError::Parse {
        source_name: source_name.to_string(),
        index,
        message: e.to_string(),
    };
    let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
    let template_err = |name: &str, error| WorkloadError::Template {
        source_name: source_name.to_string(),
        kind: kind.clone(),
        name: name.to_string(),
        error,
    };
    let count = |n: Option<i32>, default: i32, meta: &ObjectMeta, field: &str| {
        let n = n.unwrap_or(default);
        u32::try_from(n).map_err(|_| {
            let message = format!("{n} is negative");
            template_err(meta.name.as_deref().unwrap_or_default(), ConvertError { field: field.to_string(), message })
        })
    };
    let pod = |meta: &ObjectMeta, labels: &BTreeMap<String, String>, spec: &k8s_openapi::api::core::v1::PodSpec| {
        let name = meta.name.clone().unwrap_or_default();
        convert::pod(&ns(meta), &name, labels, spec).map_err(|e| template_err(&name, e))
    };
    let w = match kind.as_str() {
        "Deployment" => {
            let d: Deployment = serde_json::from_value(value).map_err(parse_err)?;
            let spec = d.spec.clone().unwrap_or_default();
            let (labels, do_not_disrupt, pod_spec) = template_parts(Some(spec.template));
            Workload::Deployment(DeploymentSpec {
                kind: ReplicaKind::Deployment,
                namespace: ns(&d.metadata),
                name: d.metadata.name.clone().unwrap_or_default(),
                replicas: count(spec.replicas, 1, &d.metadata, "spec.replicas")?,
                template: pod(&d.metadata, &labels, &pod_spec)?,
                do_not_disrupt,
            })
        }
        "StatefulSet" => {
            let d: StatefulSet = serde_json::from_value(value).map_err(parse_err)?;
            let spec = d.spec.clone().unwrap_or_default();
            let ordered = spec.pod_management_policy.as_deref() != Some("Parallel");
            let (labels, do_not_disrupt, pod_spec) = template_parts(Some(spec.template));
            Workload::Deployment(DeploymentSpec {
                kind: ReplicaKind::StatefulSet { ordered },
                namespace: ns(&d.metadata),
                name: d.metadata.name.clone().unwrap_or_default(),
                replicas: count(spec.replicas, 1, &d.metadata, "spec.replicas")?,
                template: pod(&d.metadata, &labels, &pod_spec)?,
                do_not_disrupt,
            })
        }
        "Job" => {
            let j: Job = serde_json::from_value(value).map_err(parse_err)?;
            let spec = j.spec.clone().unwrap_or_default();
            let runtime = runtime(&j.metadata).map_err(|message| {
                template_err(
                    j.metadata.name.as_deref().unwrap_or_default(),
                    ConvertError { field: format!("metadata.annotations.{POD_RUNTIME}"), message },
                )
            })?;
            let parallelism = count(spec.parallelism, 1, &j.metadata, "spec.parallelism")?;
            let completions = count(spec.completions, parallelism as i32, &j.metadata, "spec.completions")?;
            let (labels, do_not_disrupt, pod_spec) = template_parts(Some(spec.template));
            Workload::Job(JobSpec {
                namespace: ns(&j.metadata),
                name: j.metadata.name.clone().unwrap_or_default(),
                parallelism,
                completions,
                runtime,
                template: pod(&j.metadata, &labels, &pod_spec)?,
                do_not_disrupt,
            })
        }
        "DaemonSet" => {
            let d: DaemonSet = serde_json::from_value(value).map_err(parse_err)?;
            let spec = d.spec.clone().unwrap_or_default();
            let (labels, _, pod_spec) = template_parts(Some(spec.template));
            Workload::DaemonSet(DaemonSetSpec {
                namespace: ns(&d.metadata),
                name: d.metadata.name.clone().unwrap_or_default(),
                template: pod(&d.metadata, &labels, &pod_spec)?,
            })
        }
        "PodDisruptionBudget" => {
            let p: PodDisruptionBudget = serde_json::from_value(value).map_err(parse_err)?;
            let spec = p.spec.unwrap_or_default();
            let name = p.metadata.name.clone().unwrap_or_default();
            let selector =
                convert::selector(spec.selector.as_ref(), "spec.selector").map_err(|e| template_err(&name, e))?;
            let amount = |v: Option<&IntOrString>, field: &str| {
                v.map(Amount::from_k8s)
                    .transpose()
                    .map_err(|message| template_err(&name, ConvertError { field: field.to_string(), message }))
            };
            let min_available = amount(spec.min_available.as_ref(), "spec.minAvailable")?;
            let max_unavailable = amount(spec.max_unavailable.as_ref(), "spec.maxUnavailable")?;
            Workload::Pdb(PdbSpec { namespace: ns(&p.metadata), name, selector, min_available, max_unavailable })
        }
        _ => return Ok(None),
    };
    Ok(Some(w))
}

/// A Job's pod runtime from its [`POD_RUNTIME`] annotation.
fn runtime(meta: &ObjectMeta) -> Result<std::time::Duration, String> {
    match meta.annotations.as_ref().and_then(|a| a.get(POD_RUNTIME)) {
        None => Ok(std::time::Duration::from_secs(DEFAULT_POD_RUNTIME_SECS)),
        Some(text) => GoDuration::parse(text)
            .map(|d| d.duration())
            .filter(|d| !d.is_zero() && d.as_secs() <= MAX_POD_RUNTIME_SECS)
            .ok_or_else(|| {
                format!("invalid duration {text:?}; write whole hours, minutes and seconds from 1s to 744h, e.g. 45m")
            }),
    }
}
