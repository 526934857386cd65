//! The EC2NodeClass's one block device mapping: the root volume, with kOps's defaults.
//!
//! The device name comes from the AMI. Translation is offline, so it writes the common default
//! and marks the mapping `rootVolume: true`; the launch path (`cloud::aws::template::data`)
//! puts that mapping on the `RootDeviceName` DescribeImages reports for the resolved AMI.

use super::{TranslateError, err};
use crate::policy::kops::InstanceGroup;
use crate::policy::nodeclass::{BlockDevice, BlockDeviceMapping, VolumeType};
use crate::policy::quantity::Quantity;

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

/// The root device name written offline; the launch path replaces it with the AMI's.
pub fn root_device_name(_image: Option<&str>) -> &'static str {
    "/dev/xvda"
}

/// Size (role default when unset or not positive), type (gp3), encryption (on; the KMS key only
/// with encryption set explicitly), delete on termination; gp3 gets iops ≥ 3000 and throughput
/// ≥ 125, io1/io2 iops ≥ 100 and no throughput, other types neither. The flat v1alpha2 fields
/// (`rootVolumeSize`, …) win over the nested `rootVolume` form field by field, as kOps's
/// conversion does.
pub fn root_volume(ig: &InstanceGroup) -> Result<BlockDeviceMapping, TranslateError> {
    let rv = ig.spec.root_volume.clone().unwrap_or_default();
    let s = &ig.spec;
    let size = s.root_volume_size.or(rv.size).filter(|&n| n > 0).unwrap_or_else(|| default_root_volume_gib(ig));
    let (kind, kind_field) = match (&s.root_volume_type, &rv.volume_type) {
        (Some(t), _) => (t.clone(), "spec.rootVolumeType"),
        (None, Some(t)) => (t.clone(), "spec.rootVolume.type"),
        (None, None) => ("gp3".to_string(), "spec.rootVolumeType"),
    };
    let encryption = s.root_volume_encryption.or(rv.encryption);
    let key = s.root_volume_encryption_key.clone().or(rv.encryption_key);
    let iops = s.root_volume_iops.or(rv.iops);
    let throughput = s.root_volume_throughput.or(rv.throughput);
    let volume_type = serde_json::from_value::<VolumeType>(serde_json::Value::String(kind.clone())).map_err(|_| {
        err(kind_field, format!("`{kind}` is not an EBS volume type"), "use gp3, gp2, io1, io2, st1, sc1 or standard")
    })?;
    let (iops, throughput) = match volume_type {
        VolumeType::Gp3 => (Some(iops.unwrap_or(0).max(3000)), Some(throughput.unwrap_or(0).max(125))),
        VolumeType::Io1 | VolumeType::Io2 => (Some(iops.unwrap_or(0).max(100)), None),
        _ => (None, None),
    };
    Ok(BlockDeviceMapping {
        device_name: Some(root_device_name(s.image.as_deref()).to_string()),
        root_volume: Some(true),
        ebs: Some(BlockDevice {
            volume_size: Quantity::parse(&format!("{size}Gi")),
            volume_type: Some(volume_type),
            iops,
            throughput,
            delete_on_termination: Some(true),
            encrypted: Some(encryption.unwrap_or(true)),
            kms_key_id: key.filter(|k| encryption == Some(true) && !k.is_empty()),
            ..BlockDevice::default()
        }),
    })
}
