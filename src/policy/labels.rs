//! Label and requirement-key rules shared by NodePool checks and the translation.

/// AWS instance labels Karpenter knows (`karpenter.k8s.aws/<name>`).
pub const AWS_WELL_KNOWN: &[&str] = &[
    "instance-category",
    "instance-family",
    "instance-generation",
    "instance-size",
    "instance-cpu",
    "instance-cpu-manufacturer",
    "instance-cpu-sustained-clock-speed-mhz",
    "instance-memory",
    "instance-ebs-bandwidth",
    "instance-network-bandwidth",
    "instance-hypervisor",
    "instance-encryption-in-transit-supported",
    "instance-local-nvme",
    "instance-gpu-name",
    "instance-gpu-manufacturer",
    "instance-gpu-count",
    "instance-gpu-memory",
    "instance-accelerator-name",
    "instance-accelerator-manufacturer",
    "instance-accelerator-count",
    "instance-capability-flex",
    "instance-tenancy",
    "capacity-reservation-id",
    "capacity-reservation-type",
    "capacity-reservation-interruptible",
    "ec2nodeclass",
    "placement-group-id",
    "placement-group-partition",
];

/// Kubernetes and Karpenter labels usable as requirement keys.
pub const WELL_KNOWN: &[&str] = &[
    "karpenter.sh/capacity-type",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "topology.k8s.aws/zone-id",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "node.kubernetes.io/windows-build",
];

/// The domain Karpenter's CRD checks: the part before `/`, or the whole key when there is none
/// (the CEL `key.find("^([^/]+)")`).
fn domain(key: &str) -> &str {
    key.split_once('/').map_or(key, |(d, _)| d)
}

/// `karpenter.sh/*` keys Karpenter's NodePool CRD lets through its domain rule
/// (`karpenter.sh/nodepool` is then refused by a rule of its own).
const CRD_ALLOWED_KARPENTER: &[&str] = &["karpenter.sh/capacity-type", "karpenter.sh/nodepool"];

/// `karpenter.k8s.aws/*` names the NodePool CRD lets through its domain rule: the AWS
/// well-known labels and `nitro-sandbox`.
fn crd_allows_aws(key: &str) -> bool {
    key.strip_prefix("karpenter.k8s.aws/").is_some_and(|rest| AWS_WELL_KNOWN.contains(&rest) || rest == "nitro-sandbox")
}

pub fn is_well_known(key: &str) -> bool {
    WELL_KNOWN.contains(&key)
        || key.strip_prefix("karpenter.k8s.aws/").is_some_and(|rest| AWS_WELL_KNOWN.contains(&rest))
}

/// Why Karpenter refuses `key` as a NodePool label or requirement key, if it does. These are the
/// NodePool CRD's rules: a key whose domain merely ends with `karpenter.sh` or
/// `karpenter.k8s.aws` is refused unless it is one of the labels the CRD lists.
pub fn restricted_reason(key: &str) -> Option<String> {
    if key == "kubernetes.io/hostname" {
        return Some("`kubernetes.io/hostname` is set per node and cannot be required by a NodePool".to_string());
    }
    if key == "karpenter.sh/nodepool" {
        return Some("`karpenter.sh/nodepool` is set by the autoscaler itself".to_string());
    }
    let d = domain(key);
    if d.ends_with("karpenter.sh") && !CRD_ALLOWED_KARPENTER.contains(&key) {
        return Some(format!(
            "label domain \"karpenter.sh\" is restricted: Karpenter refuses every key whose domain ends with `karpenter.sh` (here `{d}`) except karpenter.sh/capacity-type"
        ));
    }
    if d.ends_with("karpenter.k8s.aws") && !crd_allows_aws(key) {
        return Some(format!(
            "label domain \"karpenter.k8s.aws\" is restricted: Karpenter refuses every key whose domain ends with `karpenter.k8s.aws` (here `{d}`) except its well-known karpenter.k8s.aws/ labels"
        ));
    }
    None
}

/// The AWS labels (after `karpenter.k8s.aws/`) NodeOverlay's CRD lets through its domain rule:
/// fewer than the NodePool's, with no tenancy, capacity-reservation or placement-group labels.
const OVERLAY_ALLOWED_AWS: &[&str] = &[
    "ec2nodeclass",
    "instance-encryption-in-transit-supported",
    "nitro-sandbox",
    "instance-category",
    "instance-hypervisor",
    "instance-family",
    "instance-generation",
    "instance-local-nvme",
    "instance-size",
    "instance-cpu",
    "instance-cpu-manufacturer",
    "instance-cpu-sustained-clock-speed-mhz",
    "instance-memory",
    "instance-ebs-bandwidth",
    "instance-network-bandwidth",
    "instance-gpu-name",
    "instance-gpu-manufacturer",
    "instance-gpu-count",
    "instance-gpu-memory",
    "instance-accelerator-name",
    "instance-accelerator-manufacturer",
    "instance-accelerator-count",
    "instance-capability-flex",
];

/// Why Karpenter's NodeOverlay CRD refuses `key` as a requirement key, if it does. Unlike the
/// NodePool, an overlay may select on `karpenter.sh/nodepool`.
pub fn overlay_restricted_reason(key: &str) -> Option<String> {
    if key == "kubernetes.io/hostname" {
        return Some("label \"kubernetes.io/hostname\" is restricted: it is set per node".to_string());
    }
    let d = domain(key);
    if d.ends_with("karpenter.sh") && !CRD_ALLOWED_KARPENTER.contains(&key) {
        return Some(format!(
            "label domain \"karpenter.sh\" is restricted: only karpenter.sh/capacity-type and karpenter.sh/nodepool may be selected on (the domain here is `{d}`)"
        ));
    }
    let allowed = key.strip_prefix("karpenter.k8s.aws/").is_some_and(|rest| OVERLAY_ALLOWED_AWS.contains(&rest));
    if d.ends_with("karpenter.k8s.aws") && !allowed {
        return Some(format!(
            "label domain \"karpenter.k8s.aws\" is restricted: a NodeOverlay may select on the instance labels and karpenter.k8s.aws/ec2nodeclass only (the domain here is `{d}`)"
        ));
    }
    None
}

/// Longest requirement key Karpenter's CRDs accept.
pub const MAX_KEY_LENGTH: usize = 316;

pub use super::names::{is_label_value, is_qualified_name};

/// Whether `key` is a label every node of an instance type carries by the type alone: the
/// instance type, architecture, operating system and `karpenter.k8s.aws/instance-*` labels.
pub fn is_instance_label(key: &str) -> bool {
    key.starts_with("karpenter.k8s.aws/instance-")
        || matches!(key, "node.kubernetes.io/instance-type" | "kubernetes.io/arch" | "kubernetes.io/os")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_keys() {
        assert!(restricted_reason("kubernetes.io/hostname").is_some());
        assert!(restricted_reason("karpenter.sh/nodepool").is_some());
        assert!(restricted_reason("karpenter.sh/foo").is_some());
        assert!(restricted_reason("karpenter.k8s.aws/instance-family").is_none());
        assert!(restricted_reason("karpenter.k8s.aws/made-up").is_some());
        assert!(restricted_reason("node-role.kubernetes.io/node").is_none());
        assert!(restricted_reason("kops.k8s.io/instancegroup").is_none());
        assert!(restricted_reason("team").is_none());
        assert!(restricted_reason("example.com/team").is_none());
        assert!(restricted_reason("kubernetes.io/made-up").is_none());
        assert!(restricted_reason("sub.karpenter.sh/x").is_some());
        assert!(restricted_reason("notkarpenter.sh/x").is_some());
        assert!(restricted_reason("evilkarpenter.k8s.aws/x").is_some());
        assert!(restricted_reason("karpenter.sh").is_some());
        assert!(restricted_reason("karpenter.sh/capacity-type").is_none());
        assert!(restricted_reason("karpenter.k8s.aws/nitro-sandbox").is_none());
        assert!(restricted_reason("karpenter.sh.example.com/x").is_none());
    }

    #[test]
    fn overlay_keys_follow_the_overlay_list() {
        assert!(overlay_restricted_reason("karpenter.sh/nodepool").is_none());
        assert!(overlay_restricted_reason("karpenter.k8s.aws/instance-family").is_none());
        assert!(overlay_restricted_reason("karpenter.k8s.aws/instance-tenancy").is_some());
        assert!(overlay_restricted_reason("karpenter.k8s.aws/placement-group-id").is_some());
        assert!(overlay_restricted_reason("kubernetes.io/hostname").is_some());
        assert!(overlay_restricted_reason("karpenter.sh/unknown").is_some());
        assert!(overlay_restricted_reason("example.com/team").is_none());
    }
}
