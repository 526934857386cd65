//! The launch template an EC2NodeClass and AMI stand for. Pure: the same class, image,
//! security groups and instance profile give the same data and the same name.
//!
//! A template is tagged `kubernetes.io/cluster/<cluster>: owned` and with the class
//! ([`CLASS_TAG`]) as it is created, and each instance names the template and
//! profile it was launched with ([`INSTANCE_TEMPLATE_TAG`], [`INSTANCE_PROFILE_TAG`]), so
//! clean-up can tell which templates are capstan's and which are still in use.

use aws_sdk_ec2::types::{
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateInstanceNetworkInterfaceSpecificationRequest,
    LaunchTemplatesMonitoringRequest, RequestLaunchTemplateData, ResourceType, Tag, TagSpecification, VolumeType,
};
use base64::Engine;

use super::super::CloudError;
use super::super::provider::tags;
use super::resolve::Image;
use crate::policy::nodeclass::EC2NodeClass;

/// The tag naming the EC2NodeClass a capstan profile (or launch template) was made for.
pub const CLASS_TAG: &str = "capstan.io/ec2nodeclass";

/// The instance tag naming the launch template an instance was launched from.
pub const INSTANCE_TEMPLATE_TAG: &str = "capstan.io/launch-template";
/// The instance tag naming the instance profile an instance was launched with.
pub const INSTANCE_PROFILE_TAG: &str = "capstan.io/instance-profile";

/// What the name's hash covers besides the class: bumped when the template's layout changes,
/// so a template made by an older capstan (untagged, without the public-IP interface, or named
/// without the raw cluster name in its hash) is not reused.
const LAYOUT: &str = "3";

/// The longest launch-template name EC2 takes.
pub const MAX_NAME: usize = 128;

/// Room kept at the end of a name for what a reserved launch's template adds:
/// `-<reservation id>` (`-cr-` and 17 hex digits) and, for a capacity block, `-block`.
pub const RESERVED_SUFFIX: usize = 27;

/// The longest name [`name`] gives: a reserved launch's suffix still fits in [`MAX_NAME`].
pub const MAX_BASE_NAME: usize = MAX_NAME - RESERVED_SUFFIX;

/// The hash's length in a name.
const HASH: usize = 16;

/// The prefix of every capstan template name of `cluster` (`capstan-<cluster, dots as
/// dashes>-`), its cluster part cut so that a name fits in [`MAX_BASE_NAME`]. Two clusters may
/// share it (`dev.example.com`, `dev-example.com`): the name's hash covers the raw cluster name,
/// and a template is used and deleted only with the cluster's ownership tag.
pub fn prefix(cluster: &str) -> String {
    let mut part: String = cluster.replace('.', "-");
    let room = MAX_BASE_NAME - HASH - "capstan-".len() - 1;
    if part.len() > room {
        let mut cut = room;
        while !part.is_char_boundary(cut) {
            cut -= 1;
        }
        part.truncate(cut);
    }
    format!("capstan-{part}-")
}

/// The template's name: the cluster and a hash of everything in it (the raw cluster name
/// included); at most [`MAX_BASE_NAME`] characters.
pub fn name(cluster: &str, class: &EC2NodeClass, image: &Image, security_groups: &[String]) -> String {
    let spec = serde_json::to_string(&class.spec).unwrap_or_default();
    let identity =
        format!("{LAYOUT}|{cluster}|{}|{}|{}|{spec}", class.metadata.name, image.id, security_groups.join(","));
    format!("{}{:016x}", prefix(cluster), crate::digest::fnv64(identity.as_bytes()))
}

/// Whether a template's `tags` (key, value) mark it as `cluster`'s: `kubernetes.io/cluster/<cluster>: owned`.
pub fn owned_by<'a>(cluster: &str, mut tags: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    let key = tags::cluster(cluster);
    tags.any(|(k, v)| k == key && v == "owned")
}

/// The template's own tags, set as CreateLaunchTemplate creates it.
pub fn tag_specification(cluster: &str, class: &EC2NodeClass) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(ResourceType::LaunchTemplate)
        .tags(Tag::builder().key(tags::cluster(cluster)).value("owned").build())
        .tags(Tag::builder().key(CLASS_TAG).value(&class.metadata.name).build())
        .build()
}

/// Launch-template data: AMI, security groups, the instance profile `profile`, userData, block
/// devices (the root volume on the AMI's root device), IMDS settings (IMDSv2, hop limit 1 unless
/// the class says otherwise) and monitoring. With `associatePublicIPAddress` set, the first
/// network interface says it and carries the security groups (EC2 refuses groups both on the
/// template and on an interface); CreateFleet's subnet override still picks its subnet.
pub fn data(
    class: &EC2NodeClass,
    image: &Image,
    security_groups: &[String],
    profile: &str,
) -> RequestLaunchTemplateData {
    let spec = &class.spec;
    let mut devices = Vec::new();
    for b in &spec.block_device_mappings {
        let device = match (&b.device_name, b.root_volume == Some(true)) {
            (_, true) => image.root_device_name.clone().or_else(|| b.device_name.clone()),
            (Some(d), false) => Some(d.clone()),
            (None, false) => None,
        };
        let Some(device) = device else { continue };
        let ebs = b.ebs.clone().unwrap_or_default();
        let gib = ebs.volume_size.as_ref().map(|q| (q.units() >> 30) as i32);
        let kind = ebs.volume_type.map(|t| {
            VolumeType::from(
                serde_json::to_value(t).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default().as_str(),
            )
        });
        let request = LaunchTemplateEbsBlockDeviceRequest::builder()
            .set_volume_size(gib)
            .set_volume_type(kind)
            .set_iops(ebs.iops.map(|i| i as i32))
            .set_throughput(ebs.throughput.map(|t| t as i32))
            .set_encrypted(ebs.encrypted)
            .set_kms_key_id(ebs.kms_key_id.clone())
            .set_snapshot_id(ebs.snapshot_id.clone())
            .set_delete_on_termination(ebs.delete_on_termination)
            .build();
        devices.push(LaunchTemplateBlockDeviceMappingRequest::builder().device_name(device).ebs(request).build());
    }
    let imds = spec.metadata_options.clone().unwrap_or_default();
    let metadata = LaunchTemplateInstanceMetadataOptionsRequest::builder()
        .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::from(
            imds.http_endpoint.as_deref().unwrap_or("enabled"),
        ))
        .http_tokens(LaunchTemplateHttpTokensState::from(imds.http_tokens.as_deref().unwrap_or("required")))
        .http_put_response_hop_limit(imds.http_put_response_hop_limit.unwrap_or(1) as i32)
        .build();
    let (groups, interface) = match spec.associate_public_ip_address {
        None => (Some(security_groups.to_vec()), None),
        Some(public) => (
            None,
            Some(
                LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                    .device_index(0)
                    .associate_public_ip_address(public)
                    .set_groups(Some(security_groups.to_vec()))
                    .build(),
            ),
        ),
    };
    RequestLaunchTemplateData::builder()
        .image_id(&image.id)
        .set_security_group_ids(groups)
        .set_network_interfaces(interface.map(|i| vec![i]))
        .iam_instance_profile(LaunchTemplateIamInstanceProfileSpecificationRequest::builder().name(profile).build())
        .user_data(base64::engine::general_purpose::STANDARD.encode(spec.user_data.clone().unwrap_or_default()))
        .set_block_device_mappings((!devices.is_empty()).then_some(devices))
        .metadata_options(metadata)
        .monitoring(
            LaunchTemplatesMonitoringRequest::builder().enabled(spec.detailed_monitoring.unwrap_or(false)).build(),
        )
        .build()
}

/// Whether a launch template named `name` exists for `cluster`; one that does not carry this cluster's
/// ownership tag is not this cluster's (another cluster's name can look the same once dots
/// are dashes): a configuration error, never launched from.
pub async fn existing(ec2: &aws_sdk_ec2::Client, cluster: &str, name: &str) -> Result<bool, CloudError> {
    let Ok(out) = ec2.describe_launch_templates().launch_template_names(name).send().await else {
        return Ok(false);
    };
    let Some(found) = out.launch_templates().iter().find(|t| t.launch_template_name() == Some(name)) else {
        return Ok(false);
    };
    let tags = found.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()));
    if owned_by(cluster, tags) {
        return Ok(true);
    }
    Err(CloudError::InvalidConfig(format!(
        "launch template {name} ({}) exists but is not tagged {}: owned; it is not this cluster's (another cluster or tool made it) and is not launched from; delete or rename it",
        found.launch_template_id().unwrap_or_default(),
        tags::cluster(cluster)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(public: Option<bool>) -> EC2NodeClass {
        let mut c = EC2NodeClass {
            api_version: "karpenter.k8s.aws/v1".into(),
            kind: "EC2NodeClass".into(),
            metadata: Default::default(),
            spec: Default::default(),
            status: None,
        };
        c.metadata.name = "nodes".into();
        c.spec.role = Some("nodes.c".into());
        c.spec.associate_public_ip_address = public;
        c
    }

    fn image() -> Image {
        Image {
            id: "ami-1".into(),
            name: "n".into(),
            arch: "amd64".into(),
            root_device_name: Some("/dev/xvda".into()),
            creation_date: String::new(),
        }
    }

    #[test]
    fn a_public_ip_puts_the_groups_on_the_first_interface() {
        let groups = ["sg-1".to_string(), "sg-2".to_string()];
        for public in [true, false] {
            let d = data(&class(Some(public)), &image(), &groups, "p");
            assert!(d.security_group_ids().is_empty(), "EC2 refuses groups on both");
            let ni = &d.network_interfaces()[0];
            assert_eq!((ni.device_index(), ni.associate_public_ip_address()), (Some(0), Some(public)));
            assert_eq!(ni.groups(), groups);
            assert!(ni.subnet_id().is_none(), "CreateFleet's override picks the subnet");
        }
        let d = data(&class(None), &image(), &groups, "p");
        assert!(d.network_interfaces().is_empty());
        assert_eq!(d.security_group_ids(), groups);
        assert_eq!(d.iam_instance_profile().and_then(|p| p.name()), Some("p"));
    }

    #[test]
    fn the_name_follows_the_content_and_the_template_is_tagged_as_the_clusters() {
        let groups = ["sg-1".to_string()];
        let a = name("dev.example.com", &class(None), &image(), &groups);
        assert!(a.starts_with(&prefix("dev.example.com")) && a.starts_with("capstan-dev-example-com-"), "{a}");
        assert_eq!(a, name("dev.example.com", &class(None), &image(), &groups));
        assert_ne!(a, name("dev.example.com", &class(Some(true)), &image(), &groups));
        let look_alike = name("dev-example.com", &class(None), &image(), &groups);
        assert_eq!(prefix("dev-example.com"), prefix("dev.example.com"), "the prefix alone cannot tell them apart");
        assert_ne!(a, look_alike, "the hash covers the raw cluster name");
        let spec = tag_specification("dev.example.com", &class(None));
        assert_eq!(spec.resource_type(), Some(&ResourceType::LaunchTemplate));
        let tags: Vec<(&str, &str)> =
            spec.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())).collect();
        assert_eq!(tags, [("kubernetes.io/cluster/dev.example.com", "owned"), (CLASS_TAG, "nodes")]);
    }

    #[test]
    fn a_name_fits_ec2s_limit_with_a_reserved_suffix_and_keeps_its_hash() {
        let groups = ["sg-1".to_string()];
        let long = "a.".repeat(100) + "example.com";
        let n = name(&long, &class(None), &image(), &groups);
        assert!(n.len() <= MAX_BASE_NAME, "{} {n}", n.len());
        assert!(n.starts_with(&prefix(&long)) && n.len() == prefix(&long).len() + HASH, "{n}");
        let reserved = format!("{n}-cr-0123456789abcdef0-block");
        assert!(reserved.len() <= MAX_NAME, "{}", reserved.len());
        let other = name(&(long.clone() + "x"), &class(None), &image(), &groups);
        assert_eq!(prefix(&long), prefix(&(long.clone() + "x")));
        assert_ne!(n, other, "the hash keeps clusters apart when the prefix is cut");
        assert_eq!(prefix("c.io"), "capstan-c-io-");
    }

    #[test]
    fn only_the_clusters_owned_tag_marks_a_template_as_its() {
        let k = "kubernetes.io/cluster/dev.example.com";
        assert!(owned_by("dev.example.com", [(k, "owned")].into_iter()));
        assert!(!owned_by("dev.example.com", [(k, "shared")].into_iter()));
        assert!(!owned_by("dev-example.com", [(k, "owned")].into_iter()));
        assert!(!owned_by("dev.example.com", std::iter::empty()));
    }
}
