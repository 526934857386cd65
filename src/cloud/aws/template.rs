//! The launch template an EC2NodeClass and AMI stand for. Pure: the same class, image and
//! security groups give the same data and the same name.

use aws_sdk_ec2::types::{
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplatesMonitoringRequest, RequestLaunchTemplateData,
    VolumeType,
};
use base64::Engine;

use super::super::CloudError;
use super::resolve::Image;
use crate::policy::nodeclass::EC2NodeClass;

/// The template's name: the cluster and a hash of everything in it.
pub fn name(cluster: &str, class: &EC2NodeClass, image: &Image, security_groups: &[String]) -> String {
    let spec = serde_json::to_string(&class.spec).unwrap_or_default();
    let identity = format!("{}|{}|{}|{spec}", class.metadata.name, image.id, security_groups.join(","));
    format!("capstan-{}-{:016x}", cluster.replace('.', "-"), crate::digest::fnv64(identity.as_bytes()))
}

/// Launch-template data: AMI, security groups, instance profile, userData, block devices
/// (the root volume on the AMI's root device), IMDS settings (IMDSv2, hop limit 1 unless the
/// class says otherwise) and monitoring.
pub fn data(
    class: &EC2NodeClass,
    image: &Image,
    security_groups: &[String],
) -> Result<RequestLaunchTemplateData, CloudError> {
    let spec = &class.spec;
    let profile = spec.instance_profile.clone().ok_or_else(|| {
        CloudError::InvalidConfig(format!(
            "EC2NodeClass {}: capstan launches with an existing instanceProfile (kOps: nodes.<cluster>); set spec.instanceProfile",
            class.metadata.name
        ))
    })?;
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
    Ok(RequestLaunchTemplateData::builder()
        .image_id(&image.id)
        .set_security_group_ids(Some(security_groups.to_vec()))
        .iam_instance_profile(LaunchTemplateIamInstanceProfileSpecificationRequest::builder().name(profile).build())
        .user_data(base64::engine::general_purpose::STANDARD.encode(spec.user_data.clone().unwrap_or_default()))
        .set_block_device_mappings((!devices.is_empty()).then_some(devices))
        .metadata_options(metadata)
        .monitoring(
            LaunchTemplatesMonitoringRequest::builder().enabled(spec.detailed_monitoring.unwrap_or(false)).build(),
        )
        .build())
}
