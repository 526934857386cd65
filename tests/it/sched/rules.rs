//! One test per scheduling rule, each asserting placements or the unschedulable reason, for
//! both the cost-optimal strategy and the Karpenter-style baseline.

use capstan::policy::meta::TaintEffect;
use capstan::scheduling::allocatable::KubeletSettings;
use capstan::scheduling::catalog::{CAPACITY_TYPE, HOSTNAME, ZONE};
use capstan::scheduling::plan::MAX_OPTIONS;
use capstan::scheduling::pod::{Selector, WhenUnsatisfiable, pod};
use capstan::scheduling::requirements::ValueSet;
use capstan::scheduling::resources::{GIB, Resources};

use super::*;

#[test]
fn a_pending_pod_gets_a_new_claim_of_the_cheapest_fitting_type() {
    let c = catalog();
    let case = Case::new(&c, vec![pod().name("p").cpu("1").memory("1Gi").build()]);
    for (s, plan) in case.solve() {
        let claim = claim_of(&plan, "p").unwrap_or_else(|| panic!("{s:?}: {plan:?}"));
        assert_eq!(claim.options[0].instance_type, claim.instance_type, "{s:?}: chosen first");
        assert!(claim.options.windows(2).skip(1).all(|w| w[0].price <= w[1].price), "{s:?}: cheapest first");
        assert!(claim.options.len() <= MAX_OPTIONS);
        assert!(claim.requests.fits(&claim.allocatable));
        assert!(claim.price <= 0.0336 + 1e-9, "{s:?}: {} at {}", claim.instance_type, claim.price);
    }
}

#[test]
fn node_pool_requirements_in_not_in_exists_gt_lt() {
    let c = catalog();
    let mut p = pool("default");
    p.requirements.add("karpenter.k8s.aws/instance-category", ValueSet::of(false, ["c", "m"]));
    p.requirements.add("karpenter.k8s.aws/instance-family", ValueSet::of(true, ["m5", "c5"]));
    p.requirements.add("karpenter.k8s.aws/instance-cpu-manufacturer", ValueSet::any());
    p.requirements.add("karpenter.k8s.aws/instance-gpu-count", ValueSet::none());
    let generation = ValueSet::from_operator(capstan::policy::nodepool::Operator::Gt, &["5".into()]).unwrap();
    p.requirements.add("karpenter.k8s.aws/instance-generation", generation);
    let cpu = ValueSet::from_operator(capstan::policy::nodepool::Operator::Lt, &["9".into()]).unwrap();
    p.requirements.add("karpenter.k8s.aws/instance-cpu", cpu);
    let mut case = Case::new(&c, many(30, "p", || pod().cpu("900m").memory("1Gi")));
    case.pools = vec![p];
    for (s, plan) in case.solve() {
        assert_eq!(plan.unschedulable, vec![], "{s:?}");
        for claim in &plan.claims {
            for o in claim.options.iter() {
                let t = c.get(&o.instance_type).unwrap();
                assert!(["c", "m"].contains(&t.category()), "{s:?}: {}", t.name);
                assert!(!["m5", "c5"].contains(&t.family()), "{s:?}: {}", t.name);
                assert!(t.generation().unwrap().parse::<u32>().unwrap() > 5, "{s:?}: {}", t.name);
                assert!(t.vcpu < 9 && t.gpus == 0, "{s:?}: {}", t.name);
            }
        }
    }
}

#[test]
fn min_values_keeps_that_many_distinct_values_in_the_options() {
    let c = catalog();
    let mut p = pool("default");
    let mut fam = ValueSet::of(false, ["m6i", "m6a", "m7i", "c6i"]);
    fam.min_values = Some(3);
    p.requirements.add("karpenter.k8s.aws/instance-family", fam);
    let mut case = Case::new(&c, vec![pod().name("p").cpu("1").build()]);
    case.pools = vec![p.clone()];
    for (s, plan) in case.solve() {
        let claim = claim_of(&plan, "p").unwrap_or_else(|| panic!("{s:?}: {plan:?}"));
        let mut families: Vec<&str> =
            claim.options.iter().map(|o| o.instance_type.split('.').next().unwrap()).collect();
        families.sort();
        families.dedup();
        assert!(families.len() >= 3, "{s:?}: {families:?}");
    }
    let mut strict = ValueSet::of(false, ["m6i", "m6a"]);
    strict.min_values = Some(3);
    p.requirements = p.requirements.intersect(&req("karpenter.k8s.aws/instance-family", strict));
    case.pools = vec![p];
    for (s, plan) in case.solve() {
        let why = reason_of(&plan, "p").unwrap_or_else(|| panic!("{s:?}: {plan:?}"));
        assert!(why.contains("minValues"), "{s:?}: {why}");
    }
}

#[test]
fn node_selector_on_zone_and_arch() {
    let c = catalog();
    let case = Case::new(
        &c,
        vec![pod().name("z").cpu("1").zone("us-east-1b").build(), pod().name("a").cpu("1").arch("arm64").build()],
    );
    for (s, plan) in case.solve() {
        assert_eq!(claim_of(&plan, "z").unwrap().zone, "us-east-1b", "{s:?}");
        let arm = claim_of(&plan, "a").unwrap();
        assert!(arm.options.iter().all(|o| c.get(&o.instance_type).unwrap().arch == "arm64"), "{s:?}");
    }
}

#[test]
fn required_node_affinity_any_term_holds() {
    let c = catalog();
    let p = pod()
        .name("p")
        .cpu("1")
        .affinity_term(in_(ZONE, &["us-east-1c"]))
        .affinity_term(in_(ZONE, &["nowhere"]))
        .build();
    let case = Case::new(&c, vec![p]);
    for (s, plan) in case.solve() {
        assert_eq!(claim_of(&plan, "p").unwrap().zone, "us-east-1c", "{s:?}");
    }
}

#[test]
fn preferred_affinity_is_honoured_then_relaxed() {
    let c = catalog();
    let honoured = pod().name("h").cpu("1").preferred(10, in_("kubernetes.io/arch", &["arm64"])).build();
    let relaxed = pod()
        .name("r")
        .cpu("1")
        .preferred(50, in_(ZONE, &["us-west-2a"]))
        .preferred(10, in_(ZONE, &["us-east-1c"]))
        .build();
    let case = Case::new(&c, vec![honoured, relaxed]);
    for (s, plan) in case.solve() {
        let h = claim_of(&plan, "h").unwrap();
        assert_eq!(c.get(&h.instance_type).unwrap().arch, "arm64", "{s:?}");
        let r = claim_of(&plan, "r").unwrap_or_else(|| panic!("{s:?}: the impossible preference is dropped: {plan:?}"));
        assert_eq!(r.zone, "us-east-1c", "{s:?}: relaxed one term at a time, the lower-weight one still holds");
    }
}

#[test]
fn taints_need_tolerations_and_startup_taints_do_not() {
    let c = catalog();
    let mut gpu = pool("gpu");
    gpu.taints.push(taint("dedicated", "gpu", TaintEffect::NoSchedule));
    gpu.startup_taints.push(taint("node.cilium.io/agent-not-ready", "", TaintEffect::NoExecute));
    let mut case = Case::new(
        &c,
        vec![
            pod().name("plain").cpu("1").build(),
            pod().name("tol").cpu("1").tolerate("dedicated", "gpu", Some(TaintEffect::NoSchedule)).build(),
        ],
    );
    case.pools = vec![gpu];
    for (s, plan) in case.solve() {
        let why = reason_of(&plan, "plain").unwrap_or_else(|| panic!("{s:?}"));
        assert!(why.contains("taint dedicated=gpu:NoSchedule is not tolerated"), "{s:?}: {why}");
        assert!(why.contains("NodePool gpu"), "{s:?}: {why}");
        assert!(claim_of(&plan, "tol").is_some(), "{s:?}: the startup taint is not in the way");
    }
}

#[test]
fn zone_topology_spread_balances_zones() {
    let c = catalog();
    let sel = Selector::labels(&[("app", "web")]);
    let pods = many(9, "w", || {
        pod().cpu("500m").label("app", "web").spread(ZONE, 1, WhenUnsatisfiable::DoNotSchedule, sel.clone())
    });
    let case = Case::new(&c, pods);
    for (s, plan) in case.solve() {
        let mut per = std::collections::BTreeMap::new();
        for i in 0..9 {
            *per.entry(claim_of(&plan, &format!("w-{i}")).unwrap().zone.clone()).or_insert(0) += 1;
        }
        assert_eq!(per.values().copied().collect::<Vec<_>>(), [3, 3, 3], "{s:?}: {per:?}");
    }
}

#[test]
fn zone_spread_counts_existing_pods() {
    let c = catalog();
    let sel = Selector::labels(&[("app", "web")]);
    let mut n = node("old", "m5.xlarge", "us-east-1a", &c);
    let running = pod().name("running").cpu("100m").label("app", "web").build();
    for _ in 0..2 {
        bind(&mut n, &running);
    }
    n.unschedulable = true;
    let mut case = Case::new(
        &c,
        many(2, "w", || {
            pod().cpu("500m").label("app", "web").spread(ZONE, 1, WhenUnsatisfiable::DoNotSchedule, sel.clone())
        }),
    );
    case.nodes = vec![n];
    for (s, plan) in case.solve() {
        for i in 0..2 {
            assert_ne!(claim_of(&plan, &format!("w-{i}")).unwrap().zone, "us-east-1a", "{s:?}: zone a already has two");
        }
    }
}

#[test]
fn hostname_topology_spread_puts_max_skew_per_node() {
    let c = catalog();
    let sel = Selector::labels(&[("app", "api")]);
    let case = Case::new(
        &c,
        many(4, "a", || {
            pod().cpu("100m").label("app", "api").spread(HOSTNAME, 1, WhenUnsatisfiable::DoNotSchedule, sel.clone())
        }),
    );
    for (s, plan) in case.solve() {
        let mut places: Vec<String> = (0..4).map(|i| place_of(&plan, &format!("a-{i}")).unwrap()).collect();
        places.sort();
        places.dedup();
        assert_eq!(places.len(), 4, "{s:?}");
    }
}

#[test]
fn schedule_anyway_spread_does_not_force_nodes() {
    let c = catalog();
    let sel = Selector::labels(&[("app", "api")]);
    let case = Case::new(
        &c,
        many(4, "a", || {
            pod().cpu("100m").label("app", "api").spread(HOSTNAME, 1, WhenUnsatisfiable::ScheduleAnyway, sel.clone())
        }),
    );
    for (s, plan) in case.solve() {
        assert_eq!(plan.claims.len(), 1, "{s:?}");
    }
}

#[test]
fn capacity_type_topology_spread() {
    let c = catalog();
    let mut p = pool("default");
    p.requirements = req(CAPACITY_TYPE, ValueSet::of(false, ["on-demand", "spot"]));
    let sel = Selector::labels(&[("app", "q")]);
    let mut case = Case::new(
        &c,
        many(4, "q", || {
            pod().cpu("500m").label("app", "q").spread(CAPACITY_TYPE, 1, WhenUnsatisfiable::DoNotSchedule, sel.clone())
        }),
    );
    case.pools = vec![p];
    for (s, plan) in case.solve() {
        let spot =
            (0..4).filter(|i| claim_of(&plan, &format!("q-{i}")).unwrap().capacity_type.label() == "spot").count();
        assert_eq!(spot, 2, "{s:?}");
    }
}

#[test]
fn zonal_pod_affinity_keeps_pods_in_one_zone() {
    let c = catalog();
    let sel = Selector::labels(&[("db", "x")]);
    let case = Case::new(&c, many(12, "d", || pod().cpu("1").label("db", "x").affinity(ZONE, sel.clone())));
    for (s, plan) in case.solve() {
        let mut zones: Vec<String> =
            (0..12).map(|i| claim_of(&plan, &format!("d-{i}")).unwrap().zone.clone()).collect();
        zones.dedup();
        assert_eq!(zones.len(), 1, "{s:?}");
    }
}

#[test]
fn zonal_pod_affinity_picks_the_zone_where_its_pods_cost_least() {
    let mut c = catalog();
    for t in &mut c.types {
        for o in &mut t.offerings {
            if o.zone != "us-east-1c" {
                o.price *= 1.25;
            }
        }
    }
    let sel = Selector::labels(&[("db", "y")]);
    let case = Case::new(&c, many(12, "d", || pod().cpu("1").label("db", "y").affinity(ZONE, sel.clone())));
    for (s, plan) in case.solve() {
        for i in 0..12 {
            assert_eq!(claim_of(&plan, &format!("d-{i}")).unwrap().zone, "us-east-1c", "{s:?}");
        }
    }
}

#[test]
fn zonal_pod_affinity_follows_an_existing_pod() {
    let c = catalog();
    let mut n = node("cache", "m5.large", "us-east-1c", &c);
    bind(&mut n, &pod().name("cache").label("role", "cache").cpu("1").build());
    n.unschedulable = true;
    let mut case =
        Case::new(&c, vec![pod().name("near").cpu("1").affinity(ZONE, Selector::labels(&[("role", "cache")])).build()]);
    case.nodes = vec![n];
    for (s, plan) in case.solve() {
        assert_eq!(claim_of(&plan, "near").unwrap().zone, "us-east-1c", "{s:?}");
    }
}

#[test]
fn hostname_anti_affinity_spreads_pods_over_nodes() {
    let c = catalog();
    let sel = Selector::labels(&[("app", "nginx")]);
    let mut pods = many(5, "n", || pod().cpu("100m").label("app", "nginx").anti_affinity(HOSTNAME, sel.clone()));
    pods.push(pod().name("other").cpu("100m").build());
    let case = Case::new(&c, pods);
    for (s, plan) in case.solve() {
        let mut places: Vec<String> = (0..5).map(|i| place_of(&plan, &format!("n-{i}")).unwrap()).collect();
        places.sort();
        places.dedup();
        assert_eq!(places.len(), 5, "{s:?}");
        assert_eq!(plan.claims.len(), 5, "{s:?}: the other pod shares a node");
    }
}

#[test]
fn hostname_anti_affinity_avoids_nodes_with_matching_pods() {
    let c = catalog();
    let mut n = node("busy", "m5.4xlarge", "us-east-1a", &c);
    bind(&mut n, &pod().label("app", "nginx").cpu("100m").build());
    let mut case = Case::new(
        &c,
        vec![
            pod()
                .name("n")
                .cpu("100m")
                .label("app", "nginx")
                .anti_affinity(HOSTNAME, Selector::labels(&[("app", "nginx")]))
                .build(),
        ],
    );
    case.nodes = vec![n];
    for (s, plan) in case.solve() {
        assert!(claim_of(&plan, "n").is_some(), "{s:?}: not on the busy node");
    }
}

#[test]
fn zonal_anti_affinity_one_per_zone_and_a_reason_beyond() {
    let c = catalog();
    let sel = Selector::labels(&[("app", "zk")]);
    let case = Case::new(&c, many(4, "z", || pod().cpu("500m").label("app", "zk").anti_affinity(ZONE, sel.clone())));
    for (s, plan) in case.solve() {
        let mut zones: Vec<String> =
            (0..4).filter_map(|i| claim_of(&plan, &format!("z-{i}")).map(|c| c.zone.clone())).collect();
        zones.sort();
        assert_eq!(zones, ["us-east-1a", "us-east-1b", "us-east-1c"], "{s:?}");
        assert_eq!(plan.unschedulable.len(), 1, "{s:?}");
        assert!(plan.unschedulable[0].reason.contains("anti-affinity on zone"), "{s:?}");
    }
}

#[test]
fn hostname_pod_affinity_colocates() {
    let c = catalog();
    let sel = Selector::labels(&[("app", "pair")]);
    let case = Case::new(&c, many(3, "p", || pod().cpu("1").label("app", "pair").affinity(HOSTNAME, sel.clone())));
    for (s, plan) in case.solve() {
        let mut places: Vec<String> =
            (0..3).map(|i| place_of(&plan, &format!("p-{i}")).unwrap_or_else(|| panic!("{s:?}: {plan:?}"))).collect();
        places.dedup();
        assert_eq!(places.len(), 1, "{s:?}");
    }
}

#[test]
fn host_ports_never_share_a_node() {
    let c = catalog();
    let case = Case::new(
        &c,
        vec![
            pod().name("a").cpu("100m").host_port(8080).build(),
            pod().name("b").cpu("100m").host_port(8080).build(),
            pod().name("c").cpu("100m").host_port(9090).build(),
        ],
    );
    for (s, plan) in case.solve() {
        assert_ne!(place_of(&plan, "a"), place_of(&plan, "b"), "{s:?}");
        assert_eq!(plan.claims.len(), 2, "{s:?}");
    }
}

#[test]
fn daemonset_overhead_counts_on_every_new_node() {
    let c = catalog();
    let ds = pod().name("ds").cpu("500m").memory("512Mi").tolerate("", "", None).build();
    // 1.5 cpu fits a 2-vCPU type's 1.93 allocatable only without the DaemonSet.
    let mut case = Case::new(&c, vec![pod().name("p").cpu("1500m").build()]);
    case.daemonsets = vec![ds];
    for (s, plan) in case.solve() {
        let claim = claim_of(&plan, "p").unwrap();
        assert!(c.get(&claim.instance_type).unwrap().vcpu >= 4, "{s:?}: {}", claim.instance_type);
        assert_eq!(claim.requests.cpu, 2000, "{s:?}: pod and DaemonSet requests");
    }
}

#[test]
fn daemonsets_that_do_not_tolerate_a_pool_taint_add_nothing() {
    let c = catalog();
    let mut p = pool("default");
    p.taints.push(taint("dedicated", "x", TaintEffect::NoSchedule));
    let ds = pod().name("ds").cpu("500m").build();
    let mut case = Case::new(&c, vec![pod().name("p").cpu("1500m").tolerate("dedicated", "x", None).build()]);
    case.daemonsets = vec![ds];
    case.pools = vec![p];
    for (s, plan) in case.solve() {
        assert_eq!(claim_of(&plan, "p").unwrap().requests.cpu, 1500, "{s:?}");
    }
}

#[test]
fn kubelet_max_pods_from_the_node_class_limits_pods_per_node() {
    let c = catalog();
    let mut p = pool("default");
    p.kubelet = KubeletSettings { max_pods: Some(3), ..Default::default() };
    let mut case = Case::new(&c, many(9, "t", || pod().cpu("10m")));
    case.pools = vec![p];
    for (s, plan) in case.solve() {
        assert_eq!(plan.claims.len(), 3, "{s:?}");
        assert!(plan.claims.iter().all(|cl| cl.allocatable.pods == 3), "{s:?}");
    }
}

#[test]
fn eni_max_pods_bound_tiny_pods() {
    let c = catalog();
    let mut p = pool("default");
    p.requirements.add("node.kubernetes.io/instance-type", ValueSet::one("m5.large"));
    let mut case = Case::new(&c, many(60, "t", || pod().cpu("1m").memory("1Mi")));
    case.pools = vec![p];
    for (s, plan) in case.solve() {
        // m5.large: 3 ENIs × (10 − 1) + 2 = 29 pods.
        assert_eq!(plan.claims.len(), 3, "{s:?}");
        assert!(plan.claims.iter().all(|cl| cl.pods.len() <= 29), "{s:?}");
    }
}

#[test]
fn higher_weight_pool_wins_even_when_pricier() {
    let c = catalog();
    let mut cheap = pool("cheap");
    cheap.requirements.add("karpenter.k8s.aws/instance-family", ValueSet::one("t4g"));
    let mut preferred = pool("preferred");
    preferred.weight = 50;
    preferred.requirements.add("karpenter.k8s.aws/instance-family", ValueSet::one("m7i"));
    let mut case = Case::new(&c, vec![pod().name("p").cpu("1").build()]);
    case.pools = vec![cheap, preferred];
    for (s, plan) in case.solve() {
        let claim = claim_of(&plan, "p").unwrap();
        assert_eq!(claim.node_pool, "preferred", "{s:?}");
        assert!(claim.instance_type.starts_with("m7i."), "{s:?}");
    }
}

#[test]
fn node_pool_limits_stop_scale_up_with_a_reason() {
    let c = catalog();
    let mut p = pool("default");
    p.limits.cpu = Some(8000);
    let mut case = Case::new(&c, many(20, "b", || pod().cpu("1500m")));
    case.pools = vec![p];
    for (s, plan) in case.solve() {
        let cpu: i64 = plan.claims.iter().map(|cl| c.get(&cl.instance_type).unwrap().vcpu as i64 * 1000).sum();
        assert!(cpu <= 8000, "{s:?}: {cpu}");
        assert!(!plan.unschedulable.is_empty(), "{s:?}");
        assert!(
            plan.unschedulable.iter().all(|u| u.reason.contains("NodePool default limit on cpu reached")),
            "{s:?}: {:?}",
            plan.unschedulable[0]
        );
    }
}

#[test]
fn cluster_limits_and_in_flight_capacity_count() {
    let c = catalog();
    let mut in_flight = node("claim-1", "m5.2xlarge", "us-east-1a", &c);
    in_flight.in_flight = true;
    in_flight.requested = in_flight.allocatable.clone();
    let mut case = Case::new(&c, many(4, "b", || pod().cpu("1")));
    case.nodes = vec![in_flight];
    case.limits.cpu = Some(10_000);
    for (s, plan) in case.solve() {
        let cpu: i64 = plan.claims.iter().map(|cl| c.get(&cl.instance_type).unwrap().vcpu as i64 * 1000).sum();
        assert!(cpu <= 2000, "{s:?}: 8 in flight + new must stay within 10: {cpu}");
        assert!(
            plan.unschedulable.iter().any(|u| u.reason.contains("cluster limit on cpu")),
            "{s:?}: {:?}",
            plan.unschedulable
        );
    }
}

#[test]
fn existing_nodes_first_then_in_flight_then_new() {
    let c = catalog();
    let registered = node("registered", "m5.large", "us-east-1a", &c);
    let mut launching = node("launching", "m5.large", "us-east-1b", &c);
    launching.in_flight = true;
    let mut case = Case::new(&c, many(3, "p", || pod().cpu("800m")));
    case.nodes = vec![launching, registered];
    for (s, plan) in case.solve() {
        let places: Vec<String> = (0..3).map(|i| place_of(&plan, &format!("p-{i}")).unwrap()).collect();
        assert_eq!(places.iter().filter(|p| *p == "registered").count(), 2, "{s:?}: {places:?}");
        assert_eq!(places.iter().filter(|p| *p == "launching").count(), 1, "{s:?}: {places:?}");
        assert!(plan.claims.is_empty(), "{s:?}");
    }
}

#[test]
fn cordoned_and_tainted_nodes_are_skipped() {
    let c = catalog();
    let mut cordoned = node("cordoned", "m5.xlarge", "us-east-1a", &c);
    cordoned.unschedulable = true;
    let mut tainted = node("tainted", "m5.xlarge", "us-east-1a", &c);
    tainted.taints.push(taint("maintenance", "", TaintEffect::NoExecute));
    let mut case = Case::new(&c, vec![pod().name("p").cpu("1").build()]);
    case.nodes = vec![cordoned, tainted];
    for (s, plan) in case.solve() {
        assert!(claim_of(&plan, "p").is_some(), "{s:?}");
    }
}

#[test]
fn existing_node_labels_must_meet_the_pod() {
    let c = catalog();
    let n = node("a-node", "m5.xlarge", "us-east-1a", &c);
    let mut case = Case::new(&c, vec![pod().name("p").cpu("1").zone("us-east-1b").build()]);
    case.nodes = vec![n];
    for (s, plan) in case.solve() {
        assert_eq!(claim_of(&plan, "p").unwrap().zone, "us-east-1b", "{s:?}");
    }
}

#[test]
fn gpu_requests_choose_gpu_types() {
    let c = catalog();
    let case = Case::new(&c, vec![pod().name("g").cpu("2").memory("8Gi").gpu(1).build()]);
    for (s, plan) in case.solve() {
        let claim = claim_of(&plan, "g").unwrap();
        assert!(c.get(&claim.instance_type).unwrap().gpus >= 1, "{s:?}");
        assert_eq!(claim.instance_type, "g4dn.xlarge", "{s:?}: the cheapest GPU type");
    }
}

#[test]
fn ephemeral_storage_respects_the_root_volume() {
    let c = catalog();
    let mut p = pool("default");
    p.kubelet = KubeletSettings { root_volume: Some(40 * GIB), ..Default::default() };
    let big = pod().name("big").cpu("100m").resource("ephemeral-storage", 50 * GIB).build();
    let ok = pod().name("ok").cpu("100m").resource("ephemeral-storage", 20 * GIB).build();
    let mut case = Case::new(&c, vec![big, ok]);
    case.pools = vec![p];
    for (s, plan) in case.solve() {
        assert!(claim_of(&plan, "ok").is_some(), "{s:?}");
        let why = reason_of(&plan, "big").unwrap_or_else(|| panic!("{s:?}"));
        assert!(why.contains("ephemeral-storage"), "{s:?}: {why}");
    }
}

#[test]
fn claim_requirements_are_the_pool_narrowed_by_the_pods() {
    let c = catalog();
    let case = Case::new(&c, vec![pod().name("p").cpu("1").zone("us-east-1a").arch("arm64").build()]);
    for (s, plan) in case.solve() {
        let r = &claim_of(&plan, "p").unwrap().requirements;
        assert!(r.get(ZONE).unwrap().has("us-east-1a") && !r.get(ZONE).unwrap().has("us-east-1b"), "{s:?}: {r}");
        assert!(r.get("kubernetes.io/arch").unwrap().has("arm64"), "{s:?}: {r}");
        assert!(
            r.get(CAPACITY_TYPE).unwrap().has("on-demand") && !r.get(CAPACITY_TYPE).unwrap().has("spot"),
            "{s:?}: {r}"
        );
    }
}

#[test]
fn pods_on_one_claim_fit_its_allocatable() {
    let c = catalog();
    let case = Case::new(&c, many(40, "p", || pod().cpu("250m").memory("256Mi")));
    for (s, plan) in case.solve() {
        for claim in &plan.claims {
            let pods = claim.pods.len() as i64;
            let need = Resources { cpu: 250 * pods, memory: 256 * (1 << 20) * pods, pods, ..Resources::default() };
            assert!(need.fits(&claim.allocatable), "{s:?}");
        }
    }
}

#[test]
fn node_pools_come_from_the_effective_policy() {
    let snapshot = capstan::policy::Snapshot::from_dir(&crate::common::root().join("examples/fleet")).unwrap();
    let v = capstan::policy::validate(&snapshot, Some("dev")).unwrap();
    let pools = capstan::scheduling::pool::pools(&v.policies[0]);
    let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["spot", "arm64", "default", "karpenter-nodes"], "highest weight first, then by name");
    let spot = &pools[0];
    assert_eq!(spot.weight, 50);
    assert!(spot.requirements.get(CAPACITY_TYPE).unwrap().has("spot"));
    assert_eq!(spot.taints[0].key, "example.com/spot");
    let default = pools.iter().find(|p| p.name == "default").unwrap();
    assert!(
        default.requirements.get("example.com/pool").unwrap().has("general"),
        "template labels become requirements"
    );
    assert_eq!(default.limits.cpu, Some(200_000));
    assert_eq!(default.kubelet.root_volume, Some(100 * GIB), "from the EC2NodeClass root volume");
    let kops = pools.iter().find(|p| p.name == "karpenter-nodes").unwrap();
    assert_eq!(kops.kubelet.max_pods, Some(58));
    assert_eq!(kops.limits.nodes, Some(10));
    // The whole chain: a pod that tolerates the kOps IG's taint and selects its label lands there.
    let c = catalog();
    let p = pod()
        .name("batch")
        .cpu("1")
        .node_selector("example.com/pool", "kops-karpenter")
        .tolerate("example.com/dedicated", "batch", None)
        .build();
    let mut case = Case::new(&c, vec![p]);
    case.pools = pools;
    for (s, plan) in case.solve() {
        let claim = claim_of(&plan, "batch").unwrap_or_else(|| panic!("{s:?}: {plan:?}"));
        assert_eq!(claim.node_pool, "karpenter-nodes", "{s:?}");
        assert!(
            ["m5.large", "m5.xlarge", "m6a.large", "m6a.xlarge", "m6i.large", "m6i.xlarge"]
                .contains(&claim.instance_type.as_str()),
            "{s:?}"
        );
    }
}
