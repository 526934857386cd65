//! kOps InstanceGroups with `manager: Karpenter` → a NodePool and an EC2NodeClass each,
//! following the rules kOps itself applies, so kOps users keep their IGs as the policy format.
//!
//! Pure: the inputs are the IG, the kOps cluster name and (when known) the Cluster spec.

use std::collections::{BTreeMap, BTreeSet};

use super::kops::{Cluster, InstanceGroup};
use super::meta::{Labels, ObjectMeta, Taint, TaintEffect};
use super::nodeclass::{
    AmiFamily, AmiSelectorTerm, BlockDevice, BlockDeviceMapping, EC2NodeClass, EC2NodeClassSpec, KubeletConfiguration,
    SelectorTerm, VolumeType,
};
use super::nodepool::{
    NodeClaimTemplate, NodeClaimTemplateSpec, NodeClassRef, NodePool, NodePoolSpec, Operator, Requirement,
    TemplateMetadata,
};
use super::quantity::Quantity;

/// Annotation on translated objects naming their source.
pub const TRANSLATED_FROM: &str = "capstan.io/translated-from";
/// Annotation on a translated EC2NodeClass whose userData must come from the state store.
pub const USER_DATA_SOURCE: &str = "capstan.io/user-data-source";

pub const LABEL_OS: &str = "kubernetes.io/os";
pub const LABEL_INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
pub const LABEL_CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";

/// Root volume size kOps gives nodes when the IG sets none, in GiB.
pub const DEFAULT_NODE_VOLUME_GIB: i64 = 128;
/// Root volume size kOps gives control-plane nodes when the IG sets none, in GiB.
pub const DEFAULT_CONTROL_PLANE_VOLUME_GIB: i64 = 64;
/// Root volume size kOps gives bastions when the IG sets none, in GiB.
pub const DEFAULT_BASTION_VOLUME_GIB: i64 = 32;

/// kOps's root volume size for the IG's role, used when the IG sets no positive size.
pub fn default_root_volume_gib(ig: &InstanceGroup) -> i64 {
    if ig.is_control_plane() {
        DEFAULT_CONTROL_PLANE_VOLUME_GIB
    } else if ig.role() == "Bastion" {
        DEFAULT_BASTION_VOLUME_GIB
    } else {
        DEFAULT_NODE_VOLUME_GIB
    }
}

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

/// Translates one Karpenter-managed IG of role Node. `cluster_name` is the kOps cluster name.
pub fn translate(
    ig: &InstanceGroup,
    cluster_name: &str,
    cluster: Option<&Cluster>,
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
    let taints = taints(ig).unwrap_or_else(|e| {
        errors.push(e);
        Vec::new()
    });
    let ami = ami_selector_terms(ig).unwrap_or_else(|e| {
        errors.push(e);
        Vec::new()
    });
    let kubelet = kubelet(ig).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut notes = vec![format!(
        "userData not resolved: it is the nodeup script at {cluster_name}/igconfig/node/{name}/nodeupscript.sh in the kOps state store, read at reconcile time"
    )];
    let associate_public_ip = match associate_public_ip(ig, cluster, &mut notes) {
        Ok(v) => v,
        Err(e) => return Err(vec![e]),
    };
    let annotations = BTreeMap::from([(TRANSLATED_FROM.to_string(), format!("InstanceGroup/{name}"))]);

    let node_pool = NodePool {
        api_version: super::nodepool::API_VERSION.to_string(),
        kind: "NodePool".to_string(),
        metadata: ObjectMeta { annotations: annotations.clone(), ..ObjectMeta::named(name) },
        spec: NodePoolSpec {
            template: NodeClaimTemplate {
                metadata: Some(TemplateMetadata { labels: node_labels(ig, cluster), annotations: Labels::new() }),
                spec: NodeClaimTemplateSpec {
                    requirements: requirements(ig),
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
            block_device_mappings: vec![root_volume(ig)],
            kubelet,
            associate_public_ip_address: associate_public_ip,
            ..EC2NodeClassSpec::default()
        },
        status: None,
    };
    Ok(Translated { node_pool, node_class, notes })
}

/// os, then instance types (when named), then capacity type — in that order.
pub fn requirements(ig: &InstanceGroup) -> Vec<Requirement> {
    let mut out = vec![Requirement::new(LABEL_OS, Operator::In, &["linux"])];
    let types = instance_types(ig);
    if !types.is_empty() {
        let refs: Vec<&str> = types.iter().map(String::as_str).collect();
        out.push(Requirement::new(LABEL_INSTANCE_TYPE, Operator::In, &refs));
    }
    out.push(Requirement::new(LABEL_CAPACITY_TYPE, Operator::In, capacity_types(ig)));
    out
}

/// The union of `mixedInstancesPolicy.instances` and the comma-separated `machineType`,
/// trimmed, de-duplicated and sorted.
pub fn instance_types(ig: &InstanceGroup) -> Vec<String> {
    let mut types = BTreeSet::new();
    let mixed = ig.spec.mixed_instances_policy.as_ref().and_then(|m| m.instances.as_ref());
    for t in mixed.into_iter().flatten() {
        types.insert(t.trim().to_string());
    }
    for t in ig.spec.machine_type.iter().flat_map(|m| m.split(',')) {
        types.insert(t.trim().to_string());
    }
    types.remove("");
    types.into_iter().collect()
}

/// `[spot]` with a max price or spot duration; both with on-demand above base below 100;
/// otherwise on-demand.
pub fn capacity_types(ig: &InstanceGroup) -> &'static [&'static str] {
    if ig.spec.max_price.is_some() || ig.spec.spot_duration_in_minutes.is_some() {
        return &["spot"];
    }
    let above = ig.spec.mixed_instances_policy.as_ref().and_then(|m| m.on_demand_above_base);
    match above {
        Some(pct) if pct < 100 => &["on-demand", "spot"],
        _ => &["on-demand"],
    }
}

/// Labels kOps gives the IG's nodes, minus keys Karpenter reserves.
pub fn node_labels(ig: &InstanceGroup, cluster: Option<&Cluster>) -> Labels {
    let mut labels = kops_node_labels(ig, cluster);
    labels.retain(|k, _| !is_reserved_label(k));
    labels
}

fn in_domain(key: &str, domain: &str) -> bool {
    let prefix = key.split_once('/').map_or("", |(p, _)| p);
    prefix == domain || prefix.ends_with(&format!(".{domain}"))
}

/// `kubernetes.io/hostname` and the karpenter.sh / karpenter.k8s.aws domains (and subdomains),
/// except `karpenter.sh/capacity-type`.
pub fn is_reserved_label(key: &str) -> bool {
    if key == LABEL_CAPACITY_TYPE {
        return false;
    }
    key == "kubernetes.io/hostname" || in_domain(key, "karpenter.sh") || in_domain(key, "karpenter.k8s.aws")
}

/// Parses `key=value:Effect` or `key:Effect`.
pub fn parse_taint(text: &str) -> Option<Taint> {
    let (kv, effect) = text.rsplit_once(':')?;
    let effect = TaintEffect::parse(effect.trim())?;
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string()).filter(|v| !v.is_empty())),
        None => (kv, None),
    };
    let key = key.trim();
    (!key.is_empty()).then(|| Taint { key: key.to_string(), value, effect, time_added: None })
}

fn taints(ig: &InstanceGroup) -> Result<Vec<Taint>, TranslateError> {
    let mut out = Vec::new();
    for (i, text) in ig.spec.taints.iter().flatten().enumerate() {
        let taint = parse_taint(text).ok_or_else(|| {
            err(
                &format!("spec.taints[{i}]"),
                format!("invalid taint `{text}`"),
                "write key=value:Effect or key:Effect with Effect one of NoSchedule, PreferNoSchedule, NoExecute",
            )
        })?;
        out.push(taint);
    }
    Ok(out)
}

/// Owner aliases kOps accepts in `image: <owner>/<name>`.
pub fn resolve_owner(owner: &str) -> &str {
    match owner {
        "ubuntu" => "099720109477",
        "amazon" | "amazon.com" => "137112412989",
        "redhat" | "redhat.com" => "309956199498",
        "debian" | "debian11" => "136693071363",
        "flatcar" => "075585003325",
        "rocky" | "rockylinux" => "792107900819",
        other => other,
    }
}

pub fn ami_selector_terms(ig: &InstanceGroup) -> Result<Vec<AmiSelectorTerm>, TranslateError> {
    let Some(image) = ig.spec.image.as_deref().map(str::trim) else {
        return Err(err(
            "spec",
            "a Karpenter-managed InstanceGroup needs spec.image",
            "set spec.image to an AMI id, ssm:<parameter>, <name> or <owner>/<name>",
        ));
    };
    if image.contains("://") {
        return Err(err(
            "spec.image",
            format!("image `{image}` is a URL, which Karpenter cannot select"),
            "use an AMI id (ami-…), ssm:<parameter>, <name> or <owner>/<name>",
        ));
    }
    let bad = |why: &str| {
        err(
            "spec.image",
            format!("image `{image}` {why}"),
            "use an AMI id (ami-…), ssm:<parameter>, <name> or <owner>/<name>",
        )
    };
    if image.is_empty() {
        return Err(bad("is empty"));
    }
    let term = if image.starts_with("ami-") {
        AmiSelectorTerm { id: Some(image.to_string()), ..Default::default() }
    } else if let Some(param) = image.strip_prefix("ssm:") {
        if param.is_empty() {
            return Err(bad("names no SSM parameter"));
        }
        AmiSelectorTerm { ssm_parameter: Some(param.to_string()), ..Default::default() }
    } else if let Some((owner, name)) = image.split_once('/') {
        if owner.is_empty() || name.is_empty() {
            return Err(bad("has an empty owner or name around `/`"));
        }
        AmiSelectorTerm {
            owner: Some(resolve_owner(owner).to_string()),
            name: Some(name.to_string()),
            ..Default::default()
        }
    } else {
        AmiSelectorTerm { name: Some(image.to_string()), owner: Some("self".to_string()), ..Default::default() }
    };
    Ok(vec![term])
}

/// The root device name written offline. kOps reads it from the AMI itself; the AWS provider
/// does the same at launch (DescribeImages `RootDeviceName`) and this is only the default.
pub fn root_device_name(_image: Option<&str>) -> &'static str {
    "/dev/xvda"
}

pub fn root_volume(ig: &InstanceGroup) -> BlockDeviceMapping {
    let rv = ig.spec.root_volume.clone().unwrap_or_default();
    let s = &ig.spec;
    let size = rv.size.or(s.root_volume_size).filter(|&n| n > 0).unwrap_or_else(|| default_root_volume_gib(ig));
    let kind = rv.volume_type.or(s.root_volume_type.clone()).unwrap_or_else(|| "gp3".to_string());
    let encryption = rv.encryption.or(s.root_volume_encryption);
    let key = rv.encryption_key.or(s.root_volume_encryption_key.clone());
    let iops = rv.iops.or(s.root_volume_iops);
    let throughput = rv.throughput.or(s.root_volume_throughput);
    let volume_type = serde_json::from_value::<VolumeType>(serde_json::Value::String(kind)).ok();
    let (iops, throughput) = match volume_type {
        Some(VolumeType::Gp3) => (Some(iops.unwrap_or(0).max(3000)), Some(throughput.unwrap_or(0).max(125))),
        Some(VolumeType::Io1 | VolumeType::Io2) => (Some(iops.unwrap_or(0).max(100)), None),
        _ => (None, None),
    };
    BlockDeviceMapping {
        device_name: Some(root_device_name(s.image.as_deref()).to_string()),
        root_volume: Some(true),
        ebs: Some(BlockDevice {
            volume_size: Quantity::parse(&format!("{size}Gi")),
            volume_type,
            iops,
            throughput,
            delete_on_termination: Some(true),
            encrypted: Some(encryption.unwrap_or(true)),
            kms_key_id: key.filter(|k| encryption == Some(true) && !k.is_empty()),
            ..BlockDevice::default()
        }),
    }
}

fn reserved(
    map: Option<&BTreeMap<String, String>>,
    field: &str,
) -> Result<Option<BTreeMap<String, Quantity>>, TranslateError> {
    let Some(map) = map else { return Ok(None) };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let q = Quantity::parse(v).ok_or_else(|| {
            err(&format!("{field}.{k}"), format!("invalid quantity `{v}`"), super::quantity::QUANTITY_HINT)
        })?;
        out.insert(k.clone(), q);
    }
    Ok(Some(out))
}

fn kubelet(ig: &InstanceGroup) -> Result<Option<KubeletConfiguration>, TranslateError> {
    let Some(k) = &ig.spec.kubelet else { return Ok(None) };
    let system = reserved(k.system_reserved.as_ref(), "spec.kubelet.systemReserved")?;
    let kube = reserved(k.kube_reserved.as_ref(), "spec.kubelet.kubeReserved")?;
    if k.max_pods.is_none() && system.is_none() && kube.is_none() {
        return Ok(None);
    }
    Ok(Some(KubeletConfiguration {
        max_pods: k.max_pods,
        system_reserved: system,
        kube_reserved: kube,
        ..KubeletConfiguration::default()
    }))
}

pub fn security_groups(ig: &InstanceGroup, cluster_name: &str) -> Vec<SelectorTerm> {
    let by_id = |id: &str| SelectorTerm { id: Some(id.to_string()), ..SelectorTerm::default() };
    let mut terms = match &ig.spec.security_group_override {
        Some(id) => vec![by_id(id)],
        None => vec![SelectorTerm {
            tags: BTreeMap::from([
                ("KubernetesCluster".to_string(), cluster_name.to_string()),
                ("Name".to_string(), format!("nodes.{cluster_name}")),
            ]),
            ..SelectorTerm::default()
        }],
    };
    terms.extend(ig.spec.additional_security_groups.iter().flatten().map(|id| by_id(id)));
    terms
}

/// Public and utility subnets take the IG's `associatePublicIp` (default true); private and
/// dual-stack subnets never get a public address. Only the IG's first subnet counts. Without
/// the Cluster spec the subnet types are unknown and the field is left unset.
fn associate_public_ip(
    ig: &InstanceGroup,
    cluster: Option<&Cluster>,
    notes: &mut Vec<String>,
) -> Result<Option<bool>, TranslateError> {
    let Some(cluster) = cluster else {
        notes.push(
            "associatePublicIPAddress not set: the kOps Cluster spec (subnet types) is not available".to_string(),
        );
        return Ok(None);
    };
    let Some(subnet) = ig.spec.subnets.as_ref().and_then(|s| s.first()) else {
        return Err(err(
            "spec.subnets",
            "a Karpenter-managed InstanceGroup needs at least one subnet",
            "list the IG's subnets by their names in the Cluster spec",
        ));
    };
    match cluster.subnet_type(subnet).as_deref() {
        Some("Public" | "Utility") => Ok(Some(ig.spec.associate_public_ip.unwrap_or(true))),
        Some("Private" | "DualStack") => Ok(Some(false)),
        Some(other) => Err(err(
            "spec.subnets[0]",
            format!("subnet `{subnet}` has type `{other}`, which a Karpenter node cannot use"),
            "use a Public, Utility, Private or DualStack subnet",
        )),
        None => Err(err(
            "spec.subnets[0]",
            format!("subnet `{subnet}` is not in the Cluster spec"),
            "name a subnet listed in the Cluster spec's subnets",
        )),
    }
}

/// `spec.iam.profile`'s last path segment, else `nodes.<cluster>` (cut to IAM's 64 characters).
pub fn instance_profile(ig: &InstanceGroup, cluster_name: &str) -> String {
    let custom = ig.spec.extra.get("iam").and_then(|iam| iam["profile"].as_str());
    if let Some(arn) = custom.filter(|a| !a.is_empty()) {
        return arn.rsplit('/').next().unwrap_or(arn).to_string();
    }
    format!("nodes.{cluster_name}").chars().take(64).collect()
}

/// Tag keys that EC2NodeClass reserves for Karpenter or EKS.
pub fn is_reserved_tag(key: &str) -> bool {
    key.starts_with("kubernetes.io/cluster")
        || matches!(
            key,
            "eks:eks-cluster-name"
                | "karpenter.sh/nodepool"
                | "karpenter.sh/nodeclaim"
                | "karpenter.k8s.aws/ec2nodeclass"
        )
}

/// The IG's cloud tags, as kOps puts them on its instances, minus reserved keys. Later entries
/// win: cluster cloud labels, the IG's cloud labels (which may override `Name`), cluster
/// autoscaler label and taint templates, then the role and instance-group tags.
pub fn tags(ig: &InstanceGroup, cluster_name: &str, cluster: Option<&Cluster>) -> Labels {
    let name = &ig.metadata.name;
    let mut tags = Labels::from([
        ("KubernetesCluster".to_string(), cluster_name.to_string()),
        ("Name".to_string(), format!("{name}.{cluster_name}")),
    ]);
    let cluster_labels = cluster.and_then(|c| c.spec.cloud_labels.clone()).unwrap_or_default();
    tags.extend(cluster_labels);
    tags.extend(ig.spec.cloud_labels.clone().unwrap_or_default());
    for (k, v) in kops_node_labels(ig, cluster) {
        tags.insert(format!("k8s.io/cluster-autoscaler/node-template/label/{k}"), v);
    }
    for taint in ig.spec.taints.iter().flatten() {
        let Some((key_value, effect)) = taint.rsplit_once(':') else { continue };
        let effect = effect.trim();
        if effect.is_empty() {
            continue;
        }
        let (key, value) = key_value.split_once('=').unwrap_or((key_value, ""));
        tags.insert(
            format!("k8s.io/cluster-autoscaler/node-template/taint/{}", key.trim()),
            format!("{value}:{effect}"),
        );
    }
    tags.insert("k8s.io/role/node".to_string(), "1".to_string());
    tags.insert("kops.k8s.io/instancegroup".to_string(), name.clone());
    tags.retain(|k, _| !k.is_empty() && !is_reserved_tag(k));
    tags
}

/// The labels kOps gives an IG's nodes: kubelet `nodeLabels` (cluster, then IG), the node role,
/// then the IG's `nodeLabels`, which win.
pub fn kops_node_labels(ig: &InstanceGroup, cluster: Option<&Cluster>) -> Labels {
    let mut labels = Labels::new();
    let cluster_kubelet = cluster.and_then(|c| c.spec.kubelet.as_ref());
    for kubelet in [cluster_kubelet, ig.spec.kubelet.as_ref()].into_iter().flatten() {
        labels.extend(kubelet.node_labels.clone().unwrap_or_default());
    }
    labels.insert("node-role.kubernetes.io/node".to_string(), String::new());
    labels.extend(ig.spec.node_labels.clone().unwrap_or_default());
    labels
}
