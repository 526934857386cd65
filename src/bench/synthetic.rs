//! The synthetic catalog of Karpenter's scheduling benchmark, rebuilt for capstan: 400 types,
//! type i (1…400) with i vCPU, 2i GiB of memory and room for 10i pods.
//!
//! Karpenter's benchmark prices its types with a made-up formula (0.1 per vCPU plus 0.1 per
//! 10⁹ bytes of memory, the same in every offering). The same formula is used here, so the
//! price is proportional to size: `0.1·i + 0.1·2i·2³⁰/10⁹ ≈ 0.3147·i` per hour. These are not
//! AWS prices. Offerings: on-demand in three zones, spot in two, all at that price.

use crate::scheduling::catalog::{CapacityType, Catalog, InstanceType, Offering};

/// Types in the catalog.
pub const TYPES: u32 = 400;

/// Price per hour of type `i` (i vCPU, 2i GiB).
pub fn price(i: u32) -> f64 {
    let memory_bytes = 2.0 * i as f64 * (1u64 << 30) as f64;
    0.1 * i as f64 + 0.1 * memory_bytes / 1e9
}

fn offering(zone: &str, capacity_type: CapacityType, price: f64) -> Offering {
    Offering { zone: zone.to_string(), capacity_type, price, available: true, reservation: None }
}

/// Type `i` of the catalog.
pub fn instance_type(i: u32) -> InstanceType {
    let p = price(i);
    let mut offerings: Vec<Offering> =
        ["zone-1", "zone-2", "zone-3"].iter().map(|z| offering(z, CapacityType::OnDemand, p)).collect();
    offerings.extend(["zone-1", "zone-2"].iter().map(|z| offering(z, CapacityType::Spot, p)));
    InstanceType {
        name: format!("synthetic.{i}x"),
        arch: "amd64".to_string(),
        vcpu: i,
        memory_mib: 2 * 1024 * i as u64,
        gpus: 0,
        gpu_name: None,
        gpu_manufacturer: None,
        gpu_memory_mib: 0,
        // One interface with 10i − 1 addresses: 1·(10i − 2) + 2 = 10i pods.
        enis: 1,
        ipv4_per_eni: 10 * i - 1,
        hypervisor: Some("nitro".to_string()),
        cpu_manufacturer: None,
        local_nvme_gib: 0,
        bare_metal: false,
        offerings,
    }
}

/// The 400-type catalog.
pub fn karpenter_catalog() -> Catalog {
    Catalog { types: (1..=TYPES).map(instance_type).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::allocatable::{KubeletSettings, max_pods};

    #[test]
    fn shapes_and_prices_grow_with_the_index() {
        let c = karpenter_catalog();
        assert_eq!(c.types.len(), 400);
        let t = &c.types[9];
        assert_eq!((t.vcpu, t.memory_mib), (10, 20 * 1024));
        assert_eq!(max_pods(t, &KubeletSettings::default()), 100);
        assert!((price(10) / price(1) - 10.0).abs() < 1e-9);
        assert!((price(1) - 0.314_748_364_8).abs() < 1e-9);
    }
}
