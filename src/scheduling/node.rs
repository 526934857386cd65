//! Nodes the scheduler can place pods on: registered nodes and NodeClaims still launching.

use std::sync::Arc;

use crate::policy::meta::{Labels, Taint};

use super::pod::Constraints;
use super::resources::Resources;

/// An existing node or an in-flight NodeClaim, with what is already bound to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    /// Includes zone, capacity type, instance type, hostname and NodePool labels.
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub allocatable: Resources,
    /// Requests of the pods bound (DaemonSet pods included).
    pub requested: Resources,
    /// Constraints of the bound pods, for spread and affinity counts.
    pub pods: Vec<Arc<Constraints>>,
    pub host_ports: Vec<(u16, String)>,
    /// A NodeClaim that has not registered yet.
    pub in_flight: bool,
    /// Cordoned or being deleted: takes no new pods.
    pub unschedulable: bool,
    pub node_pool: Option<String>,
    /// USD per hour.
    pub price: f64,
}

impl Node {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    pub fn free(&self) -> Resources {
        &self.allocatable - &self.requested
    }
}
