//! Resolving an EC2NodeClass's selector terms against EC2: subnets, security groups and AMIs.
//! Terms are ORed; within a term, everything is ANDed. An empty result is a configuration
//! error that names the EC2NodeClass, the selector and what to check.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;

use super::super::CloudError;
use super::{classify, error_code};
use crate::policy::nodeclass::{AmiSelectorTerm, EC2NodeClass, SelectorTerm};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subnet {
    pub id: String,
    pub zone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Image {
    pub id: String,
    pub name: String,
    /// `amd64` or `arm64`.
    pub arch: String,
    pub root_device_name: Option<String>,
    pub creation_date: String,
}

/// EC2 filters for tag selectors; `*` matches any value.
fn tag_filters(tags: &BTreeMap<String, String>) -> Vec<Filter> {
    tags.iter()
        .map(|(k, v)| {
            if v == "*" {
                Filter::builder().name("tag-key").values(k).build()
            } else {
                Filter::builder().name(format!("tag:{k}")).values(v).build()
            }
        })
        .collect()
}

fn describe(term: &SelectorTerm) -> String {
    let mut parts = Vec::new();
    if let Some(id) = &term.id {
        parts.push(format!("id {id}"));
    }
    if let Some(n) = &term.name {
        parts.push(format!("name {n}"));
    }
    if !term.tags.is_empty() {
        let tags: Vec<String> = term.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!("tags {}", tags.join(",")));
    }
    format!("{{{}}}", parts.join(" "))
}

fn none_matched(class: &EC2NodeClass, what: &str, terms: &[SelectorTerm], check: &str) -> CloudError {
    let list: Vec<String> = terms.iter().map(describe).collect();
    CloudError::InvalidConfig(format!(
        "EC2NodeClass {}: no {what} matches {what}SelectorTerms [{}]; {check}",
        class.metadata.name,
        list.join(", ")
    ))
}

/// Subnets matching the class's subnet selector terms.
pub async fn subnets(client: &aws_sdk_ec2::Client, class: &EC2NodeClass) -> Result<Vec<Subnet>, CloudError> {
    let mut out = Vec::new();
    for term in &class.spec.subnet_selector_terms {
        let mut req = client.describe_subnets();
        if let Some(id) = &term.id {
            req = req.filters(Filter::builder().name("subnet-id").values(id).build());
        }
        if let Some(cidr) = &term.cidr {
            req = req.filters(Filter::builder().name("cidr-block").values(cidr).build());
        }
        for f in tag_filters(&term.tags) {
            req = req.filters(f);
        }
        let page = req.send().await.map_err(|e| classify("DescribeSubnets", e))?;
        for s in page.subnets() {
            if let (Some(id), Some(zone)) = (s.subnet_id(), s.availability_zone()) {
                out.push(Subnet { id: id.to_string(), zone: zone.to_string() });
            }
        }
    }
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err(none_matched(
            class,
            "subnet",
            &class.spec.subnet_selector_terms,
            "check the subnet tags (kOps tags them KubernetesCluster and kops.k8s.io/instance-group/<ig>), the ids and the region",
        ));
    }
    Ok(out)
}

/// Security group ids matching the class's terms.
pub async fn security_groups(client: &aws_sdk_ec2::Client, class: &EC2NodeClass) -> Result<Vec<String>, CloudError> {
    let mut out = Vec::new();
    for term in &class.spec.security_group_selector_terms {
        let mut req = client.describe_security_groups();
        if let Some(id) = &term.id {
            req = req.filters(Filter::builder().name("group-id").values(id).build());
        }
        if let Some(name) = &term.name {
            req = req.filters(Filter::builder().name("group-name").values(name).build());
        }
        for f in tag_filters(&term.tags) {
            req = req.filters(f);
        }
        let page = req.send().await.map_err(|e| classify("DescribeSecurityGroups", e))?;
        out.extend(page.security_groups().iter().filter_map(|g| g.group_id().map(str::to_string)));
    }
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err(none_matched(
            class,
            "security group",
            &class.spec.security_group_selector_terms,
            "check the group tags (kOps: KubernetesCluster and Name nodes.<cluster>), names, ids and the region",
        ));
    }
    Ok(out)
}

fn describe_ami(term: &AmiSelectorTerm) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("alias", &term.alias),
        ("id", &term.id),
        ("name", &term.name),
        ("owner", &term.owner),
        ("ssmParameter", &term.ssm_parameter),
    ] {
        if let Some(v) = v {
            parts.push(format!("{k} {v}"));
        }
    }
    for (k, v) in &term.tags {
        parts.push(format!("tag {k}={v}"));
    }
    format!("{{{}}}", parts.join(" "))
}

/// AMIs matching the class's AMI selector terms, newest first. Aliases and SSM parameters are
/// resolved through SSM (the parameter's value is an AMI id).
pub async fn images(
    client: &aws_sdk_ec2::Client,
    class: &EC2NodeClass,
    ssm: &aws_sdk_ssm::Client,
) -> Result<Vec<Image>, CloudError> {
    let mut out: Vec<Image> = Vec::new();
    for term in &class.spec.ami_selector_terms {
        let mut req = client.describe_images();
        let mut id = term.id.clone();
        if let Some(param) = term.ssm_parameter.clone().or_else(|| term.alias.as_deref().and_then(alias_parameter)) {
            match super::ssm_parameter(ssm, &param).await? {
                Some(resolved) => id = Some(resolved),
                None => continue,
            }
        }
        if let Some(id) = &id {
            req = req.image_ids(id);
        }
        if let Some(name) = &term.name {
            req = req.filters(Filter::builder().name("name").values(name).build());
        }
        for owner in term.owner.iter().flat_map(|o| o.split(',')) {
            req = req.owners(owner.trim());
        }
        if id.is_none() && term.name.is_some() && term.owner.is_none() {
            req = req.owners("self").owners("amazon");
        }
        for f in tag_filters(&term.tags) {
            req = req.filters(f);
        }
        let page = match req.send().await {
            Ok(p) => p,
            // An AMI id that does not exist (or is malformed) selects nothing.
            Err(e) if error_code(&e).is_some_and(|c| c.starts_with("InvalidAMIID")) => continue,
            Err(e) => match classify("DescribeImages", e) {
                CloudError::NotFound(_) => continue,
                other => return Err(other),
            },
        };
        for i in page.images() {
            let arch = match i.architecture().map(|a| a.as_str()) {
                Some("arm64") => "arm64",
                Some("x86_64") => "amd64",
                _ => continue,
            };
            out.push(Image {
                id: i.image_id().unwrap_or_default().to_string(),
                name: i.name().unwrap_or_default().to_string(),
                arch: arch.to_string(),
                root_device_name: i.root_device_name().map(str::to_string),
                creation_date: i.creation_date().unwrap_or_default().to_string(),
            });
        }
    }
    out.sort_by(|a, b| b.creation_date.cmp(&a.creation_date).then_with(|| a.id.cmp(&b.id)));
    out.dedup_by(|a, b| a.id == b.id);
    if out.is_empty() {
        let terms: Vec<String> = class.spec.ami_selector_terms.iter().map(describe_ami).collect();
        return Err(CloudError::InvalidConfig(format!(
            "EC2NodeClass {}: no AMI matches amiSelectorTerms [{}]; check the AMI ids, names and owners (an AMI shared from another account needs its owner), the SSM parameter and the region",
            class.metadata.name,
            terms.join(", ")
        )));
    }
    Ok(out)
}

/// The public SSM parameter an alias stands for (`al2023@latest` → the AL2023 standard AMI).
pub fn alias_parameter(alias: &str) -> Option<String> {
    let (family, version) = alias.split_once('@')?;
    let latest = version == "latest";
    match family {
        "al2023" if latest => Some("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64".to_string()),
        "al2" if latest => Some("/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2".to_string()),
        _ => None,
    }
}
