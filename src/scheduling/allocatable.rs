//! What a node of an instance type can give to pods: capacity minus kube-reserved,
//! system-reserved and the eviction threshold, with the defaults Karpenter uses on EC2.

use super::catalog::InstanceType;
use super::resources::{GIB, MIB, Resources};

/// Share of nominal memory EC2 does not hand to the OS.
pub const VM_MEMORY_OVERHEAD: f64 = 0.075;
/// Hard eviction threshold for memory.available.
pub const EVICTION_MEMORY: i64 = 100 * MIB;
/// Root volume when the EC2NodeClass names none.
pub const DEFAULT_ROOT_VOLUME: i64 = 20 * GIB;
/// Pods per node where ENI limits do not apply.
pub const NO_ENI_MAX_PODS: i64 = 110;

/// Kubelet settings from the EC2NodeClass that change allocatable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KubeletSettings {
    pub max_pods: Option<i64>,
    pub pods_per_core: Option<i64>,
    pub kube_reserved: Option<Resources>,
    pub system_reserved: Option<Resources>,
    /// Hard eviction for memory.available, in bytes (a percentage is resolved per type).
    pub eviction_memory: Option<EvictionThreshold>,
    /// Root volume size in bytes.
    pub root_volume: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvictionThreshold {
    Bytes(i64),
    /// Hundredths of a percent.
    Percent(u32),
}

/// ENIs × (IPv4 per ENI − 1) + 2, unless kubelet settings say otherwise.
pub fn max_pods(t: &InstanceType, k: &KubeletSettings) -> i64 {
    let eni = if t.enis == 0 { NO_ENI_MAX_PODS } else { t.enis as i64 * (t.ipv4_per_eni as i64 - 1) + 2 };
    let mut n = k.max_pods.unwrap_or(eni);
    if let Some(per_core) = k.pods_per_core.filter(|p| *p > 0) {
        n = n.min(per_core * t.vcpu as i64);
    }
    n
}

/// kube-reserved cpu in millicores: 6 % of the first core, 1 % of the second, 0.5 % of the
/// third and fourth, 0.25 % of the rest.
pub fn kube_reserved_cpu(vcpu: u32) -> i64 {
    let cores = vcpu as i64;
    let mut m: f64 = 0.0;
    for core in 1..=cores {
        m += match core {
            1 => 60.0,
            2 => 10.0,
            3 | 4 => 5.0,
            _ => 2.5,
        };
    }
    m.ceil() as i64
}

/// The resources a node of type `t` offers pods.
pub fn allocatable(t: &InstanceType, k: &KubeletSettings) -> Resources {
    let pods = max_pods(t, k);
    let memory_mib = t.memory_mib as i64 - (t.memory_mib as f64 * VM_MEMORY_OVERHEAD).ceil() as i64;
    let capacity_memory = memory_mib * MIB;
    let storage = k.root_volume.unwrap_or(DEFAULT_ROOT_VOLUME);
    let kube = k.kube_reserved.clone().unwrap_or_else(|| Resources {
        cpu: kube_reserved_cpu(t.vcpu),
        memory: (11 * pods + 255) * MIB,
        storage: GIB,
        ..Resources::default()
    });
    let system = k.system_reserved.clone().unwrap_or_default();
    let eviction_memory = match k.eviction_memory {
        None => EVICTION_MEMORY,
        Some(EvictionThreshold::Bytes(b)) => b,
        Some(EvictionThreshold::Percent(p)) => capacity_memory * p as i64 / 10_000,
    };
    Resources {
        cpu: (t.vcpu as i64 * 1000 - kube.cpu - system.cpu).max(0),
        memory: (capacity_memory - kube.memory - system.memory - eviction_memory).max(0),
        storage: (storage - kube.storage - system.storage - storage / 10).max(0),
        pods,
        gpu: t.gpus as i64,
        extended: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::builtin;

    #[test]
    fn m5_large_matches_the_published_formulas() {
        let c = builtin::catalog();
        let t = c.get("m5.large").unwrap();
        let k = KubeletSettings::default();
        assert_eq!(max_pods(t, &k), 29);
        let a = allocatable(t, &k);
        assert_eq!(a.cpu, 2000 - 70);
        // 8 GiB less 7.5 %, less 11 MiB × 29 + 255 MiB, less 100 MiB eviction.
        let mib = 8192 - (8192.0f64 * 0.075).ceil() as i64 - (11 * 29 + 255) - 100;
        assert_eq!(a.memory, mib * MIB);
        assert_eq!(a.pods, 29);
    }

    #[test]
    fn kube_reserved_cpu_steps() {
        assert_eq!(kube_reserved_cpu(1), 60);
        assert_eq!(kube_reserved_cpu(2), 70);
        assert_eq!(kube_reserved_cpu(4), 80);
        assert_eq!(kube_reserved_cpu(8), 90);
        assert_eq!(kube_reserved_cpu(96), 310);
    }

    #[test]
    fn kubelet_settings_override() {
        let c = builtin::catalog();
        let t = c.get("m5.xlarge").unwrap();
        let k = KubeletSettings { max_pods: Some(110), pods_per_core: Some(10), ..Default::default() };
        assert_eq!(max_pods(t, &k), 40);
        let reserved = Resources::new(500, GIB);
        let k = KubeletSettings { kube_reserved: Some(reserved), ..Default::default() };
        assert_eq!(allocatable(t, &k).cpu, 3500);
    }
}
