//! The cluster as the capacity loop sees it: plain data, gathered by a [`super::ClusterApi`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::policy::meta::{Labels, Taint};
use crate::scheduling::pod::{Pod, Selector};
use crate::scheduling::resources::Resources;

/// Nodes carrying this annotation with value `"true"` are never voluntarily disrupted; pods are
/// not either, or, with a duration as value, not until they have run that long.
pub const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
/// Defined with every other node mark in [`super::marks`]; re-exported for the model's readers.
pub use super::marks::DISRUPTED_TAINT;
/// The taint a node has until it is Ready (the kubelet's, not capstan's).
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";

/// What controls a pod, which decides whether evicting it loses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name")]
pub enum Owner {
    /// A ReplicaSet, StatefulSet, Job…: the controller recreates the pod elsewhere.
    Controller(String),
    /// Runs on every node; never evicted by a drain.
    DaemonSet(String),
    /// A static pod of the kubelet, mirrored in the API; never evicted.
    Mirror,
    /// A bare pod: evicting it loses it, so it blocks voluntary disruption.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Phase {
    Pending,
    Running,
}

/// The annotation a controller reads to choose which pod of a ReplicaSet to delete first; a
/// drain weighs it too (an int32, higher costs more).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// What weighs on evicting a pod: its priority (`spec.priority`) and its
/// `controller.kubernetes.io/pod-deletion-cost`; unset when the pod has none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Eviction {
    pub priority: Option<i32>,
    pub deletion_cost: Option<i32>,
}

impl Eviction {
    /// What evicting the pod costs, as Karpenter weighs it: 1, plus the deletion cost over
    /// 2^27, plus the priority over 2^25, kept within [-10, 10].
    pub fn cost(&self) -> f64 {
        eviction_cost(self.deletion_cost.map(f64::from), self.priority.map(i64::from))
    }
}

/// [`Eviction::cost`] from its two parts.
pub fn eviction_cost(deletion_cost: Option<f64>, priority: Option<i64>) -> f64 {
    let mut cost = 1.0;
    if let Some(d) = deletion_cost {
        cost += d / 2f64.powi(27);
    }
    if let Some(p) = priority {
        cost += p as f64 / 2f64.powi(25);
    }
    cost.clamp(-10.0, 10.0)
}

/// A pod with what the capacity loop needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterPod {
    pub namespace: String,
    pub name: String,
    pub owner: Owner,
    /// The node it is bound to.
    pub node: Option<String>,
    pub phase: Phase,
    /// The scheduler marked it unschedulable (`PodScheduled=False`, reason `Unschedulable`).
    pub unschedulable: bool,
    /// The scheduler's view; its name is `namespace/name`.
    pub spec: Pod,
    pub do_not_disrupt: bool,
    pub created_at: Duration,
    pub eviction: Eviction,
}

impl ClusterPod {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// DaemonSet and mirror pods stay with their node and are not evicted.
    pub fn is_node_bound(&self) -> bool {
        matches!(self.owner, Owner::DaemonSet(_) | Owner::Mirror)
    }

    /// Waiting for a node the scheduler could not find.
    pub fn is_pending(&self) -> bool {
        self.node.is_none() && self.phase == Phase::Pending && self.unschedulable
    }
}

/// A registered node.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterNode {
    pub name: String,
    /// `aws:///<zone>/<instance-id>`.
    pub provider_id: String,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub annotations: BTreeMap<String, String>,
    pub allocatable: Resources,
    pub ready: bool,
    /// Cordoned.
    pub unschedulable: bool,
    pub created_at: Duration,
    /// The last time a pod was bound to or left the node; `consolidateAfter` counts from here.
    pub pods_changed_at: Duration,
}

impl ClusterNode {
    /// A node as its kubelet registers it for instance `id` in `zone`: Ready, no labels, taints
    /// or annotations yet, nothing allocatable.
    pub fn joined(name: &str, zone: &str, id: &str) -> ClusterNode {
        ClusterNode {
            name: name.into(),
            provider_id: format!("aws:///{zone}/{id}"),
            labels: Default::default(),
            taints: Vec::new(),
            annotations: Default::default(),
            allocatable: Default::default(),
            ready: true,
            unschedulable: false,
            created_at: Duration::ZERO,
            pods_changed_at: Duration::ZERO,
        }
    }

    pub fn instance_id(&self) -> Option<&str> {
        self.provider_id.rsplit('/').next().filter(|s| s.starts_with("i-"))
    }

    pub fn do_not_disrupt(&self) -> bool {
        self.annotations.get(DO_NOT_DISRUPT).is_some_and(|v| v == "true")
    }
}

/// A PodDisruptionBudget and how many of its pods may be evicted now (its status).
#[derive(Debug, Clone, PartialEq)]
pub struct Pdb {
    pub namespace: String,
    pub name: String,
    pub selector: Selector,
    pub disruptions_allowed: i64,
}

impl Pdb {
    pub fn covers(&self, pod: &ClusterPod) -> bool {
        pod.namespace == self.namespace && self.selector.matches(pod.spec.labels())
    }
}

/// Everything read from the cluster in one pass.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub pods: Vec<ClusterPod>,
    pub nodes: Vec<ClusterNode>,
    /// One template pod per DaemonSet.
    pub daemonsets: Vec<Pod>,
    pub pdbs: Vec<Pdb>,
    /// Pods (`namespace/name`) whose `karpenter.sh/do-not-disrupt` is a duration, and the time
    /// (since the Unix epoch) until which it protects them: their start time plus the duration.
    pub do_not_disrupt_until: BTreeMap<String, Duration>,
}

/// What `karpenter.sh/do-not-disrupt` on a pod asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodDoNotDisrupt {
    /// Absent, or not `true` nor a positive duration (Karpenter reports such a value and
    /// protects nothing).
    No,
    /// `true`, or a positive duration on a pod that has not started.
    Always,
    /// A positive duration: protected until this time since the Unix epoch.
    Until(Duration),
}

impl PodDoNotDisrupt {
    /// Reads the annotation's value for a pod started at `started_at` (since the Unix epoch).
    pub fn of(value: Option<&str>, started_at: Option<Duration>) -> PodDoNotDisrupt {
        let Some(value) = value else { return PodDoNotDisrupt::No };
        if value == "true" {
            return PodDoNotDisrupt::Always;
        }
        match (go_duration(value), started_at) {
            (Some(d), _) if d.is_zero() => PodDoNotDisrupt::No,
            (Some(_), None) => PodDoNotDisrupt::Always,
            (Some(d), Some(start)) => PodDoNotDisrupt::Until(start.saturating_add(d)),
            (None, _) => PodDoNotDisrupt::No,
        }
    }
}

/// A positive Go duration (`90s`, `1h30m`, `1.5h`, `500ms`); `None` for anything else,
/// including negative durations.
pub fn go_duration(text: &str) -> Option<Duration> {
    let body = text.strip_prefix('+').unwrap_or(text);
    if body.starts_with('-') {
        return None;
    }
    if body == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = body;
    let mut nanos: u128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
        let mut part = whole.checked_mul(scale)?;
        let mut place = scale;
        for digit in fraction.bytes() {
            if !digit.is_ascii_digit() {
                return None;
            }
            place /= 10;
            part += u128::from(digit - b'0') * place;
        }
        nanos = nanos.checked_add(part)?;
        rest = after;
    }
    // Go durations are int64 nanoseconds.
    (nanos <= i64::MAX as u128).then(|| Duration::from_nanos(nanos as u64))
}

impl Snapshot {
    pub fn pods_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a ClusterPod> + 'a {
        self.pods.iter().filter(move |p| p.node.as_deref() == Some(node))
    }

    pub fn pending(&self) -> impl Iterator<Item = &ClusterPod> {
        self.pods.iter().filter(|p| p.is_pending())
    }

    pub fn node(&self, name: &str) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

impl ClusterNode {
    /// The scheduler's view of this node with `pods` bound to it.
    pub fn scheduling_node<'a>(
        &self,
        pods: impl IntoIterator<Item = &'a ClusterPod>,
        price: f64,
    ) -> crate::scheduling::node::Node {
        let mut requested = Resources::default();
        let mut constraints = Vec::new();
        let mut host_ports = Vec::new();
        for p in pods {
            requested += &p.spec.requests;
            host_ports.extend(p.spec.constraints.host_ports.iter().cloned());
            constraints.push(p.spec.constraints.clone());
        }
        let mut labels = self.labels.clone();
        labels.entry(crate::scheduling::catalog::HOSTNAME.to_string()).or_insert_with(|| self.name.clone());
        crate::scheduling::node::Node {
            name: self.name.clone(),
            node_pool: labels.get(crate::scheduling::pool::NODE_POOL_LABEL).cloned(),
            labels,
            taints: self.taints.clone(),
            allocatable: self.allocatable.clone(),
            requested,
            pods: constraints,
            host_ports,
            in_flight: false,
            unschedulable: self.unschedulable || !self.ready,
            price,
        }
    }
}

#[cfg(test)]
mod do_not_disrupt_tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "true", "5", "-5m", "1d", "h", ".s", "5m3"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn pod_annotation_values() {
        let start = Some(Duration::from_secs(1000));
        assert_eq!(PodDoNotDisrupt::of(None, start), PodDoNotDisrupt::No);
        assert_eq!(PodDoNotDisrupt::of(Some("true"), start), PodDoNotDisrupt::Always);
        assert_eq!(PodDoNotDisrupt::of(Some("10m"), start), PodDoNotDisrupt::Until(Duration::from_secs(1600)));
        assert_eq!(PodDoNotDisrupt::of(Some("10m"), None), PodDoNotDisrupt::Always);
        assert_eq!(PodDoNotDisrupt::of(Some("false"), start), PodDoNotDisrupt::No);
        assert_eq!(PodDoNotDisrupt::of(Some("soon"), start), PodDoNotDisrupt::No);
        assert_eq!(PodDoNotDisrupt::of(Some("0s"), start), PodDoNotDisrupt::No);
    }
}
