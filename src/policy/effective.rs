//! A cluster's effective policy: base documents with the cluster's overrides merged on top
//! (RFC 7386), the cluster's own additions, and its Karpenter-managed InstanceGroups translated.
//!
//! ```text
//! base/*  ──┐
//!           ├─ merge by (kind, name) ─► typed NodePools, EC2NodeClasses, ClusterPolicy
//! clusters/<c>/* ─┘                        + translate(InstanceGroups) ─► EffectivePolicy
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;

use super::bounds;
use super::capstan::{ClusterPolicy, FleetCluster, FleetSpec};
use super::commitment::Commitment;
use super::diag::{Diagnostics, Severity};
use super::document::{self, Kind, Origin};
use super::kops::{Cluster, InstanceGroup};
use super::load::{Entry, Repo};
use super::nodeclass::EC2NodeClass;
use super::nodeoverlay::NodeOverlay;
use super::nodepool::NodePool;
use super::translate;
use super::yaml::Step;

pub use super::document::Located;

/// Everything that governs one cluster.
#[derive(Debug, Clone)]
pub struct EffectivePolicy {
    /// The cluster's folder name.
    pub cluster: String,
    /// The kOps cluster name (state-store folder).
    pub kops_name: String,
    pub fleet_entry: Option<FleetCluster>,
    /// The whole Fleet, for the rollout gate (waves, approvals, pause).
    pub fleet: Option<FleetSpec>,
    pub node_pools: Vec<Located<NodePool>>,
    pub node_classes: Vec<Located<EC2NodeClass>>,
    pub instance_groups: Vec<Located<InstanceGroup>>,
    pub cluster_policy: Option<Located<ClusterPolicy>>,
    pub cluster_spec: Option<Located<Cluster>>,
    /// NodeOverlays (karpenter.sh/v1alpha1), sorted by name: price changes for offerings.
    pub node_overlays: Vec<Located<NodeOverlay>>,
    /// CapacityBuffers (autoscaling.x-k8s.io), sorted by name: room kept for placeholder pods.
    pub capacity_buffers: Vec<Located<super::capacitybuffer::CapacityBuffer>>,
    /// PodTemplates (v1) that buffers' `podTemplateRef` name, sorted by name.
    pub pod_templates: Vec<Located<super::capacitybuffer::PodTemplate>>,
    /// The fleet's commitments in this cluster's region (`commitments/` at the repository root).
    pub commitments: Vec<Located<Commitment>>,
    /// Where the kOps Cluster spec came from, for the output.
    pub cluster_spec_source: String,
    /// Facts the output must say (unresolved userData, missing cluster spec, …).
    pub notes: Vec<String>,
}

impl EffectivePolicy {
    pub fn node_pool(&self, name: &str) -> Option<&Located<NodePool>> {
        self.node_pools.iter().find(|p| p.value.metadata.name == name)
    }

    pub fn node_class(&self, name: &str) -> Option<&Located<EC2NodeClass>> {
        self.node_classes.iter().find(|c| c.value.metadata.name == name)
    }
}

/// Computes the effective policy of `cluster`, reporting every problem found on the way.
pub fn effective(repo: &Repo, cluster: &str) -> (EffectivePolicy, Diagnostics) {
    let mut diags = Diagnostics::default();
    let fleet_entry =
        repo.fleet.as_ref().and_then(|(f, _)| f.spec.clusters.iter().find(|c| c.name == cluster).cloned());
    let kops_name = fleet_entry.as_ref().map_or_else(|| cluster.to_string(), |c| c.kops_name.clone());
    let empty = Vec::new();
    let own = repo.clusters.get(cluster).unwrap_or(&empty);
    let merged = merge(&repo.base, own);

    let mut policy = EffectivePolicy {
        cluster: cluster.to_string(),
        kops_name,
        fleet_entry,
        fleet: repo.fleet.as_ref().map(|(f, _)| f.spec.clone()),
        node_pools: Vec::new(),
        node_classes: Vec::new(),
        instance_groups: Vec::new(),
        cluster_policy: None,
        cluster_spec: None,
        node_overlays: Vec::new(),
        capacity_buffers: Vec::new(),
        pod_templates: Vec::new(),
        commitments: Vec::new(),
        cluster_spec_source: String::new(),
        notes: Vec::new(),
    };
    // InstanceGroups with names or values out of bounds are not translated: their errors are
    // reported at the IG's own fields, not again at the objects made from them.
    let mut out_of_bounds = BTreeSet::new();
    for (kind, origin, value) in &merged {
        let name = value["metadata"]["name"].as_str().unwrap_or_default();
        let object = format!("{}/{name}", kind.name());
        let clean = match kind {
            Kind::NodePool => typed_into(*kind, &mut policy.node_pools, &mut diags, origin, &object, value),
            Kind::EC2NodeClass => typed_into(*kind, &mut policy.node_classes, &mut diags, origin, &object, value),
            Kind::InstanceGroup => typed_into(*kind, &mut policy.instance_groups, &mut diags, origin, &object, value),
            Kind::ClusterPolicy => {
                let mut found = Vec::new();
                let clean = typed_into(*kind, &mut found, &mut diags, origin, &object, value);
                for p in found {
                    if let Some(first) = &policy.cluster_policy {
                        diags.push(p.origin.diag(Severity::Error, &object, &document::steps("metadata.name"),
                            format!("a second ClusterPolicy for cluster `{cluster}` (the first is ClusterPolicy/{})", first.value.metadata.name),
                            "a cluster has one ClusterPolicy; give the cluster's policy.yaml the base policy's name to override it"));
                    } else {
                        policy.cluster_policy = Some(p);
                    }
                }
                clean
            }
            Kind::Cluster => {
                let mut found = Vec::new();
                let clean = typed_into(*kind, &mut found, &mut diags, origin, &object, value);
                policy.cluster_spec = found.pop();
                clean
            }
            Kind::NodeOverlay => typed_into(*kind, &mut policy.node_overlays, &mut diags, origin, &object, value),
            Kind::CapacityBuffer => typed_into(*kind, &mut policy.capacity_buffers, &mut diags, origin, &object, value),
            Kind::PodTemplate => typed_into(*kind, &mut policy.pod_templates, &mut diags, origin, &object, value),
            Kind::Fleet | Kind::Guardrails | Kind::Commitment => true,
        };
        if !clean && *kind == Kind::InstanceGroup {
            out_of_bounds.insert(name.to_string());
        }
    }
    policy.cluster_spec_source = match &policy.cluster_spec {
        Some(c) => format!("{} (repository copy)", c.origin.layers[0].file),
        None => {
            "none: no clusters/<name>/cluster.yaml in the repository; the state store's copy is read at reconcile time"
                .to_string()
        }
    };
    translate_igs(&mut policy, &out_of_bounds, &mut diags);
    policy.node_pools.sort_by(|a, b| a.value.metadata.name.cmp(&b.value.metadata.name));
    policy.node_classes.sort_by(|a, b| a.value.metadata.name.cmp(&b.value.metadata.name));
    policy.node_overlays.sort_by(|a, b| a.value.metadata.name.cmp(&b.value.metadata.name));
    policy.capacity_buffers.sort_by(|a, b| {
        (a.value.namespace(), &a.value.metadata.name).cmp(&(b.value.namespace(), &b.value.metadata.name))
    });
    policy.pod_templates.sort_by(|a, b| {
        (a.value.namespace(), &a.value.metadata.name).cmp(&(b.value.namespace(), &b.value.metadata.name))
    });
    let region = policy.fleet_entry.as_ref().map(|c| c.region.as_str());
    policy.commitments =
        repo.commitments.iter().filter(|c| Some(c.value.spec.region.as_str()) == region).cloned().collect();
    (policy, diags)
}

/// Base documents with same-key cluster documents merged on, then cluster-only documents.
fn merge(base: &[Entry], own: &[Entry]) -> Vec<(Kind, Origin, serde_json::Value)> {
    let mut out = Vec::new();
    let mut used = vec![false; own.len()];
    for b in base {
        let over = own.iter().position(|o| o.kind == b.kind && o.doc.identity(o.kind) == b.doc.identity(b.kind));
        match over {
            Some(i) => {
                used[i] = true;
                let mut value = b.doc.value.clone();
                json_patch::merge(&mut value, &own[i].doc.value);
                let origin = Origin { layers: vec![own[i].doc.clone(), b.doc.clone()], translated_at: None };
                out.push((b.kind, origin, value));
            }
            None => out.push((b.kind, Origin::of(&b.doc), b.doc.value.clone())),
        }
    }
    for (o, used) in own.iter().zip(used) {
        if !used {
            out.push((o.kind, Origin::of(&o.doc), o.doc.value.clone()));
        }
    }
    out
}

/// Admits one document into `list`; false when it has errors.
fn typed_into<T: DeserializeOwned>(
    kind: Kind,
    list: &mut Vec<Located<T>>,
    diags: &mut Diagnostics,
    origin: &Origin,
    object: &str,
    value: &serde_json::Value,
) -> bool {
    let admitted = bounds::admit::<T>(kind, origin, object, value);
    let clean = !admitted.has_errors();
    admitted.diagnostics.into_iter().for_each(|d| diags.push(d));
    if let Some(v) = admitted.value {
        list.push(Located { value: v, origin: origin.clone() });
    }
    clean
}

/// Passes an object made from InstanceGroup `name` (and named after it) through the same gate as
/// a written one; its findings point at the IG and say which object they are about.
fn admit_made<T: serde::Serialize + DeserializeOwned>(
    kind: Kind,
    made: &T,
    name: &str,
    origin: &Origin,
) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let value = serde_json::to_value(made).expect("policy objects serialise");
    let object = format!("{}/{name}", kind.name());
    for mut d in bounds::admit::<T>(kind, origin, &object, &value).diagnostics {
        d.message = format!("{} (in the {} made from InstanceGroup/{name})", d.message, kind.name());
        diags.push(d);
    }
    diags
}

fn translate_igs(policy: &mut EffectivePolicy, out_of_bounds: &BTreeSet<String>, diags: &mut Diagnostics) {
    let cluster = policy.cluster_spec.as_ref().map(|c| &c.value);
    let mut made = BTreeMap::new();
    for ig in &policy.instance_groups {
        if !ig.value.is_karpenter() || out_of_bounds.contains(&ig.value.metadata.name) {
            continue;
        }
        let object = format!("InstanceGroup/{}", ig.value.metadata.name);
        if ig.value.role() != "Node" {
            diags.push(ig.origin.diag(
                Severity::Error,
                &object,
                &document::steps("spec.manager"),
                format!("only role Node may be managed by Karpenter; this IG has role {}", ig.value.role()),
                "use manager: CloudGroup (the default) for this role",
            ));
            continue;
        }
        match translate::translate(&ig.value, &policy.kops_name, cluster) {
            Ok(t) => {
                for note in &t.notes {
                    let msg = format!("InstanceGroup/{}: {note}", ig.value.metadata.name);
                    if !policy.notes.contains(&msg) {
                        policy.notes.push(msg);
                    }
                }
                made.insert(ig.value.metadata.name.clone(), (t, ig.origin.clone()));
            }
            Err(errors) => {
                for e in errors {
                    diags.push(ig.origin.diag(Severity::Error, &object, &document::steps(&e.field), e.message, e.hint));
                }
            }
        }
    }
    for (name, (t, origin)) in made {
        let translated = Origin {
            layers: origin.layers.clone(),
            translated_at: Some(vec![Step::Key("metadata".into()), Step::Key("name".into())]),
        };
        if let Some(existing) = policy.node_pool(&name) {
            let (file, span) = existing.origin.locate(&[]);
            diags.push(origin.diag(
                Severity::Error,
                &format!("InstanceGroup/{name}"),
                &document::steps("spec.manager"),
                format!("translates to NodePool/{name}, which {file}:{}:{} already defines", span.line, span.column),
                "rename the InstanceGroup or the NodePool",
            ));
            continue;
        }
        if let Some(existing) = policy.node_class(&name) {
            let (file, span) = existing.origin.locate(&[]);
            diags.push(origin.diag(
                Severity::Error,
                &format!("InstanceGroup/{name}"),
                &document::steps("spec.manager"),
                format!(
                    "translates to EC2NodeClass/{name}, which {file}:{}:{} already defines",
                    span.line, span.column
                ),
                "rename the InstanceGroup or the EC2NodeClass",
            ));
            continue;
        }
        diags.extend(admit_made(Kind::NodePool, &t.node_pool, &name, &translated));
        diags.extend(admit_made(Kind::EC2NodeClass, &t.node_class, &name, &translated));
        policy.node_pools.push(Located { value: t.node_pool, origin: translated.clone() });
        policy.node_classes.push(Located { value: t.node_class, origin: translated });
    }
}
