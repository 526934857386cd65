//! The name of one offering between the cloud and the loop: an instance type in a zone under a
//! capacity type. Passed as this type everywhere (errors, the avoided set, the unavailable
//! cache), never flattened to a string and parsed back.

use std::fmt;

use serde::Serialize;

use crate::scheduling::catalog::CapacityType;
use crate::scheduling::plan::LaunchOption;

/// One offering: (instance type, zone, capacity type).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferingKey {
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: CapacityType,
}

impl OfferingKey {
    pub fn new(instance_type: &str, zone: &str, capacity_type: CapacityType) -> OfferingKey {
        OfferingKey { instance_type: instance_type.to_string(), zone: zone.to_string(), capacity_type }
    }

    /// The offering a launch option names.
    pub fn of(option: &LaunchOption) -> OfferingKey {
        OfferingKey::new(&option.instance_type, &option.zone, option.capacity_type)
    }
}

/// For people and logs only (`m5.large in us-east-1a, on-demand`); never parsed.
impl fmt::Display for OfferingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}, {}", self.instance_type, self.zone, self.capacity_type.label())
    }
}
