//! `POST /sim/scale?deployment=D&replicas=N[&namespace=NS]`: scales a Deployment of the simulated
//! cluster. Every simulated pod costs memory and scheduling time, so replicas are bounded by
//! [`MAX_REPLICAS`]; the names must be Kubernetes names, and any other parameter is refused.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;

use super::shared::Shared;
use crate::cluster::workload::Workload;

/// The most replicas one simulated Deployment may have (in `/sim/scale` and in `sim.workloads`).
pub const MAX_REPLICAS: u32 = 10_000;

/// What a scale request asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct Scale {
    pub namespace: String,
    pub deployment: String,
    pub replicas: u32,
}

/// The request's parameters, checked: the error is the message a 400 carries.
pub fn parse(params: &[(String, String)]) -> Result<Scale, String> {
    let usage = "give deployment=NAME&replicas=N (and namespace=NS, default `default`)";
    let mut namespace = None;
    let mut deployment = None;
    let mut replicas = None;
    for (key, value) in params {
        let slot = match key.as_str() {
            "namespace" => &mut namespace,
            "deployment" => &mut deployment,
            "replicas" => &mut replicas,
            other => return Err(format!("unknown parameter `{}`; {usage}", clip(other))),
        };
        if slot.replace(value.as_str()).is_some() {
            return Err(format!("parameter `{key}` is given twice; {usage}"));
        }
    }
    let (Some(deployment), Some(replicas)) = (deployment, replicas) else { return Err(usage.into()) };
    let namespace = namespace.unwrap_or("default");
    name("namespace", namespace, 63, false)?;
    name("deployment", deployment, 253, true)?;
    let replicas = match replicas.parse::<u64>() {
        Ok(n) if n <= u64::from(MAX_REPLICAS) => n as u32,
        Ok(_) => return Err(format!("replicas={}: at most {MAX_REPLICAS} per Deployment", clip(replicas))),
        Err(_) => {
            return Err(format!("replicas=`{}` is not a whole number from 0 to {MAX_REPLICAS}", clip(replicas)));
        }
    };
    Ok(Scale { namespace: namespace.to_string(), deployment: deployment.to_string(), replicas })
}

/// A Kubernetes name: lower-case letters, digits and `-` (and `.` when `dots`), starting and
/// ending with a letter or digit, at most `max` characters.
fn name(field: &str, value: &str, max: usize, dots: bool) -> Result<(), String> {
    let inner = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok = !value.is_empty()
        && value.len() <= max
        && value.chars().all(inner)
        && edge(value.chars().next())
        && edge(value.chars().last());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field}=`{}` is not a Kubernetes name (lower-case letters, digits and `-`, at most {max} characters)",
            clip(value)
        ))
    }
}

/// At most 64 characters of what a client sent, for an error message.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The handler: 400 for a bad request, 404 without the simulated cluster or Deployment.
pub async fn handler(
    State(s): State<Arc<Shared>>,
    Query(params): Query<Vec<(String, String)>>,
) -> (StatusCode, String) {
    let Some(sim) = &s.sim else {
        return (StatusCode::NOT_FOUND, "only the simulated cluster can be driven\n".into());
    };
    let scale = match parse(&params) {
        Ok(s) => s,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let Scale { namespace, deployment, replicas } = &scale;
    match sim.scale(namespace, deployment, *replicas) {
        Ok(()) => (StatusCode::OK, format!("deployment {namespace}/{deployment} scaled to {replicas}\n")),
        Err(e) => (StatusCode::NOT_FOUND, format!("{e}\n")),
    }
}

/// The first Deployment in `workloads` with more than [`MAX_REPLICAS`], as an error message.
pub fn check_workloads(workloads: &[Workload]) -> Result<(), String> {
    for w in workloads {
        if let Workload::Deployment(d) = w
            && d.replicas > MAX_REPLICAS
        {
            return Err(format!(
                "Deployment {}/{} has {} replicas; the simulated cluster runs at most {MAX_REPLICAS} per Deployment",
                d.namespace, d.name, d.replicas
            ));
        }
    }
    Ok(())
}
