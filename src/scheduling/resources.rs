//! Resource vectors: cpu (millicores), memory and ephemeral storage (bytes), pods, GPUs and any
//! other extended resource.

use std::collections::BTreeMap;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use serde::Serialize;

use crate::policy::quantity::Quantity;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const STORAGE: &str = "ephemeral-storage";
pub const PODS: &str = "pods";
pub const GPU: &str = "nvidia.com/gpu";

/// A resource vector. The common resources are fields so that the hot fit test is a handful
/// of integer comparisons; others live in `extended`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Resources {
    /// Millicores.
    pub cpu: i64,
    /// Bytes.
    pub memory: i64,
    /// Bytes.
    pub storage: i64,
    pub pods: i64,
    pub gpu: i64,
    /// Other extended resources by name; absent means zero.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extended: BTreeMap<String, i64>,
}

impl Resources {
    pub fn new(cpu_milli: i64, memory_bytes: i64) -> Resources {
        Resources { cpu: cpu_milli, memory: memory_bytes, ..Resources::default() }
    }

    /// Reads a Kubernetes resource list; unknown names become extended resources.
    pub fn from_quantities<'a>(list: impl IntoIterator<Item = (&'a str, &'a Quantity)>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list {
            r.set(name, if name == CPU { q.milli() as i64 } else { q.units() as i64 });
        }
        r
    }

    pub fn get(&self, name: &str) -> i64 {
        match name {
            CPU => self.cpu,
            MEMORY => self.memory,
            STORAGE => self.storage,
            PODS => self.pods,
            GPU => self.gpu,
            other => self.extended.get(other).copied().unwrap_or(0),
        }
    }

    pub fn set(&mut self, name: &str, value: i64) {
        match name {
            CPU => self.cpu = value,
            MEMORY => self.memory = value,
            STORAGE => self.storage = value,
            PODS => self.pods = value,
            GPU => self.gpu = value,
            other => {
                self.extended.insert(other.to_string(), value);
            }
        }
    }

    /// True when every resource of `self` is at most `capacity`'s.
    pub fn fits(&self, capacity: &Resources) -> bool {
        self.cpu <= capacity.cpu
            && self.memory <= capacity.memory
            && self.storage <= capacity.storage
            && self.pods <= capacity.pods
            && self.gpu <= capacity.gpu
            && self.extended.iter().all(|(k, v)| *v <= capacity.extended.get(k).copied().unwrap_or(0))
    }

    /// The first resource of `self` that exceeds `capacity`, for messages.
    pub fn first_excess(&self, capacity: &Resources) -> Option<(String, i64, i64)> {
        let fixed = [(CPU, self.cpu, capacity.cpu), (MEMORY, self.memory, capacity.memory)];
        let more = [
            (STORAGE, self.storage, capacity.storage),
            (PODS, self.pods, capacity.pods),
            (GPU, self.gpu, capacity.gpu),
        ];
        for (name, need, have) in fixed.into_iter().chain(more) {
            if need > have {
                return Some((name.to_string(), need, have));
            }
        }
        self.extended.iter().find_map(|(k, v)| {
            let have = capacity.extended.get(k).copied().unwrap_or(0);
            (*v > have).then(|| (k.clone(), *v, have))
        })
    }

    /// Subtracts `n` times `o`.
    pub fn sub_times(&mut self, o: &Resources, n: i64) {
        self.cpu -= o.cpu * n;
        self.memory -= o.memory * n;
        self.storage -= o.storage * n;
        self.pods -= o.pods * n;
        self.gpu -= o.gpu * n;
        for (k, v) in &o.extended {
            *self.extended.entry(k.clone()).or_insert(0) -= v * n;
        }
    }
}

impl AddAssign<&Resources> for Resources {
    fn add_assign(&mut self, o: &Resources) {
        self.cpu += o.cpu;
        self.memory += o.memory;
        self.storage += o.storage;
        self.pods += o.pods;
        self.gpu += o.gpu;
        for (k, v) in &o.extended {
            *self.extended.entry(k.clone()).or_insert(0) += v;
        }
    }
}

impl SubAssign<&Resources> for Resources {
    fn sub_assign(&mut self, o: &Resources) {
        self.cpu -= o.cpu;
        self.memory -= o.memory;
        self.storage -= o.storage;
        self.pods -= o.pods;
        self.gpu -= o.gpu;
        for (k, v) in &o.extended {
            *self.extended.entry(k.clone()).or_insert(0) -= v;
        }
    }
}

impl Add<&Resources> for &Resources {
    type Output = Resources;
    fn add(self, o: &Resources) -> Resources {
        let mut r = self.clone();
        r += o;
        r
    }
}

impl Sub<&Resources> for &Resources {
    type Output = Resources;
    fn sub(self, o: &Resources) -> Resources {
        let mut r = self.clone();
        r -= o;
        r
    }
}

pub const MIB: i64 = 1 << 20;
pub const GIB: i64 = 1 << 30;

/// How many pods requesting `req` fit in `free`.
pub fn fit_count(free: &Resources, req: &Resources) -> u32 {
    let mut n = u32::MAX as i64;
    let dims = [
        (free.cpu, req.cpu),
        (free.memory, req.memory),
        (free.storage, req.storage),
        (free.pods, req.pods),
        (free.gpu, req.gpu),
    ];
    for (have, need) in dims {
        if need > 0 {
            n = n.min(have.max(0) / need);
        }
    }
    for (k, need) in &req.extended {
        if *need > 0 {
            n = n.min(free.extended.get(k).copied().unwrap_or(0).max(0) / need);
        }
    }
    n.max(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_and_arithmetic() {
        let mut a = Resources::new(500, 256 * MIB);
        a.pods = 1;
        let cap = Resources { cpu: 2000, memory: GIB, storage: 0, pods: 10, gpu: 0, extended: BTreeMap::new() };
        assert!(a.fits(&cap));
        let mut g = a.clone();
        g.set("example.com/fpga", 1);
        assert!(!g.fits(&cap));
        assert_eq!(g.first_excess(&cap).unwrap().0, "example.com/fpga");
        let sum = &a + &a;
        assert_eq!((sum.cpu, sum.pods), (1000, 2));
        assert_eq!(&sum - &a, a);
    }
}
