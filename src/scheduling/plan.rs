//! The scheduler's output: pods bound to nodes that exist or are launching, new NodeClaims to
//! launch, and pods that cannot be placed, each with a reason.

use std::sync::Arc;

use serde::Serialize;

use super::catalog::CapacityType;
use super::requirements::Requirements;
use super::resources::Resources;

/// Most instance-type options a NodeClaim carries to the launch (CreateFleet's override limit).
pub const MAX_OPTIONS: usize = 60;

/// A launch option: one instance type in one zone at one capacity type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaunchOption {
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: CapacityType,
    pub price: f64,
}

/// A node to launch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewClaim {
    pub name: String,
    pub node_pool: String,
    /// The chosen offering; `options` ranks it first.
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: CapacityType,
    /// USD per hour of the chosen offering.
    pub price: f64,
    /// Up to 60 offerings that can hold the same pods, cheapest first.
    pub options: Arc<Vec<LaunchOption>>,
    /// The NodePool's requirements narrowed by the pods'.
    #[serde(skip)]
    pub requirements: Requirements,
    pub pods: Vec<String>,
    /// Requests of the pods and DaemonSets.
    pub requests: Resources,
    pub allocatable: Resources,
}

/// A pod bound to an existing node or an in-flight NodeClaim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Binding {
    pub pod: String,
    pub node: String,
}

/// A pod no node can take, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unschedulable {
    pub pod: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub bindings: Vec<Binding>,
    pub claims: Vec<NewClaim>,
    pub unschedulable: Vec<Unschedulable>,
}

impl Plan {
    /// Price per hour of the new claims.
    pub fn cost_per_hour(&self) -> f64 {
        self.claims.iter().map(|c| c.price).sum()
    }

    pub fn placed(&self) -> usize {
        self.bindings.len() + self.claims.iter().map(|c| c.pods.len()).sum::<usize>()
    }
}

/// The value an option has for `key`: zone, capacity type, or an instance-type label.
pub fn option_value(o: &LaunchOption, key: &str, catalog: &super::catalog::Catalog) -> Option<String> {
    match key {
        super::catalog::ZONE => Some(o.zone.clone()),
        super::catalog::CAPACITY_TYPE => Some(o.capacity_type.label().to_string()),
        _ => catalog.get(&o.instance_type)?.label(key),
    }
}

/// Orders `all` (cheapest first) into at most [`MAX_OPTIONS`] options that keep, for every
/// requirement with `minValues`, that many distinct values; `Err` names the first that cannot.
pub fn diverse_options(
    mut all: Vec<LaunchOption>,
    reqs: &Requirements,
    catalog: &super::catalog::Catalog,
) -> Result<Vec<LaunchOption>, String> {
    let first = if all.is_empty() { None } else { Some(all.remove(0)) };
    all.sort_by(|a, b| a.price.total_cmp(&b.price));
    all.splice(0..0, first);
    let mins: Vec<(String, usize)> = reqs.min_values().map(|(k, m)| (k.to_string(), m)).collect();
    if mins.is_empty() {
        all.truncate(MAX_OPTIONS);
        return Ok(all);
    }
    let mut chosen: Vec<LaunchOption> = Vec::new();
    for (key, min) in &mins {
        let mut seen: Vec<String> = chosen.iter().filter_map(|o| option_value(o, key, catalog)).collect();
        seen.sort();
        seen.dedup();
        for o in &all {
            if seen.len() >= *min {
                break;
            }
            if let Some(v) = option_value(o, key, catalog)
                && !seen.contains(&v)
            {
                seen.push(v);
                if !chosen.contains(o) {
                    chosen.push(o.clone());
                }
            }
        }
        if seen.len() < *min {
            return Err(format!(
                "minValues: {key} needs {min} distinct values, the instance types that fit offer {}",
                seen.len()
            ));
        }
    }
    for o in all {
        if chosen.len() >= MAX_OPTIONS {
            break;
        }
        if !chosen.contains(&o) {
            chosen.push(o);
        }
    }
    let head = chosen.remove(0);
    chosen.sort_by(|a, b| a.price.total_cmp(&b.price));
    chosen.insert(0, head);
    Ok(chosen)
}
