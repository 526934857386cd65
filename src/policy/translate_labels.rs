//! What kOps puts on an IG's nodes and instances: node labels (NodePool template labels),
//! taints, and cloud tags (EC2NodeClass tags).

use super::{LABEL_CAPACITY_TYPE, TranslateError, err};
use crate::policy::kops::{Cluster, InstanceGroup};
use crate::policy::meta::{Labels, Taint, TaintEffect};

/// The tag kOps's Node Termination Handler looks for when `managedASGTag` is not set.
pub const DEFAULT_NTH_MANAGED_TAG: &str = "aws-node-termination-handler/managed";

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

/// The labels kOps gives an IG's nodes: kubelet `nodeLabels` (cluster, then IG), the node role,
/// the IG's `nodeLabels`, then `kops.k8s.io/gvisor: "1"` when the IG enables gVisor.
pub fn kops_node_labels(ig: &InstanceGroup, cluster: Option<&Cluster>) -> Labels {
    let mut labels = Labels::new();
    let cluster_kubelet = cluster.and_then(|c| c.spec.kubelet.as_ref());
    for kubelet in [cluster_kubelet, ig.spec.kubelet.as_ref()].into_iter().flatten() {
        labels.extend(kubelet.node_labels.clone().unwrap_or_default());
    }
    labels.insert("node-role.kubernetes.io/node".to_string(), String::new());
    labels.extend(ig.spec.node_labels.clone().unwrap_or_default());
    let gvisor = ig.spec.extra.get("containerd").and_then(|c| c.get("gvisor")).and_then(|g| g.get("enabled"));
    if gvisor.and_then(|e| e.as_bool()) == Some(true) {
        labels.insert("kops.k8s.io/gvisor".to_string(), "1".to_string());
    }
    labels
}

/// Parses `key=value:Effect` or `key:Effect`; like kOps, a second `:` or `=` is refused.
pub fn parse_taint(text: &str) -> Option<Taint> {
    let (kv, effect) = text.split_once(':')?;
    let effect = TaintEffect::parse(effect.trim())?;
    let (key, value) = match kv.split_once('=') {
        Some((_, v)) if v.contains('=') => return None,
        Some((k, v)) => (k, Some(v.to_string()).filter(|v| !v.is_empty())),
        None => (kv, None),
    };
    let key = key.trim();
    (!key.is_empty()).then(|| Taint { key: key.to_string(), value, effect, time_added: None })
}

pub(super) fn taints(ig: &InstanceGroup) -> Result<Vec<Taint>, TranslateError> {
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
/// win: cluster cloud labels, the IG's cloud labels (which may override `Name`), the Node
/// Termination Handler tag (only where no cloud label set that key), cluster autoscaler label
/// and taint templates, then the role and instance-group tags.
pub fn tags(ig: &InstanceGroup, cluster_name: &str, cluster: Option<&Cluster>) -> Labels {
    let name = &ig.metadata.name;
    let mut tags = Labels::from([
        ("KubernetesCluster".to_string(), cluster_name.to_string()),
        ("Name".to_string(), format!("{name}.{cluster_name}")),
    ]);
    let cluster_labels = cluster.and_then(|c| c.spec.cloud_labels.clone()).unwrap_or_default();
    tags.extend(cluster_labels);
    tags.extend(ig.spec.cloud_labels.clone().unwrap_or_default());
    if let Some(key) = cluster.and_then(nth_managed_tag) {
        tags.entry(key).or_default();
    }
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

/// The tag kOps adds to every instance when its Node Termination Handler runs in queue mode,
/// so that the handler drains them. kOps fills the handler's defaults (enabled, queue mode, the
/// default tag) only when its own Karpenter is off; with it on, only what the spec says counts.
pub fn nth_managed_tag(cluster: &Cluster) -> Option<String> {
    if !cluster.is_aws() {
        return None;
    }
    let nth = cluster.node_termination_handler().unwrap_or_default();
    let defaulted = !cluster.karpenter_enabled();
    let enabled = nth.enabled.or(defaulted.then_some(true)) == Some(true);
    let queue_mode = nth.enable_sqs_termination_draining != Some(false);
    let key = nth.managed_asg_tag.or_else(|| defaulted.then(|| DEFAULT_NTH_MANAGED_TAG.to_string()))?;
    (enabled && queue_mode && !key.is_empty()).then_some(key)
}
