//! The instance catalog from EC2: DescribeInstanceTypes and DescribeInstanceTypeOfferings,
//! priced from a price file (on-demand) and DescribeSpotPriceHistory (spot).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ec2::types::{ArchitectureType, InstanceTypeInfo, LocationType, UsageClassType};

use super::super::CloudError;
use super::classify;
use crate::scheduling::catalog::{CapacityType, Catalog, InstanceType, Offering};

/// What became of the types EC2 described.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportReport {
    pub described: usize,
    pub exported: usize,
    /// Types with no on-demand price in the price file.
    pub unpriced: Vec<String>,
    /// Types with no usable architecture (e.g. i386 only) or no offering.
    pub skipped: Vec<String>,
}

/// The scheduler's view of one EC2 instance type, without offerings. `None` for types the
/// scheduler cannot use (no 64-bit architecture, no vCPU or memory figures).
pub fn instance_type(info: &InstanceTypeInfo) -> Option<InstanceType> {
    let name = info.instance_type()?.as_str().to_string();
    let processor = info.processor_info();
    let archs = processor.map(|p| p.supported_architectures()).unwrap_or_default();
    let arch = if archs.contains(&ArchitectureType::Arm64) {
        "arm64"
    } else if archs.contains(&ArchitectureType::X8664) {
        "amd64"
    } else {
        return None;
    };
    let vcpu = info.v_cpu_info()?.default_v_cpus()? as u32;
    let memory_mib = info.memory_info()?.size_in_mib()? as u64;
    let network = info.network_info();
    let gpus = info.gpu_info().map(|g| g.gpus()).unwrap_or_default();
    let first_gpu = gpus.first();
    Some(InstanceType {
        name,
        arch: arch.to_string(),
        vcpu,
        memory_mib,
        gpus: gpus.iter().filter_map(|g| g.count()).sum::<i32>() as u32,
        gpu_name: first_gpu.and_then(|g| g.name()).map(|n| n.to_lowercase()),
        gpu_manufacturer: first_gpu.and_then(|g| g.manufacturer()).map(|n| n.to_lowercase()),
        gpu_memory_mib: first_gpu.and_then(|g| g.memory_info()).and_then(|m| m.size_in_mib()).unwrap_or(0) as u64,
        enis: network.and_then(|n| n.maximum_network_interfaces()).unwrap_or(0) as u32,
        ipv4_per_eni: network.and_then(|n| n.ipv4_addresses_per_interface()).unwrap_or(0) as u32,
        hypervisor: info.hypervisor().map(|h| h.as_str().to_string()),
        cpu_manufacturer: processor.and_then(|p| p.manufacturer()).map(|m| m.to_lowercase()),
        local_nvme_gib: info.instance_storage_info().and_then(|s| s.total_size_in_gb()).unwrap_or(0) as u64,
        bare_metal: info.bare_metal().unwrap_or(false),
        offerings: Vec::new(),
    })
}

/// Joins described types, their zones and prices into a catalog. Pure.
pub fn assemble(
    infos: &[InstanceTypeInfo],
    zones: &BTreeMap<String, Vec<String>>,
    on_demand: &HashMap<String, f64>,
    spot: &HashMap<(String, String), f64>,
) -> (Catalog, ExportReport) {
    let mut report = ExportReport { described: infos.len(), ..ExportReport::default() };
    let mut types = Vec::new();
    for info in infos {
        let Some(mut t) = instance_type(info) else {
            if let Some(n) = info.instance_type() {
                report.skipped.push(n.as_str().to_string());
            }
            continue;
        };
        let Some(&price) = on_demand.get(&t.name) else {
            report.unpriced.push(t.name.clone());
            continue;
        };
        let spot_ok = info.supported_usage_classes().contains(&UsageClassType::Spot);
        for zone in zones.get(&t.name).into_iter().flatten() {
            t.offerings.push(Offering {
                zone: zone.clone(),
                capacity_type: CapacityType::OnDemand,
                price,
                available: true,
                reservation: None,
            });
            if spot_ok && let Some(&p) = spot.get(&(t.name.clone(), zone.clone())) {
                t.offerings.push(Offering {
                    zone: zone.clone(),
                    capacity_type: CapacityType::Spot,
                    price: p,
                    available: true,
                    reservation: None,
                });
            }
        }
        if t.offerings.is_empty() {
            report.skipped.push(t.name.clone());
            continue;
        }
        types.push(t);
    }
    types.sort_by(|a, b| a.name.cmp(&b.name));
    report.exported = types.len();
    report.unpriced.sort();
    report.skipped.sort();
    (Catalog { types }, report)
}

/// Reads every instance type and its zones from EC2, priced from `on_demand`.
pub async fn fetch(
    client: &aws_sdk_ec2::Client,
    on_demand: &HashMap<String, f64>,
) -> Result<(Catalog, ExportReport), CloudError> {
    let infos: Vec<InstanceTypeInfo> = client
        .describe_instance_types()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| classify("DescribeInstanceTypes", e))?;
    let offerings = client
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| classify("DescribeInstanceTypeOfferings", e))?;
    let mut zones: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in offerings {
        if let (Some(t), Some(z)) = (o.instance_type(), o.location()) {
            zones.entry(t.as_str().to_string()).or_default().push(z.to_string());
        }
    }
    for z in zones.values_mut() {
        z.sort();
        z.dedup();
    }
    let spot = spot_prices(client).await?;
    Ok(assemble(&infos, &zones, on_demand, &spot))
}

/// The latest Linux spot price per (type, zone).
pub async fn spot_prices(client: &aws_sdk_ec2::Client) -> Result<HashMap<(String, String), f64>, CloudError> {
    let history = client
        .describe_spot_price_history()
        .product_descriptions("Linux/UNIX")
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| classify("DescribeSpotPriceHistory", e))?;
    let mut latest: HashMap<(String, String), (aws_sdk_ec2::primitives::DateTime, f64)> = HashMap::new();
    for h in history {
        let (Some(t), Some(z), Some(p), Some(at)) =
            (h.instance_type(), h.availability_zone(), h.spot_price(), h.timestamp())
        else {
            continue;
        };
        let Ok(price) = p.parse::<f64>() else { continue };
        let key = (t.as_str().to_string(), z.to_string());
        if latest.get(&key).is_none_or(|(when, _)| at > when) {
            latest.insert(key, (*at, price));
        }
    }
    Ok(latest.into_iter().map(|(k, (_, p))| (k, p)).collect())
}
