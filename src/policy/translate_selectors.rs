//! How the EC2NodeClass finds its AMI, subnets and security groups, which instance profile it
//! uses and whether its nodes get a public address.

use std::collections::BTreeMap;

use super::{TranslateError, err};
use crate::policy::kops::{Cluster, InstanceGroup};
use crate::policy::nodeclass::{AmiSelectorTerm, SelectorTerm};

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

/// `ami-…` → id; `ssm:<parameter>` → SSM parameter; `<owner>/<name>` → owner (aliases
/// resolved) and name; `<name>` → name owned by this account. A URL is refused.
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

/// `{id: securityGroupOverride}`, else the cluster's node group by tags; then one `{id}` per
/// additional security group.
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
/// dual-stack subnets never get a public address. Only the IG's first subnet counts; an IG that
/// names none gets kOps's default subnets (see [`Cluster::default_node_subnets`]). Without the
/// Cluster spec the subnet types are unknown and the field is left unset.
pub(super) fn associate_public_ip(
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
    let defaults = cluster.default_node_subnets();
    let listed = ig.spec.subnets.as_ref().filter(|s| !s.is_empty());
    let Some(subnet) = listed.map_or(defaults.first(), |s| s.first()) else {
        return Err(err(
            "spec.subnets",
            "a Karpenter-managed InstanceGroup needs at least one subnet, and the Cluster spec lists none to default to",
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
