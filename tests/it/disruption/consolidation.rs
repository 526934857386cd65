//! Consolidation: underutilized nodes deleted when their pods fit elsewhere, or replaced with
//! cheaper capacity; several at once when they can; ClusterPolicy's utilization threshold and
//! minimum node lifetime.

use capstan::scheduling::pod::pod;
use capstan::scheduling::requirements::ValueSet;

use super::*;

/// `a`, an m6i.xlarge with one pod of `cpu`, and `big`, a kOps node with room for it.
fn one_candidate_and_room(cpu: &str) -> Case {
    let mut case = Case::new();
    case.node(node("a")).node(node("big").unmanaged().of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu(cpu));
    case
}

#[test]
fn an_underutilized_node_is_deleted_when_its_pods_fit_elsewhere() {
    let plan = one_candidate_and_room("1").plan();
    let c = only(&plan);
    assert_eq!(c.reason, Reason::Underutilized);
    assert_eq!(targets(c), ["a"]);
    assert!(c.replacements.is_empty(), "{c:#?}");
    assert_eq!(c.targets[0].pods, 1);
    assert!((c.savings - 0.192).abs() < 1e-9);
}

#[test]
fn consolidate_after_also_holds_underutilized_nodes() {
    let mut case = one_candidate_and_room("1");
    case.snapshot.nodes[0].pods_changed_at = NOW - secs(29);
    assert!(case.plan().commands.is_empty());
    case.snapshot.nodes[0].pods_changed_at = NOW - secs(30);
    assert_eq!(targets(only(&case.plan())), ["a"]);
}

#[test]
fn a_node_is_kept_when_its_pods_fit_nowhere_and_nothing_cheaper_holds_them() {
    // m6i.large is the cheapest m6i; the pod needs most of it.
    let mut case = Case::new();
    case.spec().requirements.add("karpenter.k8s.aws/instance-family", ValueSet::of(false, ["m6i"]));
    case.node(node("a").of_type("m6i.large"));
    case.pod("a", pod().cpu("1500m"));
    let plan = case.plan();
    assert!(plan.commands.is_empty(), "{plan:#?}");
}

#[test]
fn an_underutilized_node_is_replaced_with_a_cheaper_node() {
    let mut case = Case::new();
    case.node(node("a").of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu("1").memory("1Gi"));
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(c.reason, Reason::Underutilized);
    assert_eq!(targets(c), ["a"]);
    assert_eq!(c.replacements.len(), 1, "{c:#?}");
    let r = &c.replacements[0].plan;
    assert!(r.price < 0.768, "{} at {}", r.instance_type, r.price);
    assert!((c.savings - (0.768 - r.price)).abs() < 1e-9);
    assert_eq!(c.replacements[0].claim.node_pool, "default");
    assert_eq!(c.replacements[0].claim.tags.get(POOL_HASH_TAG).map(String::as_str), Some(HASH));
}

#[test]
fn several_underutilized_nodes_are_consolidated_into_one() {
    // m6i only: one m6i.xlarge holds the three pods; three m6i.large would cost more.
    let mut case = Case::new();
    case.spec().requirements.add("karpenter.k8s.aws/instance-family", ValueSet::of(false, ["m6i"]));
    case.node(node("a")).node(node("b")).node(node("c"));
    for n in ["a", "b", "c"] {
        case.pod(n, pod().cpu("1"));
    }
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(c.reason, Reason::Underutilized);
    assert_eq!(targets(c), ["a", "b", "c"]);
    assert_eq!(c.replacements.len(), 1, "{c:#?}");
    assert_eq!(c.replacements[0].plan.instance_type, "m6i.xlarge");
    assert!((c.savings - 2.0 * 0.192).abs() < 1e-9, "{}", c.savings);
    assert!(c.detail.contains("3 underutilized nodes"), "{}", c.detail);
}

#[test]
fn several_underutilized_nodes_are_replaced_with_several_cheaper_ones() {
    // m6i only: each 7-cpu pod alone on an m6i.8xlarge ($1.536/h); an m6i.2xlarge ($0.384/h)
    // holds one, so $1.152/h of new nodes replace the three (one node holding all costs more).
    let mut case = Case::new();
    case.spec().requirements.add("karpenter.k8s.aws/instance-family", ValueSet::of(false, ["m6i"]));
    for n in ["a", "b", "c"] {
        case.node(node(n).of_type("m6i.8xlarge"));
        case.pod(n, pod().cpu("7"));
    }
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(c.reason, Reason::Underutilized);
    assert_eq!(targets(c), ["a", "b", "c"]);
    assert!(c.replacements.len() > 1, "{c:#?}");
    let launched: f64 = c.replacements.iter().map(|r| r.plan.price).sum();
    assert!((launched - 3.0 * 0.384).abs() < 1e-9, "{c:#?}");
    assert!((c.savings - 3.0 * (1.536 - 0.384)).abs() < 1e-9, "{}", c.savings);
    assert!(c.detail.contains("new nodes that cost less together"), "{}", c.detail);
}

#[test]
fn several_replacements_must_save_a_tenth() {
    // m6a.xlarge is exactly 10 % cheaper than m6i.xlarge, and the two pods keep apart: replacing
    // both nodes with two m6a.xlarge is churn, so only the single-node move (one for one, any
    // saving) is taken.
    let mut case = Case::new();
    case.spec().requirements.add("karpenter.k8s.aws/instance-family", ValueSet::of(false, ["m6i", "m6a"]));
    let apart = Selector::labels(&[("app", "apart")]);
    for n in ["a", "b"] {
        case.node(node(n).of_type("m6i.xlarge"));
        case.pod(n, pod().cpu("3").label("app", "apart").anti_affinity(HOSTNAME, apart.clone()));
    }
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(c.targets.len(), 1, "{c:#?}");
    assert_eq!(c.replacements.len(), 1, "{c:#?}");
    assert_eq!(c.replacements[0].plan.instance_type, "m6a.xlarge");
}

#[test]
fn several_underutilized_nodes_are_deleted_when_the_rest_holds_their_pods() {
    let mut case = Case::new();
    case.node(node("a")).node(node("b")).node(node("big").unmanaged().of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu("1"));
    case.pod("b", pod().cpu("1"));
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(targets(c), ["a", "b"]);
    assert!(c.replacements.is_empty(), "{c:#?}");
}

#[test]
fn balanced_replaces_only_for_a_fifth_of_the_price() {
    // m6i.xlarge → m6a.xlarge saves 10%; m6i.2xlarge → m6a.xlarge saves 55%.
    let cluster = |policy, node_type: &str| {
        let mut case = Case::new();
        case.pool().consolidation = policy;
        case.spec().requirements.add("karpenter.k8s.aws/instance-family", ValueSet::of(false, ["m6i", "m6a"]));
        case.node(node("a").of_type(node_type));
        case.pod("a", pod().cpu("3"));
        case.plan()
    };
    let eager = cluster(ConsolidationPolicy::WhenEmptyOrUnderutilized, "m6i.xlarge");
    assert_eq!(only(&eager).replacements[0].plan.instance_type, "m6a.xlarge");
    let balanced = cluster(ConsolidationPolicy::Balanced, "m6i.xlarge");
    assert!(balanced.commands.is_empty(), "10% is not enough: {balanced:#?}");
    let big = cluster(ConsolidationPolicy::Balanced, "m6i.2xlarge");
    assert_eq!(only(&big).replacements[0].plan.instance_type, "m6a.xlarge");
}

#[test]
fn balanced_deletes_without_a_saving_threshold() {
    let mut case = one_candidate_and_room("1");
    case.pool().consolidation = ConsolidationPolicy::Balanced;
    assert_eq!(targets(only(&case.plan())), ["a"]);
}

#[test]
fn utilization_threshold_excludes_busy_nodes() {
    // `busy` at 64% cpu, `idle` at 25%; both fit on `big`.
    let cluster = |threshold| {
        let mut case = Case::new();
        case.cluster().utilization_threshold = threshold;
        case.node(node("busy")).node(node("idle")).node(node("big").unmanaged().of_type("m6i.4xlarge"));
        case.pod("busy", pod().cpu("2500m"));
        case.pod("idle", pod().cpu("1"));
        case.plan()
    };
    assert_eq!(targets(only(&cluster(None))), ["busy", "idle"]);
    assert_eq!(targets(only(&cluster(Some(0.5)))), ["idle"]);
    assert!(cluster(Some(0.2)).commands.is_empty());
}

#[test]
fn utilization_is_the_larger_of_cpu_and_memory() {
    // 25% cpu but ~70% of memory: over a 0.5 threshold.
    let mut case = one_candidate_and_room("1");
    case.snapshot.pods[0] = {
        let mut p = case.snapshot.pods[0].clone();
        p.spec.requests.memory = case.snapshot.nodes[0].allocatable.memory * 7 / 10;
        p
    };
    case.cluster().utilization_threshold = Some(0.5);
    assert!(case.plan().commands.is_empty());
    case.cluster().utilization_threshold = Some(0.8);
    assert_eq!(targets(only(&case.plan())), ["a"]);
}

#[test]
fn min_node_lifetime_holds_young_nodes_with_pods() {
    let cluster = |age| {
        let mut case = Case::new();
        case.cluster().min_node_lifetime = Some(secs(HOUR));
        case.node(node("a").age(age)).node(node("big").unmanaged().of_type("m6i.4xlarge"));
        case.pod("a", pod().cpu("1"));
        case.plan()
    };
    assert!(cluster(secs(10 * 60)).commands.is_empty());
    assert_eq!(targets(only(&cluster(secs(2 * HOUR)))), ["a"]);
}

#[test]
fn min_node_lifetime_does_not_hold_empty_nodes() {
    let mut case = Case::new();
    case.cluster().min_node_lifetime = Some(secs(HOUR));
    case.node(node("a").age(secs(60)).idle(secs(60)));
    let plan = case.plan();
    assert_eq!(only(&plan).reason, Reason::Empty);
}

#[test]
fn the_cheapest_node_to_disrupt_goes_first() {
    // Only one candidate may go (budget 1): the one with fewer pods.
    let mut case = Case::new();
    case.pool().budgets = vec![budget(BudgetNodes::Count(1))];
    case.node(node("few")).node(node("many")).node(node("big").unmanaged().of_type("m6i.4xlarge"));
    case.pod("few", pod().cpu("1"));
    case.pods("many", 3, pod().cpu("100m"));
    assert_eq!(targets(only(&case.plan())), ["few"]);
}

/// relocate() asks the cost-optimal scheduler where the pods would go. Small pods are cheapest
/// spread over several small nodes; when that needs more than one new node, one larger node is
/// tried: here an m6i.4xlarge ($0.768/h) holding three 1-cpu pods gives way to one cheaper node
/// that holds all three.
#[test]
fn pods_the_scheduler_would_spread_over_several_new_nodes_move_to_one_cheaper_node() {
    let mut case = Case::new();
    case.node(node("a").of_type("m6i.4xlarge"));
    case.pods("a", 3, pod().cpu("1"));
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(targets(c), ["a"]);
    assert_eq!(c.replacements.len(), 1, "{c:#?}");
    let r = &c.replacements[0].plan;
    assert!(r.price < 0.768, "{} at {}", r.instance_type, r.price);
    assert_eq!(r.pods.len(), 3, "{r:#?}");
}
