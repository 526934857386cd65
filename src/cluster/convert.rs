//! Kubernetes pod specs → the scheduler's [`Pod`]. Used for workloads read from YAML (the
//! simulator, `capstan demo`) and for pods read from an API server.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Affinity, NodeSelectorRequirement, PodAffinityTerm as K8sTerm, PodSpec, Toleration as K8sToleration,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::policy::meta::{Labels, TaintEffect};
use crate::policy::nodepool::{Operator, Requirement};
use crate::policy::quantity::Quantity;
use crate::scheduling::pod::{
    Constraints, Pod, PodAffinityTerm, Selector, Toleration, TolerationOperator, TopologySpread, WhenUnsatisfiable,
};
use crate::scheduling::requirements::Requirements;
use crate::scheduling::resources::Resources;

/// A pod spec that cannot be turned into a schedulable pod.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConvertError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ConvertError {
    ConvertError { field: field.into(), message: message.into() }
}

fn requests(map: Option<&BTreeMap<String, K8sQuantity>>, field: &str) -> Result<Resources, ConvertError> {
    let mut parsed = Vec::new();
    for (k, v) in map.into_iter().flatten() {
        let q =
            Quantity::parse(&v.0).ok_or_else(|| err(format!("{field}.{k}"), format!("{:?} is not a quantity", v.0)))?;
        parsed.push((k.as_str(), q));
    }
    Ok(Resources::from_quantities(parsed.iter().map(|(k, q)| (*k, q))))
}

/// The pod's effective requests: the sum over containers, or the largest init container when
/// that is more, per resource; plus one pod slot.
pub fn pod_requests(spec: &PodSpec) -> Result<Resources, ConvertError> {
    let mut total = Resources::default();
    for (i, c) in spec.containers.iter().enumerate() {
        let r = c.resources.as_ref().and_then(|r| r.requests.as_ref().or(r.limits.as_ref()));
        total += &requests(r, &format!("spec.containers[{i}].resources.requests"))?;
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let r = c.resources.as_ref().and_then(|r| r.requests.as_ref().or(r.limits.as_ref()));
        let init = requests(r, &format!("spec.initContainers[{i}].resources.requests"))?;
        total.cpu = total.cpu.max(init.cpu);
        total.memory = total.memory.max(init.memory);
    }
    if let Some(overhead) = &spec.overhead {
        total += &requests(Some(overhead), "spec.overhead")?;
    }
    total.pods = 1;
    Ok(total)
}

fn operator(text: &str, field: &str) -> Result<Operator, ConvertError> {
    Ok(match text {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" => Operator::Gt,
        "Lt" => Operator::Lt,
        other => return Err(err(field, format!("unknown operator {other:?}"))),
    })
}

fn node_requirements(exprs: &[NodeSelectorRequirement], field: &str) -> Result<Requirements, ConvertError> {
    let mut reqs = Vec::new();
    for (i, e) in exprs.iter().enumerate() {
        let values: Vec<&str> = e.values.iter().flatten().map(String::as_str).collect();
        reqs.push(Requirement::new(&e.key, operator(&e.operator, &format!("{field}[{i}].operator"))?, &values));
    }
    Ok(Requirements::from_policy(&reqs))
}

/// A label selector; `field` names it in errors.
pub fn selector(s: Option<&LabelSelector>, field: &str) -> Result<Selector, ConvertError> {
    let Some(s) = s else { return Ok(Selector::default()) };
    let mut reqs = Vec::new();
    for (i, e) in s.match_expressions.iter().flatten().enumerate() {
        let values: Vec<&str> = e.values.iter().flatten().map(String::as_str).collect();
        reqs.push(Requirement::new(&e.key, operator(&e.operator, &format!("{field}.matchExpressions[{i}]"))?, &values));
    }
    Ok(Selector {
        match_labels: s.match_labels.clone().unwrap_or_default(),
        expressions: Requirements::from_policy(&reqs),
    })
}

fn term(t: &K8sTerm, field: &str) -> Result<PodAffinityTerm, ConvertError> {
    Ok(PodAffinityTerm {
        topology_key: t.topology_key.clone(),
        selector: selector(t.label_selector.as_ref(), &format!("{field}.labelSelector"))?,
        namespaces: t.namespaces.clone().unwrap_or_default(),
    })
}

fn toleration(t: &K8sToleration) -> Toleration {
    let operator = match t.operator.as_deref() {
        Some("Exists") => TolerationOperator::Exists,
        _ => TolerationOperator::Equal,
    };
    Toleration {
        key: t.key.clone().unwrap_or_default(),
        operator,
        value: t.value.clone().unwrap_or_default(),
        effect: t.effect.as_deref().and_then(TaintEffect::parse),
    }
}

fn spread(t: &TopologySpreadConstraint, field: &str) -> Result<TopologySpread, ConvertError> {
    Ok(TopologySpread {
        topology_key: t.topology_key.clone(),
        max_skew: t.max_skew.max(1) as u32,
        when_unsatisfiable: if t.when_unsatisfiable == "ScheduleAnyway" {
            WhenUnsatisfiable::ScheduleAnyway
        } else {
            WhenUnsatisfiable::DoNotSchedule
        },
        selector: selector(t.label_selector.as_ref(), &format!("{field}.labelSelector"))?,
    })
}

fn affinity(c: &mut Constraints, a: &Affinity) -> Result<(), ConvertError> {
    if let Some(na) = &a.node_affinity {
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            for (i, t) in req.node_selector_terms.iter().enumerate() {
                let field = format!("spec.affinity.nodeAffinity.required.nodeSelectorTerms[{i}].matchExpressions");
                c.required_affinity
                    .push(node_requirements(t.match_expressions.as_deref().unwrap_or_default(), &field)?);
            }
        }
        for (i, p) in na.preferred_during_scheduling_ignored_during_execution.iter().flatten().enumerate() {
            let field = format!("spec.affinity.nodeAffinity.preferred[{i}].preference.matchExpressions");
            let reqs = node_requirements(p.preference.match_expressions.as_deref().unwrap_or_default(), &field)?;
            c.preferred_affinity.push((p.weight, reqs));
        }
        c.preferred_affinity.sort_by_key(|p| std::cmp::Reverse(p.0));
    }
    if let Some(pa) = &a.pod_affinity {
        for (i, t) in pa.required_during_scheduling_ignored_during_execution.iter().flatten().enumerate() {
            c.pod_affinity.push(term(t, &format!("spec.affinity.podAffinity.required[{i}]"))?);
        }
        for (i, w) in pa.preferred_during_scheduling_ignored_during_execution.iter().flatten().enumerate() {
            let t = term(&w.pod_affinity_term, &format!("spec.affinity.podAffinity.preferred[{i}]"))?;
            c.preferred_pod_affinity.push((w.weight, t));
        }
    }
    if let Some(pa) = &a.pod_anti_affinity {
        for (i, t) in pa.required_during_scheduling_ignored_during_execution.iter().flatten().enumerate() {
            c.pod_anti_affinity.push(term(t, &format!("spec.affinity.podAntiAffinity.required[{i}]"))?);
        }
        for (i, w) in pa.preferred_during_scheduling_ignored_during_execution.iter().flatten().enumerate() {
            let t = term(&w.pod_affinity_term, &format!("spec.affinity.podAntiAffinity.preferred[{i}]"))?;
            c.preferred_pod_anti_affinity.push((w.weight, t));
        }
    }
    Ok(())
}

/// The scheduler's view of a pod. `name` is `namespace/name`.
pub fn pod(namespace: &str, name: &str, labels: &Labels, spec: &PodSpec) -> Result<Pod, ConvertError> {
    let mut c = Constraints { namespace: namespace.to_string(), labels: labels.clone(), ..Constraints::default() };
    c.node_selector = spec.node_selector.clone().unwrap_or_default();
    if let Some(a) = &spec.affinity {
        affinity(&mut c, a)?;
    }
    c.tolerations = spec.tolerations.iter().flatten().map(toleration).collect();
    for (i, t) in spec.topology_spread_constraints.iter().flatten().enumerate() {
        c.spread.push(spread(t, &format!("spec.topologySpreadConstraints[{i}]"))?);
    }
    for ctr in &spec.containers {
        for p in ctr.ports.iter().flatten() {
            if let Some(hp) = p.host_port.filter(|p| *p > 0) {
                c.host_ports.push((hp as u16, p.protocol.clone().unwrap_or_else(|| "TCP".into())));
            }
        }
    }
    Ok(Pod {
        name: format!("{namespace}/{name}"),
        requests: pod_requests(spec)?,
        constraints: Arc::new(c),
        owner: None,
    })
}
