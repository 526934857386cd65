//! What the reflectors keep of each object: only the fields [`super::objects`] reads, so the
//! stores do not hold managedFields, `kubectl.kubernetes.io/last-applied-configuration`, images,
//! addresses or statuses for every node, DaemonSet and PodDisruptionBudget of the cluster.
//!
//! ```text
//! watch event ─▶ trim (here, in place) ─▶ reflector store ─▶ objects::{node,…} ─▶ Snapshot
//! ```
//!
//! Each function keeps exactly what the conversion of its kind reads, plus the name, namespace,
//! uid and resourceVersion the store keys objects by; converting a trimmed object gives the
//! same result as converting the full one. Pods are stored converted instead
//! ([`super::stored`]): a trimmed `Pod` still holds every field of its type inline, several
//! kilobytes a pod; [`pod`] is what trimming alone would keep of one, measured by
//! `capstan bench memory --trim-only`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Container, Node, NodeSpec, NodeStatus, Pod, PodSpec, PodStatus, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::DynamicObject;
use serde_json::{Map, Value};

use crate::cluster::model::{DO_NOT_DISRUPT, POD_DELETION_COST};

/// The annotation the kubelet puts on the API copy of a static pod.
pub const MIRROR_POD: &str = "kubernetes.io/config.mirror";
/// The pod annotations the conversion reads; every other one is dropped.
pub const POD_ANNOTATIONS: [&str; 3] = [MIRROR_POD, POD_DELETION_COST, DO_NOT_DISRUPT];

/// The metadata every store needs to key an object.
fn identity(meta: &mut ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        ..ObjectMeta::default()
    }
}

/// A pod: metadata the owner, eviction and do-not-disrupt rules read; the scheduling part of
/// its spec; its phase, start time and `PodScheduled` condition.
pub fn pod(p: &mut Pod) {
    let meta = &mut p.metadata;
    let annotations: BTreeMap<String, String> =
        meta.annotations.take().into_iter().flatten().filter(|(k, _)| POD_ANNOTATIONS.contains(&k.as_str())).collect();
    let owners: Vec<_> =
        meta.owner_references.take().into_iter().flatten().filter(|o| o.controller == Some(true)).collect();
    p.metadata = ObjectMeta {
        labels: meta.labels.take(),
        annotations: (!annotations.is_empty()).then_some(annotations),
        owner_references: (!owners.is_empty()).then_some(owners),
        creation_timestamp: meta.creation_timestamp.take(),
        deletion_timestamp: meta.deletion_timestamp.take(),
        ..identity(meta)
    };
    if let Some(spec) = p.spec.as_mut() {
        *spec = pod_spec(spec);
    }
    if let Some(status) = p.status.as_mut() {
        *status = pod_status(status);
    }
}

/// Requests, or limits when a container states no requests (they then default to the limits).
fn resources(r: Option<ResourceRequirements>) -> Option<ResourceRequirements> {
    r.map(|r| match r.requests {
        Some(requests) => ResourceRequirements { requests: Some(requests), ..Default::default() },
        None => ResourceRequirements { limits: r.limits, ..Default::default() },
    })
}

/// A container's name, resources and the ports it binds on the node.
fn container(c: &mut Container) -> Container {
    let ports: Vec<_> = c.ports.take().into_iter().flatten().filter(|p| p.host_port.is_some_and(|h| h > 0)).collect();
    Container {
        name: std::mem::take(&mut c.name),
        resources: resources(c.resources.take()),
        ports: (!ports.is_empty()).then_some(ports),
        ..Container::default()
    }
}

/// The part of a pod spec the scheduler's view is built from.
pub fn pod_spec(s: &mut PodSpec) -> PodSpec {
    PodSpec {
        node_name: s.node_name.take(),
        priority: s.priority.take(),
        node_selector: s.node_selector.take(),
        affinity: s.affinity.take(),
        tolerations: s.tolerations.take(),
        topology_spread_constraints: s.topology_spread_constraints.take(),
        containers: s.containers.iter_mut().map(container).collect(),
        init_containers: s.init_containers.as_mut().map(|cs| cs.iter_mut().map(container).collect()),
        overhead: s.overhead.take(),
        ..PodSpec::default()
    }
}

fn pod_status(s: &mut PodStatus) -> PodStatus {
    let scheduled: Vec<_> = s
        .conditions
        .take()
        .into_iter()
        .flatten()
        .filter(|c| c.type_ == "PodScheduled")
        .map(|mut c| k8s_openapi::api::core::v1::PodCondition {
            type_: std::mem::take(&mut c.type_),
            status: std::mem::take(&mut c.status),
            reason: c.reason.take(),
            ..Default::default()
        })
        .collect();
    PodStatus {
        phase: s.phase.take(),
        start_time: s.start_time.take(),
        conditions: (!scheduled.is_empty()).then_some(scheduled),
        ..PodStatus::default()
    }
}

/// A node: labels and annotations (the loop keeps both whole), taints, provider ID,
/// cordon, allocatable and the `Ready` condition. Images, addresses, capacity, node info and
/// managedFields go.
pub fn node(n: &mut Node) {
    let meta = &mut n.metadata;
    n.metadata = ObjectMeta {
        labels: meta.labels.take(),
        annotations: meta.annotations.take(),
        creation_timestamp: meta.creation_timestamp.take(),
        ..identity(meta)
    };
    if let Some(spec) = n.spec.as_mut() {
        *spec = NodeSpec {
            provider_id: spec.provider_id.take(),
            taints: spec.taints.take(),
            unschedulable: spec.unschedulable.take(),
            ..NodeSpec::default()
        };
    }
    if let Some(status) = n.status.as_mut() {
        let ready: Vec<_> = status
            .conditions
            .take()
            .into_iter()
            .flatten()
            .filter(|c| c.type_ == "Ready")
            .map(|mut c| k8s_openapi::api::core::v1::NodeCondition {
                type_: std::mem::take(&mut c.type_),
                status: std::mem::take(&mut c.status),
                ..Default::default()
            })
            .collect();
        *status = NodeStatus {
            allocatable: status.allocatable.take(),
            conditions: (!ready.is_empty()).then_some(ready),
            ..NodeStatus::default()
        };
    }
}

/// A DaemonSet: its selector (required by the type) and its pod template's labels and
/// scheduling spec.
pub fn daemonset(d: &mut DaemonSet) {
    d.metadata = identity(&mut d.metadata);
    d.status = None;
    if let Some(spec) = d.spec.as_mut() {
        let template = &mut spec.template;
        let labels = template.metadata.as_mut().and_then(|m| m.labels.take());
        template.metadata = labels.map(|labels| ObjectMeta { labels: Some(labels), ..ObjectMeta::default() });
        template.spec = template.spec.as_mut().map(pod_spec);
        *spec = k8s_openapi::api::apps::v1::DaemonSetSpec {
            selector: std::mem::take(&mut spec.selector),
            template: std::mem::take(&mut spec.template),
            ..Default::default()
        };
    }
}

/// A PodDisruptionBudget (either version, untyped): `spec.selector` and
/// `status.disruptionsAllowed`.
pub fn pdb(o: &mut DynamicObject) {
    o.metadata = identity(&mut o.metadata);
    let mut kept = Map::new();
    if let Some(selector) = o.data.get_mut("spec").and_then(|s| s.get_mut("selector")) {
        kept.insert("spec".into(), serde_json::json!({ "selector": selector.take() }));
    }
    if let Some(allowed) = o.data.get("status").and_then(|s| s.get("disruptionsAllowed")) {
        kept.insert("status".into(), serde_json::json!({ "disruptionsAllowed": allowed }));
    }
    o.data = Value::Object(kept);
}
