//! The built-in curated catalog: common current-generation EC2 families in us-east-1, written
//! from their published specifications and on-demand prices. It serves the simulator and the
//! demo; in real use the AWS provider builds the catalog from EC2.
//!
//! EC2 prices within a family scale linearly with size, so each family is one row: its
//! `.large` on-demand price, memory per vCPU and sizes. Spot prices here are modelled as a fixed
//! fraction of on-demand per family (real spot prices come from EC2's price history).

use super::catalog::{CapacityType, Catalog, InstanceType, Offering};

/// One family row: name, arch, cpu maker, GiB per vCPU, `.large` on-demand USD/h, spot
/// fraction, and the vCPU counts of the sizes offered.
struct Family {
    name: &'static str,
    arch: &'static str,
    maker: &'static str,
    gib_per_vcpu: u64,
    large_price: f64,
    spot_fraction: f64,
    vcpus: &'static [u32],
}

const STD: &[u32] = &[2, 4, 8, 16, 32, 48, 64, 96];
const STD_MEDIUM: &[u32] = &[1, 2, 4, 8, 16, 32, 48, 64];
const WIDE: &[u32] = &[2, 4, 8, 16, 32, 48, 64, 96, 128];
const WIDEST: &[u32] = &[2, 4, 8, 16, 32, 48, 64, 96, 128, 192];

#[rustfmt::skip]
const FAMILIES: &[Family] = &[
    Family { name: "m5", arch: "amd64", maker: "intel", gib_per_vcpu: 4, large_price: 0.096, spot_fraction: 0.38, vcpus: STD },
    Family { name: "m5a", arch: "amd64", maker: "amd", gib_per_vcpu: 4, large_price: 0.086, spot_fraction: 0.40, vcpus: STD },
    Family { name: "m6i", arch: "amd64", maker: "intel", gib_per_vcpu: 4, large_price: 0.096, spot_fraction: 0.36, vcpus: WIDE },
    Family { name: "m6a", arch: "amd64", maker: "amd", gib_per_vcpu: 4, large_price: 0.0864, spot_fraction: 0.37, vcpus: WIDEST },
    Family { name: "m6g", arch: "arm64", maker: "aws", gib_per_vcpu: 4, large_price: 0.077, spot_fraction: 0.39, vcpus: STD_MEDIUM },
    Family { name: "m7i", arch: "amd64", maker: "intel", gib_per_vcpu: 4, large_price: 0.1008, spot_fraction: 0.42, vcpus: &[2, 4, 8, 16, 32, 48, 64, 96, 192] },
    Family { name: "m7a", arch: "amd64", maker: "amd", gib_per_vcpu: 4, large_price: 0.11592, spot_fraction: 0.41, vcpus: &[1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192] },
    Family { name: "m7g", arch: "arm64", maker: "aws", gib_per_vcpu: 4, large_price: 0.0816, spot_fraction: 0.40, vcpus: STD_MEDIUM },
    Family { name: "c5", arch: "amd64", maker: "intel", gib_per_vcpu: 2, large_price: 0.085, spot_fraction: 0.38, vcpus: &[2, 4, 8, 16, 36, 48, 72, 96] },
    Family { name: "c5a", arch: "amd64", maker: "amd", gib_per_vcpu: 2, large_price: 0.077, spot_fraction: 0.40, vcpus: STD },
    Family { name: "c6i", arch: "amd64", maker: "intel", gib_per_vcpu: 2, large_price: 0.085, spot_fraction: 0.36, vcpus: WIDE },
    Family { name: "c6a", arch: "amd64", maker: "amd", gib_per_vcpu: 2, large_price: 0.0765, spot_fraction: 0.37, vcpus: WIDEST },
    Family { name: "c6g", arch: "arm64", maker: "aws", gib_per_vcpu: 2, large_price: 0.068, spot_fraction: 0.39, vcpus: STD_MEDIUM },
    Family { name: "c7i", arch: "amd64", maker: "intel", gib_per_vcpu: 2, large_price: 0.08925, spot_fraction: 0.42, vcpus: &[2, 4, 8, 16, 32, 48, 64, 96, 192] },
    Family { name: "c7a", arch: "amd64", maker: "amd", gib_per_vcpu: 2, large_price: 0.10264, spot_fraction: 0.41, vcpus: &[1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192] },
    Family { name: "c7g", arch: "arm64", maker: "aws", gib_per_vcpu: 2, large_price: 0.0725, spot_fraction: 0.40, vcpus: STD_MEDIUM },
    Family { name: "r5", arch: "amd64", maker: "intel", gib_per_vcpu: 8, large_price: 0.126, spot_fraction: 0.35, vcpus: STD },
    Family { name: "r5a", arch: "amd64", maker: "amd", gib_per_vcpu: 8, large_price: 0.113, spot_fraction: 0.37, vcpus: STD },
    Family { name: "r6i", arch: "amd64", maker: "intel", gib_per_vcpu: 8, large_price: 0.126, spot_fraction: 0.34, vcpus: WIDE },
    Family { name: "r6a", arch: "amd64", maker: "amd", gib_per_vcpu: 8, large_price: 0.1134, spot_fraction: 0.35, vcpus: WIDEST },
    Family { name: "r6g", arch: "arm64", maker: "aws", gib_per_vcpu: 8, large_price: 0.1008, spot_fraction: 0.37, vcpus: STD_MEDIUM },
    Family { name: "r7i", arch: "amd64", maker: "intel", gib_per_vcpu: 8, large_price: 0.1323, spot_fraction: 0.40, vcpus: &[2, 4, 8, 16, 32, 48, 64, 96, 192] },
    Family { name: "r7g", arch: "arm64", maker: "aws", gib_per_vcpu: 8, large_price: 0.1071, spot_fraction: 0.39, vcpus: STD_MEDIUM },
];

/// Burstable types: name, arch, vCPU, GiB, on-demand USD/h, ENIs, IPv4 per ENI.
#[rustfmt::skip]
const BURSTABLE: &[(&str, &str, u32, u64, f64, u32, u32)] = &[
    ("t3.medium", "amd64", 2, 4, 0.0416, 3, 6),
    ("t3.large", "amd64", 2, 8, 0.0832, 3, 12),
    ("t3.xlarge", "amd64", 4, 16, 0.1664, 4, 15),
    ("t3.2xlarge", "amd64", 8, 32, 0.3328, 4, 15),
    ("t3a.medium", "amd64", 2, 4, 0.0376, 3, 6),
    ("t3a.large", "amd64", 2, 8, 0.0752, 3, 12),
    ("t3a.xlarge", "amd64", 4, 16, 0.1504, 4, 15),
    ("t3a.2xlarge", "amd64", 8, 32, 0.3008, 4, 15),
    ("t4g.medium", "arm64", 2, 4, 0.0336, 3, 6),
    ("t4g.large", "arm64", 2, 8, 0.0672, 3, 12),
    ("t4g.xlarge", "arm64", 4, 16, 0.1344, 4, 15),
    ("t4g.2xlarge", "arm64", 8, 32, 0.2688, 4, 15),
];

/// GPU types: name, vCPU, GiB, GPUs, GPU name, GPU GiB each, on-demand USD/h.
#[rustfmt::skip]
const GPU: &[(&str, u32, u64, u32, &str, u64, f64)] = &[
    ("g4dn.xlarge", 4, 16, 1, "t4", 16, 0.526),
    ("g4dn.2xlarge", 8, 32, 1, "t4", 16, 0.752),
    ("g4dn.4xlarge", 16, 64, 1, "t4", 16, 1.204),
    ("g4dn.12xlarge", 48, 192, 4, "t4", 16, 3.912),
    ("g5.xlarge", 4, 16, 1, "a10g", 24, 1.006),
    ("g5.2xlarge", 8, 32, 1, "a10g", 24, 1.212),
    ("g5.4xlarge", 16, 64, 1, "a10g", 24, 1.624),
    ("g5.12xlarge", 48, 192, 4, "a10g", 24, 5.672),
    ("g5.48xlarge", 192, 768, 8, "a10g", 24, 16.288),
];

/// Zones of the curated catalog.
pub const ZONES: &[&str] = &["us-east-1a", "us-east-1b", "us-east-1c"];

fn size_name(vcpu: u32) -> String {
    match vcpu {
        1 => "medium".to_string(),
        2 => "large".to_string(),
        4 => "xlarge".to_string(),
        n => format!("{}xlarge", n / 4),
    }
}

/// Network interfaces and IPv4 addresses per interface by vCPU count, as EC2 publishes for
/// Nitro types of these families.
fn enis(vcpu: u32) -> (u32, u32) {
    match vcpu {
        1 => (2, 4),
        2 => (3, 10),
        4 | 8 => (4, 15),
        16..=48 => (8, 30),
        _ => (15, 50),
    }
}

fn offerings(on_demand: f64, spot_fraction: f64) -> Vec<Offering> {
    let mut out = Vec::new();
    for zone in ZONES {
        // Spot prices differ a little by zone in practice; model a small spread.
        let skew = match *zone {
            "us-east-1a" => 1.0,
            "us-east-1b" => 1.04,
            _ => 0.97,
        };
        out.push(Offering {
            zone: zone.to_string(),
            capacity_type: CapacityType::OnDemand,
            price: on_demand,
            available: true,
            reservation: None,
        });
        let spot = (on_demand * spot_fraction * skew * 10_000.0).round() / 10_000.0;
        out.push(Offering {
            zone: zone.to_string(),
            capacity_type: CapacityType::Spot,
            price: spot,
            available: true,
            reservation: None,
        });
    }
    out
}

fn base(name: String, arch: &str, vcpu: u32, memory_gib: u64, price: f64, spot: f64) -> InstanceType {
    let (e, ip) = enis(vcpu);
    InstanceType {
        name,
        arch: arch.to_string(),
        vcpu,
        memory_mib: memory_gib * 1024,
        gpus: 0,
        gpu_name: None,
        gpu_manufacturer: None,
        gpu_memory_mib: 0,
        enis: e,
        ipv4_per_eni: ip,
        hypervisor: Some("nitro".to_string()),
        cpu_manufacturer: None,
        local_nvme_gib: 0,
        bare_metal: false,
        offerings: offerings(price, spot),
    }
}

/// The curated catalog.
pub fn catalog() -> Catalog {
    let mut types = Vec::new();
    for f in FAMILIES {
        for &vcpu in f.vcpus {
            let price = (f.large_price * vcpu as f64 / 2.0 * 1e5).round() / 1e5;
            let mut t = base(
                format!("{}.{}", f.name, size_name(vcpu)),
                f.arch,
                vcpu,
                f.gib_per_vcpu * vcpu as u64,
                price,
                f.spot_fraction,
            );
            t.cpu_manufacturer = Some(f.maker.to_string());
            types.push(t);
        }
    }
    for &(name, arch, vcpu, gib, price, e, ip) in BURSTABLE {
        let mut t = base(name.to_string(), arch, vcpu, gib, price, 0.33);
        (t.enis, t.ipv4_per_eni) = (e, ip);
        t.cpu_manufacturer = Some(
            if arch == "arm64" {
                "aws"
            } else if name.starts_with("t3a") {
                "amd"
            } else {
                "intel"
            }
            .to_string(),
        );
        types.push(t);
    }
    for &(name, vcpu, gib, gpus, gpu, gpu_gib, price) in GPU {
        let mut t = base(name.to_string(), "amd64", vcpu, gib, price, 0.40);
        t.gpus = gpus;
        t.gpu_name = Some(gpu.to_string());
        t.gpu_manufacturer = Some("nvidia".to_string());
        t.gpu_memory_mib = gpu_gib * 1024;
        t.cpu_manufacturer = Some(if name.starts_with("g5") { "amd" } else { "intel" }.to_string());
        types.push(t);
    }
    types.sort_by(|a, b| a.name.cmp(&b.name));
    Catalog { types }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curated_catalog_shapes_and_prices() {
        let c = catalog();
        assert!(c.types.len() > 180, "{}", c.types.len());
        let m = c.get("m6i.2xlarge").unwrap();
        assert_eq!((m.vcpu, m.memory_mib, m.enis, m.ipv4_per_eni), (8, 32 * 1024, 4, 15));
        let od = m.offerings.iter().find(|o| o.capacity_type == CapacityType::OnDemand).unwrap();
        assert!((od.price - 0.384).abs() < 1e-9);
        assert_eq!(c.get("c5.9xlarge").unwrap().vcpu, 36);
        assert_eq!(c.get("m6g.medium").unwrap().vcpu, 1);
        assert_eq!(c.get("g5.xlarge").unwrap().gpus, 1);
        assert_eq!(m.category(), "m");
        assert_eq!(m.generation(), Some("6"));
        assert_eq!(m.label("karpenter.k8s.aws/instance-family").as_deref(), Some("m6i"));
        assert_eq!(c.zones(), ZONES);
    }
}
