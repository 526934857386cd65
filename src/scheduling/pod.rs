//! Pods as the scheduler sees them: requests, node constraints, tolerations, topology spread,
//! pod (anti-)affinity and host ports. Plain data with a builder for tests and simulation.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::policy::meta::{Labels, Taint, TaintEffect};

use super::requirements::Requirements;
use super::resources::Resources;

/// A label selector: all `match_labels` equal and every expression satisfied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Selector {
    pub match_labels: BTreeMap<String, String>,
    /// Expressions in requirement form (In, NotIn, Exists, DoesNotExist).
    pub expressions: Requirements,
}

impl Selector {
    pub fn labels(pairs: &[(&str, &str)]) -> Selector {
        Selector {
            match_labels: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            expressions: Requirements::new(),
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.unmet_by(|k| labels.get(k).map(String::as_str)).is_none()
    }
}

/// What happens when a spread constraint cannot be met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WhenUnsatisfiable {
    DoNotSchedule,
    ScheduleAnyway,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopologySpread {
    pub topology_key: String,
    pub max_skew: u32,
    pub when_unsatisfiable: WhenUnsatisfiable,
    pub selector: Selector,
}

/// A pod (anti-)affinity term: pods matching `selector` in the same `topology_key` domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodAffinityTerm {
    pub topology_key: String,
    pub selector: Selector,
    /// Namespaces the selector applies to; empty means the pod's own.
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TolerationOperator {
    Equal,
    Exists,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Toleration {
    /// Empty with `Exists` tolerates every taint.
    pub key: String,
    pub operator: TolerationOperator,
    pub value: String,
    /// `None` tolerates every effect.
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => self.key.is_empty() || self.key == taint.key,
            TolerationOperator::Equal => self.key == taint.key && self.value == taint.value.clone().unwrap_or_default(),
        }
    }
}

/// The first taint among `taints` that `tolerations` do not tolerate, ignoring PreferNoSchedule.
pub fn untolerated<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| t.effect != TaintEffect::PreferNoSchedule)
        .find(|t| !tolerations.iter().any(|tol| tol.tolerates(t)))
}

/// Everything about a pod that decides where it may run, apart from its name and resources.
/// Pods with equal constraints are interchangeable to the scheduler.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Constraints {
    pub namespace: String,
    pub labels: Labels,
    pub node_selector: Labels,
    /// Required node affinity: any one term must hold (each term is ANDed requirements).
    pub required_affinity: Vec<Requirements>,
    /// Preferred node affinity, highest weight first.
    pub preferred_affinity: Vec<(i32, Requirements)>,
    pub tolerations: Vec<Toleration>,
    pub spread: Vec<TopologySpread>,
    pub pod_affinity: Vec<PodAffinityTerm>,
    pub pod_anti_affinity: Vec<PodAffinityTerm>,
    pub preferred_pod_affinity: Vec<(i32, PodAffinityTerm)>,
    pub preferred_pod_anti_affinity: Vec<(i32, PodAffinityTerm)>,
    /// (port, protocol) pairs bound on the node.
    pub host_ports: Vec<(u16, String)>,
}

/// A pod to place.
#[derive(Debug, Clone, PartialEq)]
pub struct Pod {
    pub name: String,
    pub requests: Resources,
    /// Shared between pods of the same template, so grouping is cheap.
    pub constraints: Arc<Constraints>,
    /// The controller that owns it (`Deployment/web`), for messages and disruption.
    pub owner: Option<String>,
}

impl Pod {
    pub fn labels(&self) -> &Labels {
        &self.constraints.labels
    }

    pub fn namespace(&self) -> &str {
        &self.constraints.namespace
    }
}

/// Builds pods for tests and simulations: `pod().cpu("500m").zone("us-east-1a").build()`.
#[derive(Debug, Clone)]
pub struct PodBuilder {
    name: String,
    requests: Resources,
    c: Constraints,
    owner: Option<String>,
}

pub fn pod() -> PodBuilder {
    let requests = Resources { pods: 1, ..Resources::default() };
    PodBuilder {
        name: "pod".to_string(),
        requests,
        c: Constraints { namespace: "default".into(), ..Constraints::default() },
        owner: None,
    }
}

fn quantity(text: &str, cpu: bool) -> i64 {
    let q = crate::policy::quantity::Quantity::parse(text).unwrap_or_else(|| panic!("bad quantity {text}"));
    if cpu { q.milli() as i64 } else { q.units() as i64 }
}

impl PodBuilder {
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }
    pub fn cpu(mut self, q: &str) -> Self {
        self.requests.cpu = quantity(q, true);
        self
    }
    pub fn memory(mut self, q: &str) -> Self {
        self.requests.memory = quantity(q, false);
        self
    }
    pub fn gpu(mut self, n: i64) -> Self {
        self.requests.gpu = n;
        self
    }
    pub fn resource(mut self, name: &str, value: i64) -> Self {
        self.requests.set(name, value);
        self
    }
    pub fn namespace(mut self, ns: &str) -> Self {
        self.c.namespace = ns.to_string();
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.c.labels.insert(k.to_string(), v.to_string());
        self
    }
    pub fn node_selector(mut self, k: &str, v: &str) -> Self {
        self.c.node_selector.insert(k.to_string(), v.to_string());
        self
    }
    pub fn zone(self, zone: &str) -> Self {
        self.node_selector(super::catalog::ZONE, zone)
    }
    pub fn arch(self, arch: &str) -> Self {
        self.node_selector("kubernetes.io/arch", arch)
    }
    /// Adds one required node-affinity term (terms are ORed).
    pub fn affinity_term(mut self, term: Requirements) -> Self {
        self.c.required_affinity.push(term);
        self
    }
    pub fn preferred(mut self, weight: i32, term: Requirements) -> Self {
        self.c.preferred_affinity.push((weight, term));
        self.c.preferred_affinity.sort_by_key(|p| std::cmp::Reverse(p.0));
        self
    }
    pub fn tolerate(mut self, key: &str, value: &str, effect: Option<TaintEffect>) -> Self {
        let operator = if value.is_empty() { TolerationOperator::Exists } else { TolerationOperator::Equal };
        self.c.tolerations.push(Toleration { key: key.to_string(), operator, value: value.to_string(), effect });
        self
    }
    pub fn spread(mut self, key: &str, max_skew: u32, when: WhenUnsatisfiable, selector: Selector) -> Self {
        self.c.spread.push(TopologySpread {
            topology_key: key.to_string(),
            max_skew,
            when_unsatisfiable: when,
            selector,
        });
        self
    }
    pub fn affinity(mut self, key: &str, selector: Selector) -> Self {
        self.c.pod_affinity.push(PodAffinityTerm { topology_key: key.to_string(), selector, namespaces: Vec::new() });
        self
    }
    pub fn anti_affinity(mut self, key: &str, selector: Selector) -> Self {
        self.c.pod_anti_affinity.push(PodAffinityTerm {
            topology_key: key.to_string(),
            selector,
            namespaces: Vec::new(),
        });
        self
    }
    pub fn preferred_anti_affinity(mut self, weight: i32, key: &str, selector: Selector) -> Self {
        self.c
            .preferred_pod_anti_affinity
            .push((weight, PodAffinityTerm { topology_key: key.to_string(), selector, namespaces: Vec::new() }));
        self
    }
    pub fn host_port(mut self, port: u16) -> Self {
        self.c.host_ports.push((port, "TCP".to_string()));
        self
    }
    pub fn owner(mut self, owner: &str) -> Self {
        self.owner = Some(owner.to_string());
        self
    }
    pub fn build(self) -> Pod {
        Pod { name: self.name, requests: self.requests, constraints: Arc::new(self.c), owner: self.owner }
    }
}
