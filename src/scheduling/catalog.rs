//! The instance catalog: instance types with their shape and labels, and offerings (zone ×
//! capacity type) with price and availability. A reserved offering also names its capacity
//! reservation and how many instances it still holds ([`super::reserved`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::requirements::Requirements;
use super::reservation::{RESERVED_PRICE_DIVISOR, Reservation};

/// How an instance is bought: the value of `karpenter.sh/capacity-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityType {
    OnDemand,
    Spot,
    /// Launched into an On-Demand Capacity Reservation (or a capacity block).
    Reserved,
}

impl CapacityType {
    /// The label value (`on-demand`, `spot`, `reserved`).
    pub fn label(self) -> &'static str {
        match self {
            CapacityType::OnDemand => "on-demand",
            CapacityType::Spot => "spot",
            CapacityType::Reserved => "reserved",
        }
    }
}

impl fmt::Display for CapacityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Where and how an instance type can be bought.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offering {
    pub zone: String,
    pub capacity_type: CapacityType,
    /// USD per hour.
    pub price: f64,
    /// False while the offering is known to be out of capacity.
    #[serde(default = "yes")]
    pub available: bool,
    /// The capacity reservation a `reserved` offering launches into, with its free count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<Reservation>,
}

impl Offering {
    /// The price to rank instance types by for capacity that is not reserved: a reserved
    /// offering's price is the on-demand price divided by [`RESERVED_PRICE_DIVISOR`], and this
    /// undoes it.
    pub fn list_price(&self) -> f64 {
        if self.capacity_type == CapacityType::Reserved { self.price * RESERVED_PRICE_DIVISOR } else { self.price }
    }

    /// Whether a NodePool of EC2NodeClass `class` may launch this offering: a reserved one only
    /// when the class selects its reservation (a launch goes through the class's own
    /// reservations), any other always.
    pub fn admits(&self, class: &str) -> bool {
        self.capacity_type != CapacityType::Reserved || self.reservation.as_ref().is_some_and(|r| r.admits(class))
    }
}

fn yes() -> bool {
    true
}

/// An EC2 instance type as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceType {
    pub name: String,
    /// `amd64` or `arm64`.
    pub arch: String,
    pub vcpu: u32,
    pub memory_mib: u64,
    #[serde(default)]
    pub gpus: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_manufacturer: Option<String>,
    #[serde(default)]
    pub gpu_memory_mib: u64,
    /// Network interfaces and IPv4 addresses per interface, which bound the pod count.
    pub enis: u32,
    pub ipv4_per_eni: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypervisor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_manufacturer: Option<String>,
    #[serde(default)]
    pub local_nvme_gib: u64,
    #[serde(default)]
    pub bare_metal: bool,
    pub offerings: Vec<Offering>,
}

impl InstanceType {
    pub fn family(&self) -> &str {
        self.name.split('.').next().unwrap_or(&self.name)
    }

    pub fn size(&self) -> &str {
        self.name.split_once('.').map_or("", |(_, s)| s)
    }

    /// The leading letters of the family (`m` for m6i, `inf` for inf2).
    pub fn category(&self) -> &str {
        let f = self.family();
        let end = f.find(|c: char| c.is_ascii_digit()).unwrap_or(f.len());
        &f[..end]
    }

    /// The digits after the category (`6` for m6i).
    pub fn generation(&self) -> Option<&str> {
        let f = self.family();
        let start = f.find(|c: char| c.is_ascii_digit())?;
        let rest = &f[start..];
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        Some(&rest[..end])
    }

    /// The value of a well-known label on nodes of this type, for instance-level labels.
    /// Zone and capacity type depend on the offering and are answered by [`Offering`].
    pub fn label(&self, key: &str) -> Option<String> {
        let aws = key.strip_prefix("karpenter.k8s.aws/");
        Some(match (key, aws) {
            ("node.kubernetes.io/instance-type", _) => self.name.clone(),
            ("kubernetes.io/arch", _) => self.arch.clone(),
            ("kubernetes.io/os", _) => "linux".to_string(),
            (_, Some("instance-category")) => self.category().to_string(),
            (_, Some("instance-family")) => self.family().to_string(),
            (_, Some("instance-generation")) => self.generation()?.to_string(),
            (_, Some("instance-size")) => self.size().to_string(),
            (_, Some("instance-cpu")) => self.vcpu.to_string(),
            (_, Some("instance-memory")) => self.memory_mib.to_string(),
            (_, Some("instance-hypervisor")) => self.hypervisor.clone().unwrap_or_default(),
            (_, Some("instance-cpu-manufacturer")) => self.cpu_manufacturer.clone()?,
            (_, Some("instance-local-nvme")) if self.local_nvme_gib > 0 => self.local_nvme_gib.to_string(),
            (_, Some("instance-gpu-count")) if self.gpus > 0 => self.gpus.to_string(),
            (_, Some("instance-gpu-name")) => self.gpu_name.clone()?,
            (_, Some("instance-gpu-manufacturer")) => self.gpu_manufacturer.clone()?,
            (_, Some("instance-gpu-memory")) if self.gpus > 0 => self.gpu_memory_mib.to_string(),
            _ => return None,
        })
    }

    /// Whether the type's instance-level labels meet `reqs` (zone and capacity type aside).
    pub fn meets(&self, reqs: &Requirements) -> bool {
        reqs.iter().all(|(k, set)| {
            if k == ZONE || k == CAPACITY_TYPE || k == "topology.kubernetes.io/region" {
                return true;
            }
            match self.label(k) {
                Some(v) => set.has(&v),
                // A key that is not an instance label is satisfied by the node's own labels;
                // the caller checks those.
                None => !is_instance_label(k) || set.allows_absent(),
            }
        })
    }

    /// Offerings that are available, allowed by `reqs` and open to a NodePool of EC2NodeClass
    /// `class` ([`Offering::admits`]).
    pub fn offerings_for<'a>(
        &'a self,
        reqs: &'a Requirements,
        class: &'a str,
    ) -> impl Iterator<Item = &'a Offering> + 'a {
        let zone = reqs.get(ZONE);
        let cap = reqs.get(CAPACITY_TYPE);
        self.offerings.iter().filter(move |o| {
            o.available
                && zone.is_none_or(|z| z.has(&o.zone))
                && cap.is_none_or(|c| c.has(o.capacity_type.label()))
                && o.admits(class)
        })
    }

    /// The cheapest offering [`InstanceType::offerings_for`] gives.
    pub fn cheapest<'a>(&'a self, reqs: &'a Requirements, class: &'a str) -> Option<&'a Offering> {
        self.offerings_for(reqs, class).min_by(|a, b| a.price.total_cmp(&b.price))
    }
}

pub const ZONE: &str = "topology.kubernetes.io/zone";
pub const CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
pub const INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
pub const HOSTNAME: &str = "kubernetes.io/hostname";

/// Keys whose value comes from the instance type (so a type without one lacks the label).
pub fn is_instance_label(key: &str) -> bool {
    crate::policy::labels::is_instance_label(key)
}

/// A set of instance types.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub types: Vec<InstanceType>,
}

impl Catalog {
    pub fn get(&self, name: &str) -> Option<&InstanceType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Every zone any offering is in, sorted.
    pub fn zones(&self) -> Vec<String> {
        let mut zones: Vec<String> =
            self.types.iter().flat_map(|t| t.offerings.iter().map(|o| o.zone.clone())).collect();
        zones.sort();
        zones.dedup();
        zones
    }
}
