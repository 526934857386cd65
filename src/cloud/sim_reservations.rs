//! Capacity reservations in the simulated EC2. A reservation is given its size; how many
//! instances it still takes is derived each time from the live instances launched into it (tagged
//! with its id), so a termination, whatever caused it, frees its place.

use super::provider::{Instance, InstanceState};
use crate::scheduling::reserved::{RESERVATION_ID_LABEL, ReservedCapacity};

/// The reservations with their free counts: each one's size less its live instances.
pub fn free<'a>(
    reservations: &[ReservedCapacity],
    instances: impl Iterator<Item = &'a Instance> + Clone,
) -> Vec<ReservedCapacity> {
    reservations
        .iter()
        .map(|r| {
            let used = instances
                .clone()
                .filter(|i| i.state != InstanceState::Terminated)
                .filter(|i| i.tags.get(RESERVATION_ID_LABEL) == Some(&r.id))
                .count() as u32;
            ReservedCapacity { available: r.available.saturating_sub(used), ..r.clone() }
        })
        .collect()
}

/// The reservation a launch for EC2NodeClass `class` of `instance_type` in `zone` goes into:
/// among the class's, the one of that type and zone with the most room (ties: the lowest id),
/// as on EC2; `None` when all are full (EC2's ReservationCapacityExceeded) or the class has none.
pub fn pick(free: Vec<ReservedCapacity>, class: &str, instance_type: &str, zone: &str) -> Option<ReservedCapacity> {
    free.into_iter()
        .filter(|r| r.admits(class) && r.instance_type == instance_type && r.zone == zone && r.available > 0)
        .min_by(|a, b| b.available.cmp(&a.available).then_with(|| a.id.cmp(&b.id)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::scheduling::catalog::CapacityType;
    use crate::scheduling::reserved::ReservationKind;

    fn reservation(id: &str, available: u32) -> ReservedCapacity {
        ReservedCapacity {
            id: id.into(),
            instance_type: "m5.large".into(),
            zone: "us-east-1a".into(),
            available,
            kind: ReservationKind::Default,
            interruptible: false,
            classes: vec!["default".into()],
        }
    }

    fn instance(id: &str, reservation: &str, state: InstanceState) -> Instance {
        Instance {
            id: id.into(),
            claim: format!("claim-{id}"),
            node_pool: "default".into(),
            instance_type: "m5.large".into(),
            zone: "us-east-1a".into(),
            capacity_type: CapacityType::Reserved,
            price: 0.0,
            state,
            launched_at: Duration::ZERO,
            tags: BTreeMap::from([(RESERVATION_ID_LABEL.to_string(), reservation.to_string())]),
        }
    }

    #[test]
    fn live_instances_use_up_a_reservation_and_terminated_ones_free_it() {
        let all = [reservation("cr-1", 2), reservation("cr-2", 1)];
        let instances = [
            instance("i-1", "cr-1", InstanceState::Running),
            instance("i-2", "cr-1", InstanceState::Terminated),
            instance("i-3", "cr-2", InstanceState::Pending),
        ];
        let left = free(&all, instances.iter());
        assert_eq!(left.iter().map(|r| r.available).collect::<Vec<_>>(), vec![1, 0]);
        assert_eq!(pick(left.clone(), "default", "m5.large", "us-east-1a").map(|r| r.id), Some("cr-1".to_string()));
        assert_eq!(pick(left.clone(), "other", "m5.large", "us-east-1a"), None, "another class's reservation");
        assert_eq!(pick(left, "default", "m5.large", "us-east-1b"), None);
        let full = free(&all, instances.iter().chain([&instance("i-4", "cr-1", InstanceState::Running)]));
        assert_eq!(pick(full, "default", "m5.large", "us-east-1a"), None);
    }
}
