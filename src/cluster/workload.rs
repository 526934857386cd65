//! Workloads read from Kubernetes YAML (Deployments, DaemonSets, PodDisruptionBudgets) for the
//! simulated cluster: `examples/workloads/*.yaml` load exactly as `kubectl apply` would take them.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use thiserror::Error;

use super::convert::{self, ConvertError};
use super::model::DO_NOT_DISRUPT;
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
    fn from_k8s(v: &IntOrString) -> Option<Amount> {
        match v {
            IntOrString::Int(n) => Some(Amount::Count(*n as i64)),
            IntOrString::String(s) => match s.strip_suffix('%') {
                Some(p) => p.parse().ok().map(Amount::Percent),
                None => s.parse().ok().map(Amount::Count),
            },
        }
    }

    /// The amount out of `total`, rounding a percentage up as Kubernetes does.
    pub fn of(self, total: i64) -> i64 {
        match self {
            Amount::Count(n) => n,
            Amount::Percent(p) => (total * p + 99) / 100,
        }
    }
}

/// A Deployment's pod template.
#[derive(Debug, Clone)]
pub struct DeploymentSpec {
    pub namespace: String,
    pub name: String,
    pub replicas: u32,
    /// The template pod (its name is unused).
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
    DaemonSet(DaemonSetSpec),
    Pdb(PdbSpec),
}

fn ns(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.namespace.clone().unwrap_or_else(|| "default".to_string())
}

/// Parses every document of `text`; `source_name` names the file in errors. Kinds other than
/// Deployment, DaemonSet and PodDisruptionBudget are skipped.
pub fn parse(source_name: &str, text: &str) -> Result<Vec<Workload>, WorkloadError> {
    let mut out = Vec::new();
    for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let parse_err = |e: serde_yaml::Error| WorkloadError::Parse {
            source_name: source_name.to_string(),
            index: index + 1,
            message: e.to_string(),
        };
        let value = serde_yaml::Value::deserialize(doc).map_err(parse_err)?;
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
        let template_err = |name: &str, error| WorkloadError::Template {
            source_name: source_name.to_string(),
            kind: kind.clone(),
            name: name.to_string(),
            error,
        };
        match kind.as_str() {
            "Deployment" => {
                let d: Deployment = serde_yaml::from_value(value).map_err(parse_err)?;
                let name = d.metadata.name.clone().unwrap_or_default();
                let spec = d.spec.unwrap_or_default();
                let meta = spec.template.metadata.unwrap_or_default();
                let labels = meta.labels.clone().unwrap_or_default();
                let pod_spec = spec.template.spec.unwrap_or_default();
                let template =
                    convert::pod(&ns(&d.metadata), &name, &labels, &pod_spec).map_err(|e| template_err(&name, e))?;
                let do_not_disrupt =
                    meta.annotations.as_ref().and_then(|a| a.get(DO_NOT_DISRUPT)).is_some_and(|v| v == "true");
                out.push(Workload::Deployment(DeploymentSpec {
                    namespace: ns(&d.metadata),
                    name,
                    replicas: spec.replicas.unwrap_or(1).max(0) as u32,
                    template,
                    do_not_disrupt,
                }));
            }
            "DaemonSet" => {
                let d: DaemonSet = serde_yaml::from_value(value).map_err(parse_err)?;
                let name = d.metadata.name.clone().unwrap_or_default();
                let spec = d.spec.unwrap_or_default();
                let labels = spec.template.metadata.and_then(|m| m.labels).unwrap_or_default();
                let template = convert::pod(&ns(&d.metadata), &name, &labels, &spec.template.spec.unwrap_or_default())
                    .map_err(|e| template_err(&name, e))?;
                out.push(Workload::DaemonSet(DaemonSetSpec { namespace: ns(&d.metadata), name, template }));
            }
            "PodDisruptionBudget" => {
                let p: PodDisruptionBudget = serde_yaml::from_value(value).map_err(parse_err)?;
                let spec = p.spec.unwrap_or_default();
                let name = p.metadata.name.clone().unwrap_or_default();
                let selector =
                    convert::selector(spec.selector.as_ref(), "spec.selector").map_err(|e| template_err(&name, e))?;
                out.push(Workload::Pdb(PdbSpec {
                    namespace: ns(&p.metadata),
                    name,
                    selector,
                    min_available: spec.min_available.as_ref().and_then(Amount::from_k8s),
                    max_unavailable: spec.max_unavailable.as_ref().and_then(Amount::from_k8s),
                }));
            }
            _ => {}
        }
    }
    Ok(out)
}
