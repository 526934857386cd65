//! What a reconcile pass would change in one cluster's InstanceGroups: pure, over the desired
//! documents (from the repository), what the store holds, and what capstan last applied.
//!
//! Ownership: an IG in the repository is capstan's. An IG only in the store is deleted only when
//! it carries capstan's ownership label, pruning is on, and its role is Node; anything else there
//! is left alone and listed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::diff::{self, FieldChange};
use super::object::{self, CLUSTER_LABEL, OWNER_LABEL, OWNER_VALUE};
use crate::policy::kops::InstanceGroup;

/// An InstanceGroup as read from the store.
#[derive(Debug, Clone)]
pub struct Current {
    pub name: String,
    pub value: Value,
    pub bytes: Vec<u8>,
    pub etag: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// The planned change to one InstanceGroup.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub name: String,
    pub key: String,
    pub action: Action,
    pub fields: Vec<FieldChange>,
    /// Why a delete was planned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The version the change was planned against (absent for a create).
    #[serde(skip)]
    pub base: Option<Current>,
}

/// An IG in the store that this pass leaves alone, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// The kOps cluster name.
    pub cluster: String,
    pub revision: String,
    pub changes: Vec<Change>,
    pub kept: Vec<Kept>,
    /// IGs in sync with the repository.
    pub unchanged: Vec<String>,
    pub warnings: Vec<String>,
    /// Objects that could not be read or planned; each is left untouched.
    pub errors: Vec<String>,
    /// The desired documents, by name, recorded as last applied once they are in the store.
    #[serde(skip)]
    pub desired: BTreeMap<String, Value>,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// The document capstan wants in the store for a repository IG: as written in Git, with the
/// cluster label kOps expects and capstan's ownership label.
pub fn desired_document(ig: &InstanceGroup, kops_name: &str) -> Value {
    let mut value = serde_json::to_value(ig).expect("typed documents serialise");
    let meta = value["metadata"].as_object_mut().expect("metadata is a map");
    meta.shift_remove("creationTimestamp");
    let labels = meta.entry("labels").or_insert_with(|| Value::Object(Default::default()));
    if let Some(labels) = labels.as_object_mut() {
        labels.entry(CLUSTER_LABEL).or_insert_with(|| Value::String(kops_name.to_string()));
        labels.insert(OWNER_LABEL.to_string(), Value::String(OWNER_VALUE.to_string()));
    }
    value
}

/// The inputs of one cluster's plan.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub cluster: String,
    pub revision: String,
    pub desired: BTreeMap<String, Value>,
    pub current: Vec<Current>,
    /// Names of store objects that could not be read; they are never written.
    pub unreadable: BTreeSet<String>,
    pub last_applied: BTreeMap<String, Value>,
    pub prune: bool,
}

pub fn plan(inputs: &Inputs) -> Plan {
    let mut plan = Plan {
        cluster: inputs.cluster.clone(),
        revision: inputs.revision.clone(),
        desired: inputs.desired.clone(),
        ..Plan::default()
    };
    let current: BTreeMap<&str, &Current> = inputs.current.iter().map(|c| (c.name.as_str(), c)).collect();
    for (name, desired) in &inputs.desired {
        if inputs.unreadable.contains(name) {
            continue;
        }
        let key = object::instance_group_key(&inputs.cluster, name);
        let base = current.get(name.as_str()).copied();
        let fields = diff::diff(desired, base.map(|c| &c.value), inputs.last_applied.get(name));
        if fields.is_empty() {
            plan.unchanged.push(name.clone());
            continue;
        }
        let action = if base.is_some() { Action::Update } else { Action::Create };
        plan.changes.push(Change { name: name.clone(), key, action, fields, reason: None, base: base.cloned() });
    }
    for c in &inputs.current {
        if inputs.desired.contains_key(&c.name) {
            continue;
        }
        match prune_decision(c, inputs.prune) {
            Ok(reason) => plan.changes.push(Change {
                name: c.name.clone(),
                key: object::instance_group_key(&inputs.cluster, &c.name),
                action: Action::Delete,
                fields: Vec::new(),
                reason: Some(reason),
                base: Some(c.clone()),
            }),
            Err(reason) => plan.kept.push(Kept { name: c.name.clone(), reason }),
        }
    }
    plan
}

/// Whether an IG that is in the store but not in the repository is deleted, and why (not).
fn prune_decision(ig: &Current, prune: bool) -> Result<String, String> {
    let owned = ig.value["metadata"]["labels"][OWNER_LABEL].as_str() == Some(OWNER_VALUE);
    if !owned {
        return Err("not in the repository and not written by capstan".to_string());
    }
    let role = ig.value["spec"]["role"].as_str().unwrap_or("Node");
    if role != "Node" {
        return Err(format!(
            "no longer in the repository, but role {role} is never pruned; delete it with `kops delete ig`"
        ));
    }
    if !prune {
        return Err(
            "no longer in the repository; set ClusterPolicy spec.pruneInstanceGroups: true to delete it".to_string()
        );
    }
    Ok("written by capstan and no longer in the repository; pruning is on".to_string())
}
