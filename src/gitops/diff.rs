//! The field-level change of each cluster's effective policy between two revisions, and what
//! follows from it (drift, tighter limits, requirement values). Pure: the revisions come in as
//! [`Snapshot`]s; `capstan audit` and `capstan diff` read them from Git.
//!
//! ```text
//! Snapshot ─► load ─► Loaded::Clusters { cluster → { Kind/name → JSON } } ─┐
//! Snapshot ─► load ─► Loaded::Clusters …                                   ├─► compare ─► ObjectChange…
//!                     Loaded::Failed("file:line:col: message")  (no diff) ─┘   consequences ─► lines
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::kops::diff::{self, FieldChange};
use crate::policy::quantity::Quantity;
use crate::policy::{self, EffectivePolicy, Snapshot, ValidateError};

/// `Kind/name` → the object as JSON, for one cluster.
pub type Objects = BTreeMap<String, Value>;

/// One revision, as far as it loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// Every cluster's objects; validation found no error.
    Clusters(BTreeMap<String, Objects>),
    /// Validation found errors: the first, as `file:line:col: message`. Such a revision is never
    /// put in force, so changes are compared across it.
    Failed(String),
}

/// What changed in one object.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectChange {
    pub object: String,
    /// `created`, `changed` or `deleted`.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// The changes to one cluster and what follows from them.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterDiff {
    pub cluster: String,
    pub objects: Vec<ObjectChange>,
    /// e.g. `nodes of NodePool/default will drift and be replaced`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consequences: Vec<String>,
}

/// The objects of `policy`, keyed `Kind/name`.
pub fn objects(policy: &EffectivePolicy) -> Objects {
    let mut out = Objects::new();
    let mut add = |kind: &str, name: &str, v: Value| {
        out.insert(format!("{kind}/{name}"), v);
    };
    for p in &policy.node_pools {
        add("NodePool", &p.value.metadata.name, json(&p.value));
    }
    for c in &policy.node_classes {
        add("EC2NodeClass", &c.value.metadata.name, json(&c.value));
    }
    for ig in &policy.instance_groups {
        add("InstanceGroup", &ig.value.metadata.name, json(&ig.value));
    }
    if let Some(cp) = &policy.cluster_policy {
        add("ClusterPolicy", &cp.value.metadata.name, json(&cp.value));
    }
    if let Some(entry) = &policy.fleet_entry {
        add("Fleet", &entry.name, json(entry));
    }
    out
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Loads a revision for every cluster of its fleet (or one). An unknown cluster is the caller's
/// to judge: at an old revision it may simply not be listed yet.
pub fn load(snapshot: &Snapshot, cluster: Option<&str>) -> Result<Loaded, ValidateError> {
    let v = policy::validate(snapshot, cluster)?;
    if let Some(d) = v.diagnostics.sorted().into_iter().find(|d| d.is_error()) {
        return Ok(Loaded::Failed(format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message)));
    }
    let clusters = v.policies.iter().filter(|p| !p.cluster.is_empty()).map(|p| (p.cluster.clone(), objects(p)));
    Ok(Loaded::Clusters(clusters.collect()))
}

/// The objects that differ between `old` and `new` (only `only`, a `Kind/name`, when given).
pub fn compare(old: &Objects, new: &Objects, only: Option<&str>) -> Vec<ObjectChange> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = Vec::new();
    for name in names {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let change = match (old.get(name), new.get(name)) {
            (None, Some(_)) => ObjectChange { object: name.clone(), action: "created", fields: Vec::new() },
            (Some(_), None) => ObjectChange { object: name.clone(), action: "deleted", fields: Vec::new() },
            (Some(a), Some(b)) if a != b => {
                ObjectChange { object: name.clone(), action: "changed", fields: diff::diff(b, Some(a), Some(a)) }
            }
            _ => continue,
        };
        out.push(change);
    }
    out
}

/// Every cluster whose effective policy differs between two loaded revisions, by name.
pub fn clusters(base: &BTreeMap<String, Objects>, head: &BTreeMap<String, Objects>) -> Vec<ClusterDiff> {
    let empty = Objects::new();
    let names: BTreeSet<&String> = base.keys().chain(head.keys()).collect();
    let mut out = Vec::new();
    for name in names {
        let (old, new) = (base.get(name).unwrap_or(&empty), head.get(name).unwrap_or(&empty));
        let objects = compare(old, new, None);
        if objects.is_empty() {
            continue;
        }
        let consequences = consequences(&objects, new);
        out.push(ClusterDiff { cluster: name.clone(), objects, consequences });
    }
    out
}

/// What follows from `changes`, with `head` the cluster's objects after them.
pub fn consequences(changes: &[ObjectChange], head: &Objects) -> Vec<String> {
    let mut out = Vec::new();
    let changed_classes: BTreeSet<&str> = changes
        .iter()
        .filter(|c| c.action == "changed")
        .filter_map(|c| c.object.strip_prefix("EC2NodeClass/"))
        .collect();
    for (name, pool) in head.iter().filter_map(|(k, v)| Some((k.strip_prefix("NodePool/")?, v))) {
        let own = changes.iter().find(|c| c.action == "changed" && c.object == format!("NodePool/{name}"));
        let template = own.is_some_and(|c| {
            c.fields.iter().any(|f| matches!(f.path.0.as_slice(), [a, b, ..] if a == "spec" && b == "template"))
        });
        let class = pool.pointer("/spec/template/spec/nodeClassRef/name").and_then(Value::as_str);
        let class_changed = class.is_some_and(|c| changed_classes.contains(c));
        if template || class_changed {
            out.push(format!("nodes of NodePool/{name} will drift and be replaced"));
        }
    }
    for c in changes.iter().filter(|c| c.action == "changed") {
        for f in &c.fields {
            let path = f.path.to_string();
            if path.starts_with("spec.limits.") && tightens(f.before.as_ref(), f.after.as_ref()) {
                out.push(format!("{} {path}: limit tightens", c.object));
            }
            if path.ends_with("requirements") {
                out.extend(requirement_changes(&c.object, f.before.as_ref(), f.after.as_ref()));
            }
        }
    }
    out
}

fn quantity(v: Option<&Value>) -> Option<i128> {
    match v? {
        Value::String(s) => Quantity::parse(s).map(|q| q.milli()),
        Value::Number(n) => n.as_i64().map(|n| i128::from(n) * 1000),
        _ => None,
    }
}

/// A limit tightens when it becomes set or smaller.
fn tightens(before: Option<&Value>, after: Option<&Value>) -> bool {
    match (quantity(before), quantity(after)) {
        (Some(b), Some(a)) => a < b,
        (None, Some(_)) => before.is_none(),
        _ => false,
    }
}

/// `key` → its values, from a requirements list.
fn requirement_values(v: Option<&Value>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in v.and_then(Value::as_array).into_iter().flatten() {
        let Some(key) = r.get("key").and_then(Value::as_str) else { continue };
        let op = r.get("operator").and_then(Value::as_str).unwrap_or("In");
        let values = r.get("values").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
        out.entry(format!("{key} {op}")).or_default().extend(values.map(str::to_string));
    }
    out
}

/// The values each requirement gained or lost, e.g. `NodePool/default requirement
/// karpenter.sh/capacity-type In: +spot`.
fn requirement_changes(object: &str, before: Option<&Value>, after: Option<&Value>) -> Vec<String> {
    let (old, new) = (requirement_values(before), requirement_values(after));
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let empty = BTreeSet::new();
    let mut out = Vec::new();
    for key in keys {
        let (o, n) = (old.get(key).unwrap_or(&empty), new.get(key).unwrap_or(&empty));
        let mut parts: Vec<String> = n.difference(o).map(|v| format!("+{v}")).collect();
        parts.extend(o.difference(n).map(|v| format!("-{v}")));
        if !parts.is_empty() {
            out.push(format!("{object} requirement {key}: {}", parts.join(" ")));
        }
    }
    out
}

/// A field value for people: strings bare, absent as `(absent)`.
pub fn show(v: &Option<Value>) -> String {
    match v {
        None => "(absent)".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cluster(pool_class: &str, class_ami: &str, cpu: &str) -> Objects {
        Objects::from([
            (
                "NodePool/a".to_string(),
                json!({"spec": {"template": {"spec": {"nodeClassRef": {"name": pool_class}}}, "limits": {"cpu": cpu}}}),
            ),
            ("EC2NodeClass/c".to_string(), json!({"spec": {"amiFamily": class_ami}})),
        ])
    }

    #[test]
    fn a_changed_node_class_drifts_the_pools_that_use_it() {
        let (base, head) = (cluster("c", "AL2", "10"), cluster("c", "AL2023", "10"));
        let lines = consequences(&compare(&base, &head, None), &head);
        assert_eq!(lines, ["nodes of NodePool/a will drift and be replaced"]);
        let other = cluster("d", "AL2023", "10");
        assert!(consequences(&compare(&cluster("d", "AL2", "10"), &other, None), &other).is_empty());
    }

    #[test]
    fn a_smaller_limit_tightens_and_a_larger_one_does_not() {
        let (base, head) = (cluster("c", "AL2", "1000m"), cluster("c", "AL2", "500m"));
        assert_eq!(consequences(&compare(&base, &head, None), &head), ["NodePool/a spec.limits.cpu: limit tightens"]);
        assert!(consequences(&compare(&head, &base, None), &base).is_empty());
    }
}
