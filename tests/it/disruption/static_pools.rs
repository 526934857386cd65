//! Static NodePools (`spec.replicas`): kept at their count on the simulated world whatever the
//! pods ask, scaled by a policy commit, replaced one for one on drift, capped by `limits.nodes`,
//! never launched for pending pods nor consolidated; and the planner's part with builders.

use capstan::cloud::provider::{Instance, InstanceState};
use capstan::cluster::Snapshot;
use capstan::scheduling::pod::pod;
use capstan::scheduling::pool::NODE_POOL_LABEL;
use capstan::sim::World;

use super::{Case, HOUR, kept, node, secs};
use crate::capacity::{CLASS, Harness, cluster_policy, deployment, policy, pool, rules};

const REV2: &str = "main@sha1:0000000000000000000000000000000000000002";

/// A repository with static pool `fixed` (c6i) of `replicas` nodes capped at `limit`, and a
/// dynamic pool `general` (m6i) when `dynamic`.
fn repo(replicas: u32, limit: u32, ami: &str, dynamic: bool) -> capstan::policy::EffectivePolicy {
    let consolidate = "    consolidationPolicy: WhenEmptyOrUnderutilized\n    consolidateAfter: 30s";
    let extra = format!("  replicas: {replicas}\n  limits: {{nodes: \"{limit}\"}}\n");
    let mut files = vec![
        ("base/nodeclasses/default.yaml", CLASS.replace("al2023@latest", ami)),
        ("base/nodepools/fixed.yaml", pool("fixed", &["c6i"], consolidate, &extra)),
        ("base/policy.yaml", cluster_policy("  dryRun: false")),
    ];
    if dynamic {
        files.push(("base/nodepools/general.yaml", pool("general", &["m6i"], consolidate, "")));
    }
    policy(&files)
}

fn live_in(w: &World, pool: &str) -> Vec<Instance> {
    let alive = |i: &Instance| !matches!(i.state, InstanceState::Terminated | InstanceState::ShuttingDown);
    w.cloud.instances().into_iter().filter(|i| i.node_pool == pool && alive(i)).collect()
}

fn live(h: &Harness, pool: &str) -> Vec<Instance> {
    live_in(&h.world, pool)
}

/// Ready nodes of `pool`, a node being drained included (its pods still run).
fn ready(s: &Snapshot, pool: &str) -> usize {
    s.nodes.iter().filter(|n| n.labels.get(NODE_POOL_LABEL).map(String::as_str) == Some(pool) && n.ready).count()
}

#[tokio::test]
async fn a_static_pool_scales_up_to_replicas_with_no_pods() {
    let mut h = Harness::new(&repo(3, 10, "al2023@latest", false));
    assert!(h.until(600, |w| live_in(w, "fixed").len() == 3).await, "{}", h.timeline());
    let mut most = 0;
    h.watch(900, |s, _| most = most.max(s.nodes.len())).await;
    assert_eq!(most, 3, "{}", h.timeline());
    assert_eq!(live(&h, "fixed").len(), 3);
    assert_eq!(h.count("disruption-decision"), 0, "empty static nodes are not consolidated: {}", h.timeline());
}

#[tokio::test]
async fn lowering_replicas_in_git_removes_the_extra_nodes() {
    let mut h = Harness::new(&repo(3, 10, "al2023@latest", false));
    assert!(h.until(600, |w| live_in(w, "fixed").len() == 3).await, "{}", h.timeline());
    h.watch(300, |_, _| {}).await;
    h.lp.set_rules(rules(&repo(1, 10, "al2023@latest", false), REV2));
    assert!(h.until(900, |w| live_in(w, "fixed").len() == 1).await, "{}", h.timeline());
    h.watch(300, |_, _| {}).await;
    assert_eq!(live(&h, "fixed").len(), 1, "{}", h.timeline());
    let removed = h.of("terminate").iter().filter(|e| e.message.contains("(overprovisioned)")).count();
    assert_eq!(removed, 2, "drained and removed: {}", h.timeline());

    h.lp.set_rules(rules(&repo(4, 10, "al2023@latest", false), "main@sha1:0000000000000000000000000000000000000003"));
    assert!(h.until(900, |w| live_in(w, "fixed").len() == 4).await, "{}", h.timeline());
}

#[tokio::test]
async fn a_drifted_static_node_is_replaced_one_for_one() {
    let mut h = Harness::new(&repo(2, 3, "al2023@v20250101", false));
    assert!(h.until(600, |w| live_in(w, "fixed").len() == 2).await, "{}", h.timeline());
    h.watch(300, |_, _| {}).await;
    let old: Vec<String> = live(&h, "fixed").into_iter().map(|i| i.id).collect();
    h.lp.set_rules(rules(&repo(2, 3, "al2023@v20250301", false), REV2));
    let (mut fewest, mut most) = (usize::MAX, 0);
    h.watch(1800, |s, _| {
        fewest = fewest.min(ready(s, "fixed"));
        most = most.max(s.nodes.len());
    })
    .await;
    let now: Vec<Instance> = live(&h, "fixed");
    assert_eq!(now.len(), 2, "{}", h.timeline());
    assert!(now.iter().all(|i| !old.contains(&i.id)), "every drifted node replaced: {}", h.timeline());
    assert_eq!(fewest, 2, "a replacement serves before the old node is drained: {}", h.timeline());
    assert_eq!(most, 3, "one extra node at a time, within limits.nodes: {}", h.timeline());
}

#[tokio::test]
async fn limits_nodes_caps_a_static_pool() {
    let mut h = Harness::new(&repo(5, 2, "al2023@latest", false));
    h.watch(900, |_, _| {}).await;
    assert_eq!(live(&h, "fixed").len(), 2, "{}", h.timeline());
}

#[tokio::test]
async fn pending_pods_do_not_grow_a_static_pool() {
    // One c6i node of the static pool; twenty one-cpu pods do not fit on it.
    let mut h = Harness::new(&repo(1, 10, "al2023@latest", false));
    h.apply(&deployment("web", 20, "1", "", ""));
    h.watch(900, |_, _| {}).await;
    assert_eq!(live(&h, "fixed").len(), 1, "{}", h.timeline());
    let running = h.running("web");
    assert!(running > 0 && running < 20, "the static node takes pods like any other: {running}");

    // A dynamic pool alongside takes the rest; the static one stays at its count.
    let mut h = Harness::new(&repo(1, 10, "al2023@latest", true));
    h.apply(&deployment("web", 20, "1", "", ""));
    assert!(h.until(900, |w| w.cluster.running("default", "web") == 20).await, "{}", h.timeline());
    assert_eq!(live(&h, "fixed").len(), 1, "{}", h.timeline());
    assert!(!live(&h, "general").is_empty());
}

#[tokio::test]
async fn consolidation_leaves_static_nodes_alone() {
    // Two static nodes with one small pod each: either pod fits on the other node.
    let mut h = Harness::new(&repo(2, 10, "al2023@latest", false));
    assert!(h.until(600, |w| live_in(w, "fixed").len() == 2).await, "{}", h.timeline());
    h.apply(&deployment("small", 2, "100m", "", ""));
    assert!(h.until(300, |w| w.cluster.running("default", "small") == 2).await, "{}", h.timeline());
    h.watch(900, |_, _| {}).await;
    assert_eq!(live(&h, "fixed").len(), 2, "{}", h.timeline());
    assert_eq!(h.count("disruption-decision"), 0, "{}", h.timeline());
}

/// A planner case: static pool `default` of `replicas` nodes, `limit` at most.
fn fixed(replicas: u64, limit: Option<i64>) -> Case {
    let mut case = Case::new();
    case.pool().replicas = Some(replicas);
    case.spec().limits.nodes = limit;
    case
}

#[test]
fn the_planner_never_consolidates_or_empties_static_nodes() {
    let mut case = fixed(2, None);
    case.node(node("a")).node(node("b")).node(node("room").unmanaged().of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu("100m"));
    assert!(case.plan().commands.is_empty(), "{:#?}", case.plan());
}

#[test]
fn a_drifted_static_node_waits_for_room_under_limits_nodes() {
    let mut case = fixed(2, Some(2));
    case.node(node("a").hash("old")).node(node("b"));
    let plan = case.plan();
    assert!(plan.commands.is_empty(), "{plan:#?}");
    assert!(kept(&plan, "a").is_some_and(|w| w.contains("limits.nodes")), "{plan:#?}");

    let mut case = fixed(2, Some(3));
    case.node(node("a").hash("old")).node(node("b"));
    let plan = case.plan();
    let cmd = super::only(&plan);
    assert_eq!(super::targets(cmd), ["a"]);
    assert_eq!(cmd.replacements.len(), 1, "launched before the old node is drained");
    assert_eq!(cmd.replacements[0].claim.node_pool, "default");
}

#[test]
fn an_expired_static_node_without_room_goes_first() {
    let mut case = fixed(2, Some(2));
    case.pool().expire_after = Some(secs(HOUR));
    case.node(node("a").age(secs(2 * HOUR))).node(node("b").age(secs(HOUR / 2)));
    let plan = case.plan();
    let cmd = super::only(&plan);
    assert_eq!(super::targets(cmd), ["a"]);
    assert!(cmd.replacements.is_empty(), "refilled once it is gone: {cmd:#?}");
}

#[test]
fn no_replacement_while_a_static_pool_scales_down() {
    let mut case = fixed(1, None);
    case.node(node("a").hash("old")).node(node("b"));
    let plan = case.plan();
    assert!(plan.commands.is_empty(), "{plan:#?}");
    assert!(kept(&plan, "a").is_some_and(|w| w.contains("scaling down")), "{plan:#?}");
}

fn replicas_plan(case: &Case) -> capstan::provisioning::static_pools::Replicas {
    let view = capstan::provisioning::Request {
        snapshot: &case.snapshot,
        instances: &case.instances,
        rules: &case.rules,
        catalog: &case.catalog,
    };
    capstan::provisioning::static_pools::plan(&view, case.now)
}

#[test]
fn a_scale_down_takes_unregistered_then_empty_then_cheapest_nodes() {
    let mut case = fixed(1, None);
    case.node(node("busy")).node(node("empty")).node(node("light")).node(node("held"));
    case.pods("busy", 3, pod().cpu("100m"));
    case.pod("light", pod().cpu("100m"));
    case.pod("held", pod().cpu("100m")).do_not_disrupt = true;
    let mut launching = case.instances[0].clone();
    launching.id = "i-launching".into();
    launching.claim = "claim-launching".into();
    launching.state = InstanceState::Pending;
    case.instances.push(launching);
    let plan = replicas_plan(&case);
    assert!(plan.launches.is_empty());
    let order: Vec<(&str, Option<&str>)> =
        plan.removals.iter().map(|r| (r.instance.as_str(), r.node.as_deref())).collect();
    assert_eq!(
        order,
        [("i-launching", None), ("i-empty", Some("empty")), ("i-light", Some("light")), ("i-busy", Some("busy"))],
        "the node with a do-not-disrupt pod stays"
    );
}

#[test]
fn a_scale_up_stops_at_limits_nodes_counting_nodes_on_their_way_out() {
    let mut case = fixed(4, Some(3));
    case.node(node("a")).node(node("leaving").disrupting());
    let plan = replicas_plan(&case);
    assert_eq!(plan.launches.len(), 1, "3 allowed, 2 there (one leaving): {plan:#?}");
    assert!(plan.launches.iter().all(|l| l.claim.node_pool == "default"));
    assert!(plan.short.iter().any(|(_, why)| why.contains("limits.nodes 3")), "{plan:#?}");
    assert!(plan.removals.is_empty());
}

#[test]
fn the_same_state_names_the_same_claims() {
    let mut case = fixed(3, None);
    case.node(node("a"));
    let first = replicas_plan(&case);
    let names: Vec<&str> = first.launches.iter().map(|l| l.claim.name.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert_ne!(names[0], names[1]);
    let again = replicas_plan(&case);
    assert_eq!(names, again.launches.iter().map(|l| l.claim.name.as_str()).collect::<Vec<_>>());
}

#[test]
fn pending_pods_are_not_planned_onto_a_static_pool() {
    let mut case = fixed(0, None);
    case.pending(pod().cpu("1"));
    let view = capstan::provisioning::Request {
        snapshot: &case.snapshot,
        instances: &case.instances,
        rules: &case.rules,
        catalog: &case.catalog,
    };
    let decided = capstan::provisioning::provision(view);
    assert!(decided.launches.is_empty(), "{decided:#?}");
    assert_eq!(decided.unschedulable.len(), 1);
    assert!(replicas_plan(&case).launches.is_empty(), "replicas 0 keeps no node");
}

/// An instance of pool `default` named `claim`, in `state`, with no node.
fn launched(case: &Case, claim: &str, state: InstanceState) -> Instance {
    let mut i = case.instances.first().cloned().unwrap_or_else(|| {
        let mut c = fixed(1, None);
        c.node(node("x"));
        c.instances[0].clone()
    });
    i.id = format!("i-{claim}");
    i.claim = claim.into();
    i.state = state;
    i
}

#[test]
fn a_node_that_died_is_replaced_under_a_new_name() {
    let case = fixed(1, None);
    let first = replicas_plan(&case);
    assert_eq!(first.launches.len(), 1);
    let name = first.launches[0].claim.name.clone();
    let mut case = fixed(1, None);
    let dead = launched(&case, &name, InstanceState::Terminated);
    case.instances.push(dead);
    let again = replicas_plan(&case);
    assert_eq!(again.launches.len(), 1);
    assert_ne!(again.launches[0].claim.name, name, "the dying instance's claim is never asked for again");
    assert_eq!(again.launches[0].claim.name, again.launches[0].plan.name);
}

#[test]
fn a_launch_still_pending_counts_and_the_next_name_moves_past_it() {
    let mut case = fixed(2, None);
    let pending = launched(&case, "default-static-4", InstanceState::Pending);
    case.instances.push(pending);
    let plan = replicas_plan(&case);
    let names: Vec<&str> = plan.launches.iter().map(|l| l.claim.name.as_str()).collect();
    assert_eq!(names, ["default-static-5"], "{plan:#?}");
}

#[test]
fn cluster_limits_cap_a_static_pool() {
    let mut case = fixed(3, None);
    case.node(node("a"));
    // `a` is an m6i.xlarge (4 cpu): room for one more of the pool's cheapest (2 cpu) node.
    case.cluster().limits.cpu = Some(6500);
    let plan = replicas_plan(&case);
    assert_eq!(plan.launches.len(), 1, "{plan:#?}");
    assert!(plan.short.iter().any(|(_, why)| why.contains("ClusterPolicy")), "{plan:#?}");
}

#[test]
fn a_drift_replacement_is_named_past_every_listed_replacement() {
    let mut case = fixed(2, Some(3));
    case.node(node("a").hash("old")).node(node("b"));
    let gone = launched(&case, "default-replace-7", InstanceState::Terminated);
    case.instances.push(gone);
    let plan = case.plan();
    let cmd = super::only(&plan);
    assert_eq!(cmd.replacements[0].claim.name, "default-replace-8");
}
