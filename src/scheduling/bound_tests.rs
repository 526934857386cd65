//! The bounds against each other, the exact optimum and the packer: hand-computed cases and
//! random small instances.

use proptest::prelude::*;

use super::bound::lower_bound;
use super::bound_assign::assignment_bound;
use super::bound_columns::{Budget, EXACT, configuration_bound};
use super::bound_knapsack::knapsack;
use super::bound_model::{Demand, Kind, Model};
use super::catalog::{CapacityType, Catalog, HOSTNAME, InstanceType, Offering};
use super::exact::{Limits, optimum};
use super::mix::{CPU_MILLI, MEMORY_MIB};
use super::pod::{Pod, Selector, WhenUnsatisfiable, pod};
use super::pool::{Limits as PoolLimits, PoolSpec};
use super::{Input, solve};
use std::time::Duration;

/// A type with `vcpu` cores, `gib` GiB and room for `pods` pods, on demand in one zone.
pub(super) fn itype(name: &str, vcpu: u32, gib: u64, pods: u32, price: f64) -> InstanceType {
    InstanceType {
        name: name.to_string(),
        arch: "amd64".to_string(),
        vcpu,
        memory_mib: gib * 1024,
        gpus: 0,
        gpu_name: None,
        gpu_manufacturer: None,
        gpu_memory_mib: 0,
        enis: 1,
        ipv4_per_eni: pods - 1,
        hypervisor: Some("nitro".to_string()),
        cpu_manufacturer: None,
        local_nvme_gib: 0,
        bare_metal: false,
        offerings: vec![Offering {
            zone: "zone-a".to_string(),
            capacity_type: CapacityType::OnDemand,
            price,
            available: true,
            reservation: None,
        }],
    }
}

pub(super) fn input(catalog: &Catalog, pods: Vec<Pod>) -> Input<'_> {
    Input {
        pods,
        nodes: Vec::new(),
        daemonsets: Vec::new(),
        pools: vec![PoolSpec::named("default")],
        catalog,
        cluster_limits: PoolLimits::default(),
        strategy: super::Strategy::CostOptimal,
    }
}

pub(super) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

/// `a ≤ b` up to solver tolerance.
pub(super) fn at_most(a: f64, b: f64) -> bool {
    a <= b + 1e-6 * b.abs().max(1.0)
}

#[test]
fn pods_that_fit_one_per_node_need_one_node_each() {
    let catalog = Catalog { types: vec![itype("two.cpu", 2, 8, 20, 0.1)] };
    let pods = (0..3).map(|i| pod().name(&format!("p{i}")).cpu("1500m").memory("1Gi").build()).collect();
    let input = input(&catalog, pods);
    let m = Model::of(&input);
    let exact = optimum(&m, Limits::default()).expect("small");
    assert!(close(exact.cost, 0.3), "{exact:?}");
    assert_eq!(exact.nodes, 3);
    let conf = configuration_bound(&m, Budget::default()).expect("solved");
    assert!(conf.proven && close(conf.bound, 0.3), "{conf:?}");
    let resource = lower_bound(&input).expect("bound");
    assert!(resource < 0.25, "resource LP {resource} should count 4.5 cores on 1.93-core nodes");
    let assign = assignment_bound(&m, Duration::from_secs(5)).expect("bound");
    assert!(at_most(resource, assign) && at_most(assign, conf.bound), "{resource} {assign} {conf:?}");
    assert!(close(solve(&input).cost_per_hour(), 0.3));
}

#[test]
fn a_type_no_pod_fits_on_lends_no_capacity() {
    // The big type is cheap per core but no pod may run on it: only the small type counts.
    let catalog = Catalog { types: vec![itype("small.a", 2, 8, 20, 0.1), itype("big.b", 16, 64, 200, 0.4)] };
    let pods: Vec<Pod> = (0..4)
        .map(|i| {
            pod()
                .name(&format!("p{i}"))
                .cpu("500m")
                .node_selector("node.kubernetes.io/instance-type", "small.a")
                .build()
        })
        .collect();
    let input = input(&catalog, pods);
    let m = Model::of(&input);
    assert_eq!(m.kinds.len(), 1, "{m:?}");
    let resource = lower_bound(&input).expect("bound");
    let assign = assignment_bound(&m, Duration::from_secs(5)).expect("bound");
    assert!(resource < 0.1, "resource LP buys the big type: {resource}");
    assert!(assign > 0.1 && at_most(assign, 0.2), "{assign}");
    assert!(close(optimum(&m, Limits::default()).expect("small").cost, 0.2));
}

#[test]
fn self_anti_affinity_puts_one_pod_on_each_node() {
    let catalog = Catalog { types: vec![itype("big.a", 8, 32, 50, 0.4), itype("small.b", 1, 4, 10, 0.06)] };
    let sel = Selector::labels(&[("app", "web")]);
    let pods: Vec<Pod> = (0..5)
        .map(|i| {
            pod().name(&format!("w{i}")).cpu("250m").label("app", "web").anti_affinity(HOSTNAME, sel.clone()).build()
        })
        .collect();
    let input = input(&catalog, pods);
    let m = Model::of(&input);
    assert_eq!(m.min_nodes, 5.0);
    let conf = configuration_bound(&m, Budget::default()).expect("solved");
    assert!(close(conf.bound, 0.3), "{conf:?}");
    let assign = assignment_bound(&m, Duration::from_secs(5)).expect("bound");
    assert!(close(assign, 0.3), "{assign}");
    assert!(close(optimum(&m, Limits::default()).expect("small").cost, 0.3));
}

#[test]
fn knapsack_respects_every_dimension() {
    let catalog = Catalog { types: vec![itype("mid.a", 4, 16, 4, 1.0)] };
    // Pod count binds (4 pods at most) before cpu does.
    let pods: Vec<Pod> = (0..8).map(|i| pod().name(&format!("p{i}")).cpu("100m").build()).collect();
    let m = Model::of(&input(&catalog, pods));
    let k = knapsack(&m, 0, &[1.0], 10_000, 0.0);
    assert_eq!(k.counts, vec![4]);
    assert!(close(k.upper, 4.0));
}

#[test]
fn exact_gives_up_past_its_limits() {
    let catalog = Catalog { types: vec![itype("mid.a", 4, 16, 40, 1.0)] };
    let pods: Vec<Pod> =
        (0..30).map(|i| pod().name(&format!("p{i}")).cpu(&format!("{}m", 100 + 10 * i)).build()).collect();
    let m = Model::of(&input(&catalog, pods));
    assert_eq!(optimum(&m, Limits { states: 100, configs: 1_000 }), None);
}

const CPU: [&str; 4] = ["250m", "500m", "1", "1500m"];
const MEM: [&str; 4] = ["256Mi", "1Gi", "2Gi", "4Gi"];

/// Types as (vcpu, GiB, max pods, price); groups as (cpu, memory, pods, rule, app), the rule
/// being none, hostname anti-affinity or a hostname spread of skew 2 over the app.
type Shapes = (Vec<(u32, u64, u32, f64)>, Vec<(usize, usize, u32, u8, u8)>);

fn instance() -> impl Strategy<Value = Shapes> {
    let types = prop::collection::vec(
        (prop::sample::select(vec![1u32, 2, 4, 8]), prop::sample::select(vec![2u64, 4, 8, 16]), 4u32..30, 1u32..100),
        2..=5,
    )
    .prop_map(|v| v.into_iter().map(|(c, g, p, cents)| (c, g, p, cents as f64 / 100.0)).collect());
    let groups = prop::collection::vec((0..CPU.len(), 0..MEM.len(), 1u32..=8, 0u8..3, 0u8..3), 1..=4);
    (types, groups)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn bounds_are_ordered_and_below_the_packer((types, groups) in instance()) {
        let catalog = Catalog {
            types: types.iter().enumerate().map(|(i, (c, g, p, price))| itype(&format!("t{i}.x"), *c, *g, *p, *price)).collect(),
        };
        let mut pods = Vec::new();
        for (gi, (c, mem, n, rule, app)) in groups.iter().enumerate() {
            // Groups with the same app label share their anti-affinity or spread.
            let app = format!("app{app}");
            for i in 0..*n {
                let mut b = pod().name(&format!("g{gi}-{i}")).cpu(CPU[*c]).memory(MEM[*mem]).label("app", &app);
                let sel = Selector::labels(&[("app", app.as_str())]);
                match rule {
                    1 => b = b.anti_affinity(HOSTNAME, sel),
                    2 => b = b.spread(HOSTNAME, 2, WhenUnsatisfiable::DoNotSchedule, sel),
                    _ => {}
                }
                pods.push(b.build());
            }
        }
        let input = input(&catalog, pods);
        let m = Model::of(&input);
        let plan = solve(&input);
        prop_assume!(m.left_out == 0 && plan.unschedulable.is_empty());
        let resource = lower_bound(&input).expect("resource LP");
        let assign = assignment_bound(&m, Duration::from_secs(10)).expect("assignment LP");
        let conf = configuration_bound(&m, Budget::default()).expect("configuration LP");
        let exact = optimum(&m, Limits::default()).expect("small instance");
        let merged = configuration_bound(&m.merged(), Budget::default()).expect("merged configuration LP");
        // The zoned bound's finer pricing: one-pod sets as choices, the pod count on the grid.
        let fine = Budget { room: true, choices: true, ..Budget::default() };
        let finer = configuration_bound(&m.merged(), fine).expect("configuration LP, finer pricing");
        let cost = plan.cost_per_hour();
        if let Err(e) = feasible(&input.pods, &plan) {
            prop_assert!(false, "{e}");
        }
        // The re-packs keep the first packing unless they place more pods or cost less.
        let first = solve(&Input { strategy: super::Strategy::Greedy, ..input.clone() });
        prop_assert!(plan.placed() >= first.placed(), "re-pack placed {} of the first {}", plan.placed(), first.placed());
        prop_assert!(plan.placed() > first.placed() || at_most(cost, first.cost_per_hour()), "re-pack {cost} > first {}", first.cost_per_hour());
        prop_assert!(merged.proven, "{merged:?}");
        prop_assert!(at_most(merged.bound, conf.bound), "merged {merged:?} > configuration {conf:?}");
        prop_assert!(at_most(resource, assign), "resource {resource} > assignment {assign}");
        prop_assert!(conf.proven, "{conf:?}");
        prop_assert!(at_most(assign, conf.bound), "assignment {assign} > configuration {conf:?}");
        prop_assert!(at_most(conf.bound, exact.cost), "configuration {conf:?} > optimum {exact:?}");
        prop_assert!(finer.proven && close(finer.bound, merged.bound), "finer {finer:?}, merged {merged:?}");
        prop_assert!(at_most(exact.cost, cost), "optimum {exact:?} > packer {cost}");
    }
}

/// Every new node holds its pods' requests, no anti-affine pod shares a node with a pod its
/// term selects, and hostname spreads keep within their skew over the new nodes among the pods
/// that carry them.
fn feasible(pods: &[Pod], plan: &super::Plan) -> Result<(), String> {
    let by_name: std::collections::HashMap<&str, &Pod> = pods.iter().map(|p| (p.name.as_str(), p)).collect();
    let on: Vec<Vec<&Pod>> = plan.claims.iter().map(|c| c.pods.iter().map(|n| by_name[n.as_str()]).collect()).collect();
    for (c, held) in plan.claims.iter().zip(&on) {
        let (cpu, memory) = held.iter().fold((0, 0), |(c, m), p| (c + p.requests.cpu, m + p.requests.memory));
        if cpu > c.allocatable.cpu || memory > c.allocatable.memory || held.len() as i64 > c.allocatable.pods {
            return Err(format!("{} holds more than its allocatable", c.name));
        }
        for p in held {
            for t in &p.constraints.pod_anti_affinity {
                if held.iter().any(|q| q.name != p.name && t.selector.matches(&q.constraints.labels)) {
                    return Err(format!("{} shares {} with a pod its anti-affinity selects", p.name, c.name));
                }
            }
        }
    }
    // Pods bound in an order that puts those carrying a spread first: only they are checked
    // against it when they land, so only they count.
    for p in pods {
        for s in p.constraints.spread.iter().filter(|s| s.topology_key == HOSTNAME) {
            let carries =
                |q: &Pod| q.constraints.spread.iter().any(|t| t.topology_key == HOSTNAME && t.selector == s.selector);
            let counts = on
                .iter()
                .map(|held| held.iter().filter(|q| carries(q) && s.selector.matches(&q.constraints.labels)).count());
            let (most, least) = counts.fold((0, usize::MAX), |(a, b), n| (a.max(n), b.min(n)));
            if most > least + s.max_skew as usize {
                return Err(format!("{}'s hostname spread is skewed {most} to {least}", p.name));
            }
        }
    }
    Ok(())
}

#[test]
fn repacking_at_the_first_plans_own_prices_saves() {
    // Karpenter's benchmark mix: the first packing opens large nodes for the anti-affine
    // pods, which the values per pod its own nodes give show to be dear.
    let catalog = super::builtin::catalog();
    let input = input(&catalog, super::mix::pods(super::mix::Mix::Karpenter, 200, 1));
    let first = solve(&Input { strategy: super::Strategy::Greedy, ..input.clone() });
    let plan = solve(&input);
    assert!(plan.unschedulable.is_empty() && first.unschedulable.is_empty());
    feasible(&input.pods, &first).expect("a feasible first plan");
    feasible(&input.pods, &plan).expect("a feasible plan");
    let (cost, was) = (plan.cost_per_hour(), first.cost_per_hour());
    assert!(cost < 0.95 * was, "re-packed ${cost:.4}/h, first ${was:.4}/h");
    let m = Model::of(&input);
    let conf = configuration_bound(&m.merged(), Budget::default()).expect("configuration LP");
    assert!(at_most(conf.bound, cost), "{conf:?} above the plan's {cost}");
}

#[test]
fn rounding_the_configuration_lp_comes_within_three_percent_of_it() {
    // 1,200 pods of six shapes, held to no zone and kept apart from none (so the rounding
    // applies), on four types whose prices favour no shape.
    let catalog = Catalog {
        types: vec![
            itype("s", 2, 4, 30, 0.085),
            itype("m", 4, 16, 60, 0.19),
            itype("c", 8, 8, 60, 0.30),
            itype("l", 16, 64, 110, 0.75),
        ],
    };
    let (cpus, mems) = (["300m", "700m", "1500m"], ["512Mi", "3Gi"]);
    let pods =
        (0..1_200).map(|i| pod().name(&format!("p{i}")).cpu(cpus[i % 3]).memory(mems[(i / 3) % 2]).build()).collect();
    let input = input(&catalog, pods);
    let plan = solve(&input);
    assert!(plan.unschedulable.is_empty());
    feasible(&input.pods, &plan).expect("a feasible plan");
    let cost = plan.cost_per_hour();
    let conf = configuration_bound(&Model::of(&input).merged(), Budget::default()).expect("configuration LP");
    assert!(at_most(conf.bound, cost), "{conf:?} above the plan's {cost}");
    assert!(cost <= 1.03 * conf.bound, "plan ${cost:.4}/h, {conf:?}");
}

#[test]
fn a_small_batch_is_packed_at_the_configuration_lps_proven_optimum() {
    // Twenty pods of the generic mix on the built-in catalog: the re-packs and the integer
    // program over column generation's own columns both stop at $0.4032/h; the columns within
    // the gap hold a packing at the LP's optimum, $0.3696/h, which is therefore the optimum.
    let catalog = super::builtin::catalog();
    let input = input(&catalog, super::mix::pods(super::mix::Mix::Generic, 20, 1));
    let plan = solve(&input);
    assert!(plan.unschedulable.is_empty());
    feasible(&input.pods, &plan).expect("a feasible plan");
    let cost = plan.cost_per_hour();
    let conf = configuration_bound(&Model::of(&input).merged(), Budget::default()).expect("configuration LP");
    assert!(conf.proven, "{conf:?}");
    assert!(at_most(conf.bound, cost), "{conf:?} above the plan's {cost}");
    assert!(cost <= conf.bound * (1.0 + 1e-6), "plan ${cost:.4}/h, {conf:?}");
}

#[test]
fn the_exact_program_proves_the_bound_on_a_node_of_thirty_shapes() {
    // The Karpenter mix's thirty request shapes on a 4-vCPU, 16-GiB type, with pricing held
    // to branch and bound on a small budget otherwise: the exact program settles each round's
    // node, so column generation proves the LP optimum, and never below the weaker run's bound.
    let mib = 1i64 << 20;
    let groups: Vec<Demand> = CPU_MILLI
        .iter()
        .flat_map(|&c| {
            MEMORY_MIB.iter().map(move |&m| Demand { pods: 300, requests: vec![c, m * mib, 1], per_node: u32::MAX })
        })
        .collect();
    let n = groups.len();
    let m = Model {
        dims: vec!["cpu".to_string(), "memory".to_string(), "pods".to_string()],
        groups,
        kinds: vec![Kind {
            name: "t4g.xlarge".to_string(),
            alloc: vec![3920, 14_849_933_312, 58],
            price: 0.1344,
            holds: vec![true; n],
            zone: 0,
        }],
        shared: Vec::new(),
        zoned: Vec::new(),
        min_nodes: 0.0,
        left_out: 0,
    };
    let weak =
        Budget { rounds: 60, nodes: 100, integer: 0, programs: 0, exact: 0, room: false, choices: false, work: None };
    let without = configuration_bound(&m, weak).expect("configuration LP");
    let with = configuration_bound(&m, Budget { exact: EXACT, ..weak }).expect("configuration LP");
    assert!(with.proven, "{with:?}");
    assert!(
        !without.proven,
        "branch and bound alone proves it: the case no longer needs the exact program {without:?}"
    );
    assert!(at_most(without.bound, with.bound) && at_most(with.bound, with.master), "{without:?} {with:?}");
}
