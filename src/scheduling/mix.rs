//! Workload mixes for benchmarks and simulations, generated from a seed.
//!
//! The `karpenter` mix is the one Karpenter's scheduling benchmark uses: a fifth each of
//! generic pods, zone topology spread, hostname topology spread, zonal pod self-affinity and
//! hostname pod anti-affinity, with cpu and memory requests drawn from fixed lists.

use std::collections::HashMap;
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::catalog::{HOSTNAME, ZONE};
use super::pod::{Constraints, Pod, PodAffinityTerm, Selector, TopologySpread, WhenUnsatisfiable};
use super::resources::{MIB, Resources};

pub const CPU_MILLI: [i64; 5] = [100, 250, 500, 1000, 1500];
pub const MEMORY_MIB: [i64; 6] = [100, 256, 512, 1024, 2048, 4096];
const VALUES: [&str; 7] = ["a", "b", "c", "d", "e", "f", "g"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Karpenter's scheduling benchmark mix.
    Karpenter,
    /// Pods with requests only.
    Generic,
}

fn constraints(kind: usize, value: &str) -> Constraints {
    let mut c = Constraints { namespace: "default".to_string(), ..Constraints::default() };
    let spread = |key: &str| TopologySpread {
        topology_key: key.to_string(),
        max_skew: 1,
        when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
        selector: Selector::labels(&[("my-label", value)]),
    };
    match kind {
        1 => {
            c.labels.insert("my-label".into(), value.into());
            c.spread.push(spread(ZONE));
        }
        2 => {
            c.labels.insert("my-label".into(), value.into());
            c.spread.push(spread(HOSTNAME));
        }
        3 => {
            c.labels.insert("my-affinity".into(), value.into());
            let selector = Selector::labels(&[("my-affinity", value)]);
            c.pod_affinity.push(PodAffinityTerm { topology_key: ZONE.into(), selector, namespaces: Vec::new() });
        }
        4 => {
            c.labels.insert("app".into(), "nginx".into());
            let selector = Selector::labels(&[("app", "nginx")]);
            c.pod_anti_affinity.push(PodAffinityTerm {
                topology_key: HOSTNAME.into(),
                selector,
                namespaces: Vec::new(),
            });
        }
        _ => {}
    }
    c
}

/// `n` pending pods of `mix`, reproducible from `seed`.
pub fn pods(mix: Mix, n: usize, seed: u64) -> Vec<Pod> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut shared: HashMap<(usize, usize), Arc<Constraints>> = HashMap::new();
    (0..n)
        .map(|i| {
            let kind = match mix {
                Mix::Karpenter => i * 5 / n.max(1),
                Mix::Generic => 0,
            };
            let v = rng.random_range(0..VALUES.len());
            let c = shared
                .entry((kind, if kind == 0 || kind == 4 { 0 } else { v }))
                .or_insert_with(|| Arc::new(constraints(kind, VALUES[v])))
                .clone();
            let requests = Resources {
                cpu: CPU_MILLI[rng.random_range(0..CPU_MILLI.len())],
                memory: MEMORY_MIB[rng.random_range(0..MEMORY_MIB.len())] * MIB,
                pods: 1,
                ..Resources::default()
            };
            Pod { name: format!("pod-{i:06}"), requests, constraints: c, owner: None }
        })
        .collect()
}
