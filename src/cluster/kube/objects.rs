//! Kubernetes objects → the capacity loop's plain data.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use serde_json::Value;

use crate::cluster::convert;
use crate::cluster::model::{
    ClusterNode, ClusterPod, DO_NOT_DISRUPT, Eviction, Owner, POD_DELETION_COST, Pdb, Phase, PodDoNotDisrupt,
};
use crate::policy::meta::{Taint, TaintEffect};
use crate::policy::quantity::Quantity;
use crate::scheduling::pod::Selector;
use crate::scheduling::resources::Resources;

/// Time since the epoch of a Kubernetes timestamp.
pub fn since_epoch(t: Option<&Time>) -> Duration {
    t.map(|t| {
        let ts = t.0;
        Duration::new(ts.as_second().max(0) as u64, ts.subsec_nanosecond().max(0) as u32)
    })
    .unwrap_or_default()
}

fn owner(pod: &Pod) -> Owner {
    let meta = &pod.metadata;
    if meta.annotations.as_ref().is_some_and(|a| a.contains_key(super::trim::MIRROR_POD)) {
        return Owner::Mirror;
    }
    let controller = meta.owner_references.iter().flatten().find(|o| o.controller == Some(true));
    match controller {
        Some(o) if o.kind == "DaemonSet" => Owner::DaemonSet(o.name.clone()),
        Some(o) if o.kind == "Node" => Owner::Mirror,
        Some(o) => Owner::Controller(format!("{}/{}", o.kind, o.name)),
        None => Owner::None,
    }
}

/// A pod as the loop sees it; `None` for pods that hold no capacity (finished, or being
/// deleted before they were bound) or whose spec cannot be read.
pub fn pod(p: &Pod) -> Option<ClusterPod> {
    let meta = &p.metadata;
    let (namespace, name) = (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default());
    let spec = p.spec.as_ref()?;
    let status = p.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    if phase == "Succeeded" || phase == "Failed" {
        return None;
    }
    let node = spec.node_name.clone().filter(|n| !n.is_empty());
    if node.is_none() && meta.deletion_timestamp.is_some() {
        return None;
    }
    let unschedulable = status.and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
        cs.iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
    });
    let labels = meta.labels.clone().unwrap_or_default();
    let scheduled = match convert::pod(&namespace, &name, &labels, spec) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(pod = %format!("{namespace}/{name}"), error = %e, "pod spec not understood; ignored");
            return None;
        }
    };
    Some(ClusterPod {
        owner: owner(p),
        node,
        phase: if phase == "Running" { Phase::Running } else { Phase::Pending },
        unschedulable,
        spec: scheduled,
        do_not_disrupt: do_not_disrupt(p) == PodDoNotDisrupt::Always,
        created_at: since_epoch(meta.creation_timestamp.as_ref()),
        eviction: eviction(p),
        namespace,
        name,
    })
}

/// The pod's priority and deletion cost; a deletion cost that is not an int32 counts as unset,
/// as the ReplicaSet controller treats it.
fn eviction(p: &Pod) -> Eviction {
    let deletion_cost = p
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.trim().parse::<i32>().ok());
    Eviction { priority: p.spec.as_ref().and_then(|s| s.priority), deletion_cost }
}

/// What the pod's `karpenter.sh/do-not-disrupt` asks for; a duration counts from
/// `status.startTime`.
pub fn do_not_disrupt(p: &Pod) -> PodDoNotDisrupt {
    let value = p.metadata.annotations.as_ref().and_then(|a| a.get(DO_NOT_DISRUPT));
    let started = p.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| since_epoch(Some(t)));
    PodDoNotDisrupt::of(value.map(String::as_str), started)
}

pub fn taint(t: &k8s_openapi::api::core::v1::Taint) -> Taint {
    Taint {
        key: t.key.clone(),
        value: t.value.clone(),
        effect: TaintEffect::parse(&t.effect).unwrap_or(TaintEffect::NoSchedule),
        time_added: None,
    }
}

pub fn k8s_taint(t: &Taint) -> Value {
    let effect = match t.effect {
        TaintEffect::NoSchedule => "NoSchedule",
        TaintEffect::PreferNoSchedule => "PreferNoSchedule",
        TaintEffect::NoExecute => "NoExecute",
    };
    let mut v = serde_json::json!({"key": t.key, "effect": effect});
    if let Some(value) = &t.value {
        v["value"] = Value::String(value.clone());
    }
    v
}

/// A node; `pods_changed_at` is filled by the caller, which keeps that history.
pub fn node(n: &Node) -> ClusterNode {
    let meta = &n.metadata;
    let spec = n.spec.clone().unwrap_or_default();
    let status = n.status.clone().unwrap_or_default();
    let allocatable: Vec<(String, Quantity)> = status
        .allocatable
        .iter()
        .flatten()
        .filter_map(|(k, v)| Quantity::parse(&v.0).map(|q| (k.clone(), q)))
        .collect();
    let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
    let created = since_epoch(meta.creation_timestamp.as_ref());
    ClusterNode {
        name: meta.name.clone().unwrap_or_default(),
        provider_id: spec.provider_id.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        taints: spec.taints.iter().flatten().map(taint).collect(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        allocatable: Resources::from_quantities(allocatable.iter().map(|(k, q)| (k.as_str(), q))),
        ready,
        unschedulable: spec.unschedulable.unwrap_or(false),
        created_at: created,
        pods_changed_at: created,
    }
}

pub fn daemonset(d: &DaemonSet) -> Option<crate::scheduling::pod::Pod> {
    let spec = d.spec.as_ref()?;
    let labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    let ns = d.metadata.namespace.clone().unwrap_or_default();
    convert::pod(&ns, d.metadata.name.as_deref().unwrap_or_default(), &labels, spec.template.spec.as_ref()?).ok()
}

/// A PodDisruptionBudget of either version, read as JSON (`spec.selector`,
/// `status.disruptionsAllowed`).
pub fn pdb(namespace: &str, name: &str, spec: &Value, status: &Value) -> Pdb {
    let sel: Option<LabelSelector> = spec.get("selector").and_then(|s| serde_json::from_value(s.clone()).ok());
    Pdb {
        namespace: namespace.to_string(),
        name: name.to_string(),
        // A selector that cannot be read covers every pod: the budget then holds drains rather
        // than being ignored.
        selector: convert::selector(sel.as_ref(), "spec.selector").unwrap_or_else(|e| {
            tracing::warn!(pdb = %format!("{namespace}/{name}"), error = %e, "PodDisruptionBudget selector not understood");
            Selector::default()
        }),
        disruptions_allowed: status.get("disruptionsAllowed").and_then(Value::as_i64).unwrap_or(0),
    }
}

/// Labels as JSON for a merge patch.
pub fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

#[cfg(test)]
mod do_not_disrupt_tests {
    use super::*;

    fn annotated(value: &str, start: Option<&str>) -> Pod {
        let mut v = serde_json::json!({
            "metadata": {"namespace": "default", "name": "a", "annotations": {DO_NOT_DISRUPT: value}},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Running"},
        });
        if let Some(start) = start {
            v["status"]["startTime"] = Value::String(start.into());
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_duration_counts_from_the_start_time() {
        let start = "2026-01-01T00:00:00Z";
        let started = since_epoch(annotated("true", Some(start)).status.unwrap().start_time.as_ref());
        assert_eq!(
            do_not_disrupt(&annotated("10m", Some(start))),
            PodDoNotDisrupt::Until(started + Duration::from_secs(600))
        );
        assert_eq!(do_not_disrupt(&annotated("10m", None)), PodDoNotDisrupt::Always);
        assert_eq!(do_not_disrupt(&annotated("true", Some(start))), PodDoNotDisrupt::Always);
        assert_eq!(do_not_disrupt(&annotated("soon", Some(start))), PodDoNotDisrupt::No);
        let p = annotated("10m", None);
        assert!(pod(&p).is_some_and(|c| c.do_not_disrupt));
        let p = annotated("10m", Some(start));
        assert!(pod(&p).is_some_and(|c| !c.do_not_disrupt));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_pod(annotations: &[(&str, &str)], priority: Option<i32>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web-1", "namespace": "default",
                "annotations": annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            },
            "spec": {"containers": [{"name": "c", "image": "pause"}], "priority": priority},
            "status": {"phase": "Pending"},
        }))
        .unwrap()
    }

    #[test]
    fn priority_and_deletion_cost_are_read_and_a_bad_cost_is_unset() {
        let p = pod(&api_pod(&[(POD_DELETION_COST, "-100")], Some(1000))).unwrap();
        assert_eq!(p.eviction, Eviction { priority: Some(1000), deletion_cost: Some(-100) });
        let p = pod(&api_pod(&[(POD_DELETION_COST, "1e9")], None)).unwrap();
        assert_eq!(p.eviction, Eviction::default(), "not an int32, as the ReplicaSet controller reads it");
        let p = pod(&api_pod(&[(POD_DELETION_COST, "3000000000")], None)).unwrap();
        assert_eq!(p.eviction.deletion_cost, None, "out of int32 range");
    }
}
