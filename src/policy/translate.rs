//! kOps InstanceGroups with `manager: Karpenter` → a NodePool and an EC2NodeClass each,
//! following the rules kOps itself applies, so kOps users keep their IGs as the policy format.
//!
//! Pure: the inputs are the IG, the kOps cluster name and (when known) the Cluster spec, whose
//! `capstan.io/kops-version` annotation picks the kOps release whose rules apply
//! ([`KopsRules`]).
//!
//! ```text
//! InstanceGroup ─┬─ requirements, labels, taints, size ───────────────► NodePool
//! Cluster spec ──┴─ AMI, volume, kubelet, tags, subnets, groups ──────► EC2NodeClass
//!                                   (userData and the AMI's root device are filled in later)
//! ```
//!
//! One file per part: `requirements`, `labels` (labels, taints, tags), `kubelet`, `volume` and
//! `selectors` (AMI, subnets, security groups, instance profile, public IP).

use std::collections::BTreeMap;

use super::kops::{Cluster, InstanceGroup, KopsRules};
use super::meta::{Labels, ObjectMeta};
use super::nodeclass::{AmiFamily, EC2NodeClass, EC2NodeClassSpec, SelectorTerm};
use super::nodepool::{
    NodeClaimTemplate, NodeClaimTemplateSpec, NodeClassRef, NodePool, NodePoolSpec, TemplateMetadata,
};
use super::quantity::Quantity;

#[path = "translate_kubelet.rs"]
pub mod kubelet;
#[path = "translate_labels.rs"]
pub mod labels;
#[path = "translate_requirements.rs"]
pub mod requirements;
#[path = "translate_selectors.rs"]
pub mod selectors;
#[path = "translate_volume.rs"]
pub mod volume;

pub use kubelet::kubelet;
pub use labels::{
    DEFAULT_NTH_MANAGED_TAG, is_reserved_label, is_reserved_tag, kops_node_labels, node_labels, parse_taint, tags,
};
pub use requirements::{capacity_types, instance_types, requirements};
pub use selectors::{ami_selector_terms, instance_profile, resolve_owner, security_groups};
pub use volume::{
    DEFAULT_BASTION_VOLUME_GIB, DEFAULT_CONTROL_PLANE_VOLUME_GIB, DEFAULT_NODE_VOLUME_GIB, default_root_volume_gib,
    root_device_name, root_volume,
};

/// Annotation on translated objects naming their source.
pub const TRANSLATED_FROM: &str = "capstan.io/translated-from";
/// Annotation on a translated EC2NodeClass whose userData must come from the state store.
pub const USER_DATA_SOURCE: &str = "capstan.io/user-data-source";

pub const LABEL_OS: &str = "kubernetes.io/os";
pub const LABEL_INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
pub const LABEL_CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
pub const LABEL_INSTANCE_CPU: &str = "karpenter.k8s.aws/instance-cpu";
pub const LABEL_INSTANCE_MEMORY: &str = "karpenter.k8s.aws/instance-memory";
pub const LABEL_INSTANCE_FAMILY: &str = "karpenter.k8s.aws/instance-family";

/// A translation problem, tied to a field of the InstanceGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    /// Path inside the IG document, e.g. `spec.image`.
    pub field: String,
    pub message: String,
    pub hint: String,
}

fn err(field: &str, message: impl Into<String>, hint: &str) -> TranslateError {
    TranslateError { field: field.to_string(), message: message.into(), hint: hint.to_string() }
}

/// The pair made from one InstanceGroup, with what could not be decided offline.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    pub node_pool: NodePool,
    pub node_class: EC2NodeClass,
    /// Things the output leaves open, for the user to read (e.g. userData not resolved).
    pub notes: Vec<String>,
}

/// The value, or `fallback` with the error recorded, so that one pass reports every problem.
fn keep<T>(errors: &mut Vec<TranslateError>, result: Result<T, TranslateError>, fallback: T) -> T {
    result.unwrap_or_else(|e| {
        errors.push(e);
        fallback
    })
}

/// Translates one Karpenter-managed IG of role Node under the rules the Cluster spec selects.
/// `cluster_name` is the kOps cluster name.
pub fn translate(
    ig: &InstanceGroup,
    cluster_name: &str,
    cluster: Option<&Cluster>,
) -> Result<Translated, Vec<TranslateError>> {
    let (rules, rules_note) = KopsRules::for_cluster(cluster);
    let mut t = translate_with(ig, cluster_name, cluster, rules)?;
    t.notes.extend(rules_note);
    Ok(t)
}

/// [`translate`] under the given kOps release's rules.
pub fn translate_with(
    ig: &InstanceGroup,
    cluster_name: &str,
    cluster: Option<&Cluster>,
    rules: KopsRules,
) -> Result<Translated, Vec<TranslateError>> {
    let mut errors = Vec::new();
    let name = ig.metadata.name.as_str();
    if let Some(min) = ig.spec.min_size
        && min <= 0
    {
        errors.push(err(
            "spec.minSize",
            format!("minSize {min} is not allowed on a Karpenter-managed InstanceGroup"),
            "set minSize to 1 or more for a static pool of that many nodes, or remove it",
        ));
    }
    if let Some(max) = ig.spec.max_size
        && max <= 0
    {
        errors.push(err(
            "spec.maxSize",
            format!("maxSize {max} is not allowed on a Karpenter-managed InstanceGroup; kOps requires more than zero"),
            "set maxSize to 1 or more, or remove it for a pool without a node limit",
        ));
    }
    let taints = keep(&mut errors, labels::taints(ig), Vec::new());
    let ami = keep(&mut errors, ami_selector_terms(ig), Vec::new());
    let kubelet = keep(&mut errors, kubelet(ig, cluster), None);
    let reqs = keep(&mut errors, requirements(ig, rules), Vec::new());
    let root = keep(&mut errors, root_volume(ig).map(Some), None);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut notes = vec![format!(
        "userData not resolved: it is the nodeup script at {cluster_name}/igconfig/node/{name}/nodeupscript.sh in the kOps state store, read at reconcile time"
    )];
    let associate_public_ip = selectors::associate_public_ip(ig, cluster, &mut notes).map_err(|e| vec![e])?;
    let annotations = BTreeMap::from([(TRANSLATED_FROM.to_string(), format!("InstanceGroup/{name}"))]);

    let node_pool = NodePool {
        api_version: super::nodepool::API_VERSION.to_string(),
        kind: "NodePool".to_string(),
        metadata: ObjectMeta { annotations: annotations.clone(), ..ObjectMeta::named(name) },
        spec: NodePoolSpec {
            template: NodeClaimTemplate {
                metadata: Some(TemplateMetadata { labels: node_labels(ig, cluster), annotations: Labels::new() }),
                spec: NodeClaimTemplateSpec {
                    requirements: reqs,
                    taints,
                    startup_taints: Vec::new(),
                    expire_after: None,
                    termination_grace_period: None,
                    node_class_ref: NodeClassRef {
                        group: "karpenter.k8s.aws".to_string(),
                        kind: "EC2NodeClass".to_string(),
                        name: name.to_string(),
                    },
                },
            },
            disruption: None,
            limits: ig
                .spec
                .max_size
                .map(|max| BTreeMap::from([("nodes".to_string(), Quantity::from_milli(max as i128 * 1000))])),
            weight: None,
            replicas: ig.spec.min_size.filter(|m| *m > 0),
        },
        status: None,
    };
    let mut class_annotations = annotations;
    class_annotations.insert(
        USER_DATA_SOURCE.to_string(),
        format!("state-store:{cluster_name}/igconfig/node/{name}/nodeupscript.sh"),
    );
    let node_class = EC2NodeClass {
        api_version: super::nodeclass::API_VERSION.to_string(),
        kind: "EC2NodeClass".to_string(),
        metadata: ObjectMeta { annotations: class_annotations, ..ObjectMeta::named(name) },
        spec: EC2NodeClassSpec {
            ami_family: Some(AmiFamily::Custom),
            ami_selector_terms: ami,
            subnet_selector_terms: vec![SelectorTerm {
                tags: BTreeMap::from([
                    ("KubernetesCluster".to_string(), cluster_name.to_string()),
                    (format!("kops.k8s.io/instance-group/{name}"), "true".to_string()),
                ]),
                ..SelectorTerm::default()
            }],
            security_group_selector_terms: security_groups(ig, cluster_name),
            instance_profile: Some(instance_profile(ig, cluster_name)),
            tags: tags(ig, cluster_name, cluster),
            block_device_mappings: root.into_iter().collect(),
            kubelet,
            associate_public_ip_address: associate_public_ip,
            ..EC2NodeClassSpec::default()
        },
        status: None,
    };
    Ok(Translated { node_pool, node_class, notes })
}
