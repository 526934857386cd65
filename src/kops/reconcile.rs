//! One reconcile pass for one cluster: read the store, plan against the repository's
//! InstanceGroups, apply, and record what was applied and the outcome under
//! `<cluster>/capstan/`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::apply::{self, Outcome};
use super::object::{self, Corrupt};
use super::plan::{self, Inputs, Plan};
use super::read::{self, Cache};
use super::store::{StateStore, StoreError};
use crate::policy::EffectivePolicy;
use crate::policy::kops::Cluster;

/// What the repository wants for one cluster.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The kOps cluster name: the store folder.
    pub cluster: String,
    /// The policy revision, e.g. `main@sha1:…`.
    pub revision: String,
    /// Desired InstanceGroup documents by name (`plan::desired_document`).
    pub desired: BTreeMap<String, Value>,
    /// ClusterPolicy `spec.pruneInstanceGroups`.
    pub prune: bool,
}

impl Target {
    /// The target a cluster's effective policy sets: its InstanceGroups and its pruning rule.
    pub fn from_policy(policy: &EffectivePolicy, revision: &str) -> Target {
        let desired = policy
            .instance_groups
            .iter()
            .map(|ig| (ig.value.metadata.name.clone(), plan::desired_document(&ig.value, &policy.kops_name)))
            .collect();
        let prune = policy.cluster_policy.as_ref().and_then(|p| p.value.spec.prune_instance_groups).unwrap_or(false);
        Target { cluster: policy.kops_name.clone(), revision: revision.to_string(), desired, prune }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(
        "no kOps cluster at {key} in the state store: check the cluster's kopsName in fleet.yaml and the state store URL (capstan never creates a cluster; run `kops create cluster` first)"
    )]
    NoCluster { key: String },
    /// `<cluster>/config` exists but cannot be parsed: the Cluster checks cannot run, so nothing
    /// is planned or written for the cluster.
    #[error(
        "{0}\n  the Cluster spec cannot be read, so nothing is planned or written for this cluster: fix it with `kops edit cluster` or restore it from a backup of the state store"
    )]
    CorruptCluster(Corrupt),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn plan_cluster<S: StateStore>(store: &S, target: &Target, cache: &Cache) -> Result<Plan, ReconcileError> {
    let read::ClusterState { spec, current, unreadable, last_applied, warnings } =
        read::read(store, &target.cluster, cache).await?;
    let spec = match spec {
        None => return Err(ReconcileError::NoCluster { key: object::config_key(&target.cluster) }),
        Some(Err(e)) => return Err(ReconcileError::CorruptCluster(e)),
        Some(Ok(spec)) => spec,
    };
    let inputs = Inputs {
        cluster: target.cluster.clone(),
        revision: target.revision.clone(),
        desired: target.desired.clone(),
        current,
        unreadable: unreadable.keys().cloned().collect(),
        last_applied,
        prune: target.prune,
    };
    let mut plan = plan::plan(&inputs);
    plan.warnings.extend(warnings);
    for e in unreadable.values() {
        plan.errors.push(format!("{e}\n  left untouched"));
    }
    for (name, doc) in &target.desired {
        let labelled = doc["metadata"]["labels"][object::CLUSTER_LABEL].as_str().unwrap_or_default();
        if labelled != target.cluster {
            plan.warnings.push(format!(
                "InstanceGroup/{name} is labelled {}: {labelled} but is written to cluster {}; fix metadata.labels in the repository",
                object::CLUSTER_LABEL,
                target.cluster
            ));
        }
    }
    plan.warnings.extend(cluster_spec_warnings(&spec, &target.desired));
    Ok(plan)
}

/// What the Cluster spec must and must not enable for the Karpenter-managed IGs the repository
/// declares: IRSA, and not kOps's own Karpenter (which would act on the same pending pods).
pub fn cluster_spec_warnings(spec: &Cluster, desired: &BTreeMap<String, Value>) -> Vec<String> {
    let karpenter: Vec<&str> = desired
        .iter()
        .filter(|(_, v)| v["spec"]["manager"] == "Karpenter" && v["spec"]["role"].as_str().unwrap_or("Node") == "Node")
        .map(|(n, _)| n.as_str())
        .collect();
    let mut warnings = Vec::new();
    if karpenter.is_empty() {
        return warnings;
    }
    let igs = karpenter.join(", ");
    if spec.karpenter_enabled() {
        warnings.push(format!(
            "Karpenter-managed InstanceGroups ({igs}) and spec.karpenter.enabled: true, which makes kOps install its own Karpenter to act on the same pending pods (capstan waits while it runs); capstan does not need it: set spec.karpenter.enabled: false with `kops edit cluster`, then remove kOps's Karpenter as the README's Installing section says"
        ));
    }
    if !spec.irsa_enabled() {
        warnings.push(format!(
            "Karpenter-managed InstanceGroups ({igs}) need IRSA on kOps 1.34+; set spec.serviceAccountIssuerDiscovery.enableAWSOIDCProvider: true"
        ));
    }
    warnings
}

/// The result of one pass.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub plan: Plan,
    pub outcome: Outcome,
    /// `applied`, `unchanged`, `conflict` or `error`.
    pub result: &'static str,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.outcome.conflicts.is_empty() && self.outcome.errors.is_empty() && self.plan.errors.is_empty()
    }
}

/// Plans, applies and records one pass.
pub async fn reconcile_once<S: StateStore>(
    store: &S,
    target: &Target,
    cache: &Cache,
    now: DateTime<Utc>,
) -> Result<Report, ReconcileError> {
    let mut plan = plan_cluster(store, target, cache).await?;
    // Best effort: leftovers that cannot be removed now are tried again next pass.
    match store.tidy(&target.cluster).await {
        Ok(removed) => {
            for key in removed {
                tracing::warn!(%key, "removed a temporary file left by an interrupted write");
                plan.warnings.push(format!("removed {key}, a temporary file left by an interrupted write"));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not remove temporary files left by interrupted writes");
            plan.warnings.push(format!("could not remove temporary files left by interrupted writes: {e}"));
        }
    }
    let outcome = apply::apply(store, &plan, cache, now).await;
    let result = if !outcome.errors.is_empty() || !plan.errors.is_empty() {
        "error"
    } else if !outcome.conflicts.is_empty() {
        "conflict"
    } else if outcome.applied.is_empty() {
        "unchanged"
    } else {
        "applied"
    };
    let report = Report { plan, outcome, result };
    record_last_applied(store, &report).await?;
    record_status(store, &report, now).await?;
    Ok(report)
}

/// Last-applied documents: the repository's version of every IG now in sync with it.
async fn record_last_applied<S: StateStore>(store: &S, report: &Report) -> Result<(), StoreError> {
    let plan = &report.plan;
    let mut in_sync: Vec<&str> = plan.unchanged.iter().map(String::as_str).collect();
    let mut deleted = Vec::new();
    for a in &report.outcome.applied {
        match a.action {
            plan::Action::Delete => deleted.push(a.name.as_str()),
            _ => in_sync.push(a.name.as_str()),
        }
    }
    update_json(store, &object::last_applied_key(&plan.cluster), |doc| {
        if !doc.is_object() {
            *doc = json!({});
        }
        let map = doc.as_object_mut().expect("made an object above");
        for name in &in_sync {
            map.insert(name.to_string(), plan.desired[*name].clone());
        }
        for name in &deleted {
            map.shift_remove(*name);
        }
        map.sort_keys();
    })
    .await
}

/// `<cluster>/capstan/status.json`, section `instanceGroups`; other sections are kept.
async fn record_status<S: StateStore>(store: &S, report: &Report, now: DateTime<Utc>) -> Result<(), StoreError> {
    let plan = &report.plan;
    let count = |a| report.outcome.applied.iter().filter(|x| x.action == a).count();
    let section = json!({
        "revision": plan.revision,
        "time": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "outcome": report.result,
        "created": count(plan::Action::Create),
        "updated": count(plan::Action::Update),
        "deleted": count(plan::Action::Delete),
        "unchanged": plan.unchanged.len(),
        "kept": plan.kept,
        "conflicts": report.outcome.conflicts,
        "errors": plan.errors.iter().chain(&report.outcome.errors).collect::<Vec<_>>(),
        "warnings": plan.warnings,
    });
    update_json(store, &object::status_key(&plan.cluster), |doc| {
        if !doc.is_object() {
            *doc = json!({});
        }
        doc["instanceGroups"] = section.clone();
    })
    .await
}

/// Read-modify-write of one of capstan's JSON objects with compare-and-swap; an unreadable
/// object is replaced (it is capstan's own).
pub async fn update_json<S: StateStore>(
    store: &S,
    key: &str,
    mut edit: impl FnMut(&mut Value),
) -> Result<(), StoreError> {
    for _ in 0..apply::MAX_ATTEMPTS * 4 {
        let current = store.get(key).await?;
        let mut doc = current.as_ref().and_then(|o| serde_json::from_slice(&o.bytes).ok()).unwrap_or(Value::Null);
        let before = doc.clone();
        edit(&mut doc);
        if current.is_some() && doc == before {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&doc).expect("JSON values serialise");
        let written = match &current {
            Some(o) => store.put_if_match(key, &bytes, &o.etag).await,
            None => store.put_if_absent(key, &bytes).await,
        };
        match written {
            Ok(_) => return Ok(()),
            Err(StoreError::PreconditionFailed(_) | StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::PreconditionFailed(format!("{key} (too many concurrent writers)")))
}
