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

fn domain(key: &str) -> &str {
    key.split_once('/').map_or("", |(d, _)| d)
}

fn in_domain(d: &str, suffix: &str) -> bool {
    d == suffix || d.ends_with(&format!(".{suffix}"))
}

pub fn is_well_known(key: &str) -> bool {
    WELL_KNOWN.contains(&key)
        || key.strip_prefix("karpenter.k8s.aws/").is_some_and(|rest| AWS_WELL_KNOWN.contains(&rest))
}

/// Why Karpenter refuses `key` as a NodePool label or requirement key, if it does.
pub fn restricted_reason(key: &str) -> Option<String> {
    if key == "kubernetes.io/hostname" {
        return Some("`kubernetes.io/hostname` is set per node and cannot be required by a NodePool".to_string());
    }
    if key == "karpenter.sh/nodepool" {
        return Some("`karpenter.sh/nodepool` is set by the autoscaler itself".to_string());
    }
    if is_well_known(key) {
        return None;
    }
    let d = domain(key);
    let exception =
        ["kops.k8s.io", "node.kubernetes.io", "node-restriction.kubernetes.io"].iter().any(|s| in_domain(d, s));
    if exception {
        return None;
    }
    // Karpenter's current CRD no longer refuses the kubernetes.io and k8s.io domains (kOps itself
    // puts node-role.kubernetes.io/node on translated pools); its own domains stay reserved.
    let restricted = ["karpenter.sh", "karpenter.k8s.aws"];
    restricted
        .iter()
        .find(|r| in_domain(d, r))
        .map(|r| format!("the `{r}` label domain is reserved and `{key}` is not one of its well-known labels"))
}

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
    }
}
