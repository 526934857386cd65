//! Properties over random pods, pools and nodes: no node over its allocatable, no broken
//! requirement, taint, spread or anti-affinity, limits kept, every pod placed or explained.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use capstan::policy::meta::TaintEffect;
use capstan::scheduling::catalog::{HOSTNAME, ZONE};
use capstan::scheduling::pod::{Pod, Selector, WhenUnsatisfiable, pod, untolerated};
use capstan::scheduling::requirements::ValueSet;
use capstan::scheduling::{Strategy as Packing, solve};
use proptest::prelude::*;

use super::{Case, catalog, pool, taint};

#[derive(Debug, Clone)]
struct Spec {
    cpu: u32,
    mem: u32,
    kind: u8,
    value: u8,
}

fn spec() -> impl Strategy<Value = Spec> {
    (0u32..5, 0u32..6, 0u8..9, 0u8..3).prop_map(|(cpu, mem, kind, value)| Spec { cpu, mem, kind, value })
}

const CPUS: [&str; 5] = ["100m", "250m", "500m", "1", "3"];
const MEMS: [&str; 6] = ["64Mi", "256Mi", "1Gi", "2Gi", "4Gi", "12Gi"];

fn build(i: usize, s: &Spec) -> Pod {
    let v = ["a", "b", "c"][s.value as usize];
    let b = pod().name(&format!("p{i}")).cpu(CPUS[s.cpu as usize]).memory(MEMS[s.mem as usize]);
    match s.kind {
        1 => b.label("spread", v).spread(ZONE, 1, WhenUnsatisfiable::DoNotSchedule, Selector::labels(&[("spread", v)])),
        2 => b.label("host", v).spread(HOSTNAME, 1, WhenUnsatisfiable::DoNotSchedule, Selector::labels(&[("host", v)])),
        3 => b.label("anti", "x").anti_affinity(HOSTNAME, Selector::labels(&[("anti", "x")])),
        4 => b.zone(["us-east-1a", "us-east-1b", "us-east-1c"][s.value as usize]),
        5 => b.arch("arm64"),
        6 => b.tolerate("dedicated", "batch", Some(TaintEffect::NoSchedule)),
        7 => b.host_port(8000 + s.value as u16),
        8 => b.label("together", v).affinity(ZONE, Selector::labels(&[("together", v)])),
        _ => b,
    }
    .build()
}

fn check(case: &Case, strategy: Packing) -> Result<(), TestCaseError> {
    let input = case.input(strategy);
    let plan = solve(&input);
    let c = case.catalog;
    // Every pod exactly once.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for b in &plan.bindings {
        *seen.entry(b.pod.as_str()).or_default() += 1;
    }
    for cl in &plan.claims {
        for p in &cl.pods {
            *seen.entry(p.as_str()).or_default() += 1;
        }
    }
    for u in &plan.unschedulable {
        prop_assert!(!u.reason.is_empty());
        *seen.entry(u.pod.as_str()).or_default() += 1;
    }
    for p in &input.pods {
        prop_assert_eq!(seen.get(p.name.as_str()).copied(), Some(1), "{} placed once ({:?})", p.name, strategy);
    }
    let by_name: HashMap<&str, &Pod> = input.pods.iter().map(|p| (p.name.as_str(), p)).collect();
    // Claims: fit, requirements, taints, exclusions.
    let mut zone_counts: BTreeMap<String, BTreeMap<String, i32>> = BTreeMap::new();
    let mut pool_cpu: BTreeMap<String, i64> = BTreeMap::new();
    let mut together: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for cl in &plan.claims {
        prop_assert!(cl.requests.fits(&cl.allocatable), "{} over allocatable ({strategy:?})", cl.name);
        let t = c.get(&cl.instance_type).unwrap();
        *pool_cpu.entry(cl.node_pool.clone()).or_default() += t.vcpu as i64 * 1000;
        let pool = input.pools.iter().find(|p| p.name == cl.node_pool).unwrap();
        let label = |k: &str| -> Option<String> {
            match k {
                ZONE => Some(cl.zone.clone()),
                "karpenter.sh/capacity-type" => Some(cl.capacity_type.label().to_string()),
                _ => t.label(k).or_else(|| pool.labels.get(k).cloned()),
            }
        };
        prop_assert!(meets(&pool.requirements, &label), "{} breaks NodePool {} ({strategy:?})", cl.name, pool.name);
        let mut ports = Vec::new();
        let mut hosts: BTreeMap<String, i32> = BTreeMap::new();
        let mut anti = 0;
        for name in &cl.pods {
            let p = by_name[name.as_str()];
            let k = &p.constraints;
            let ok = groups_ok(k, &|key| label(key));
            prop_assert!(ok, "{name} on {} breaks its node requirements ({strategy:?})", cl.name);
            prop_assert!(untolerated(&pool.taints, &k.tolerations).is_none(), "{name} taint ({strategy:?})");
            for hp in &k.host_ports {
                prop_assert!(!ports.contains(hp), "host port twice on {} ({strategy:?})", cl.name);
                ports.push(hp.clone());
            }
            if let Some(v) = k.labels.get("host") {
                *hosts.entry(v.clone()).or_default() += 1;
            }
            if k.labels.contains_key("anti") {
                anti += 1;
            }
            if let Some(v) = k.labels.get("spread") {
                *zone_counts.entry(v.clone()).or_default().entry(cl.zone.clone()).or_default() += 1;
            }
            if let Some(v) = k.labels.get("together") {
                together.entry(v.clone()).or_default().insert(cl.zone.clone());
            }
        }
        prop_assert!(hosts.values().all(|n| *n <= 1), "hostname spread broken on {} ({strategy:?})", cl.name);
        prop_assert!(anti <= 1, "anti-affinity broken on {} ({strategy:?})", cl.name);
    }
    for (v, zones) in &zone_counts {
        let all: Vec<i32> =
            ["us-east-1a", "us-east-1b", "us-east-1c"].iter().map(|z| zones.get(*z).copied().unwrap_or(0)).collect();
        let (min, max) = (all.iter().min().unwrap(), all.iter().max().unwrap());
        prop_assert!(max - min <= 1, "zone spread {v}: {all:?} ({strategy:?})");
    }
    for (v, zones) in &together {
        prop_assert!(zones.len() <= 1, "zonal pod affinity {v}: {zones:?} ({strategy:?})");
    }
    for p in &input.pools {
        if let Some(l) = p.limits.cpu {
            prop_assert!(pool_cpu.get(&p.name).copied().unwrap_or(0) <= l, "limit of {} ({strategy:?})", p.name);
        }
    }
    Ok(())
}

/// Whether a node with these labels meets the requirements.
fn meets(reqs: &capstan::scheduling::requirements::Requirements, label: &dyn Fn(&str) -> Option<String>) -> bool {
    reqs.iter().all(|(k, set)| match label(k) {
        Some(v) => set.has(&v),
        None => set.allows_absent(),
    })
}

fn groups_ok(c: &capstan::scheduling::pod::Constraints, label: &dyn Fn(&str) -> Option<String>) -> bool {
    let levels = capstan::scheduling::groups::levels(c);
    levels.last().unwrap().iter().any(|a| meets(a, label))
}

/// A batch large enough for the packer to round the configuration LP over zones (at least
/// `ROUND_PODS` pods, some held to zones by spread, affinity and selectors) still keeps every
/// rule, with the pods spread over every kind as the random cases draw them.
#[test]
fn a_batch_the_zoned_rounding_packs_keeps_every_rule() {
    let c = catalog();
    let n = capstan::scheduling::pack::ROUND_PODS + 500;
    // Two cpu and two memory sizes: few groups, so that the debug build's LP is quick.
    let spec = |i: usize| Spec {
        cpu: [1, 3][i % 2],
        mem: [2, 4][i / 2 % 2],
        kind: (i / 4 % 9) as u8,
        value: (i / 36 % 3) as u8,
    };
    let specs = (0..n).map(spec);
    let pods: Vec<Pod> = specs.enumerate().map(|(i, s)| build(i, &s)).collect();
    let mut case = Case::new(&c, pods);
    let mut batch = pool("batch");
    batch.weight = 10;
    batch.requirements.add("kubernetes.io/arch", ValueSet::one("amd64"));
    case.pools = vec![batch, pool("general")];
    check(&case, Packing::CostOptimal).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn plans_keep_every_rule(specs in proptest::collection::vec(spec(), 1..60), limit in 0usize..3, tainted in any::<bool>()) {
        let c = catalog();
        let pods: Vec<Pod> = specs.iter().enumerate().map(|(i, s)| build(i, s)).collect();
        let mut case = Case::new(&c, pods);
        let mut general = pool("general");
        general.limits.cpu = [None, Some(16_000), Some(64_000)][limit];
        let mut batch = pool("batch");
        batch.weight = 10;
        batch.requirements.add("kubernetes.io/arch", ValueSet::one("amd64"));
        if tainted {
            batch.taints.push(taint("dedicated", "batch", TaintEffect::NoSchedule));
        }
        case.pools = vec![batch, general];
        check(&case, Packing::CostOptimal)?;
        check(&case, Packing::FirstFitDecreasing)?;
    }
}
