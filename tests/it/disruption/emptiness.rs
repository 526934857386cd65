//! Emptiness: every empty node past its pool's consolidateAfter goes, in one command.

use capstan::scheduling::pod::pod;

use super::*;

#[test]
fn an_empty_node_goes_once_consolidate_after_has_elapsed_and_not_before() {
    let mut case = Case::new();
    case.node(node("a").idle(secs(29)));
    let early = case.plan();
    assert!(early.commands.is_empty(), "29s idle of 30s: {early:#?}");

    let mut case = Case::new();
    case.node(node("a").idle(secs(30)));
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(c.reason, Reason::Empty);
    assert_eq!(targets(c), ["a"]);
    assert!(c.replacements.is_empty());
    assert!((c.savings - 0.192).abs() < 1e-9, "an m6i.xlarge saved: {}", c.savings);
}

#[test]
fn consolidate_after_never_keeps_empty_nodes() {
    let mut case = Case::new();
    case.pool().consolidate_after = None;
    case.node(node("a").idle(secs(100 * HOUR)));
    assert!(case.plan().commands.is_empty());
}

#[test]
fn every_empty_node_goes_in_one_command() {
    let mut case = Case::new();
    case.node(node("a")).node(node("b")).node(node("c").idle(secs(5))).node(node("d"));
    case.pod("d", pod().cpu("3"));
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(c.reason, Reason::Empty);
    assert_eq!(targets(c), ["a", "b"], "c changed 5s ago; d has a pod");
}

#[test]
fn daemonset_and_mirror_pods_do_not_make_a_node_busy() {
    let mut case = Case::new();
    case.node(node("a"));
    case.pod("a", pod().cpu("100m")).owner = Owner::DaemonSet("kube-system/agent".into());
    case.pod("a", pod().cpu("100m")).owner = Owner::Mirror;
    let plan = case.plan();
    assert_eq!(only(&plan).reason, Reason::Empty);
    assert_eq!(only(&plan).targets[0].pods, 0);
}

#[test]
fn when_empty_never_consolidates_a_node_with_pods() {
    // The same cluster under WhenEmptyOrUnderutilized deletes `a`: its pod fits on `big`.
    let cluster = |policy| {
        let mut case = Case::new();
        case.pool().consolidation = policy;
        case.node(node("a")).node(node("big").unmanaged().of_type("m6i.4xlarge"));
        case.pod("a", pod().cpu("500m"));
        case.plan()
    };
    let under = cluster(ConsolidationPolicy::WhenEmptyOrUnderutilized);
    assert_eq!(targets(only(&under)), ["a"]);
    let when_empty = cluster(ConsolidationPolicy::WhenEmpty);
    assert!(when_empty.commands.is_empty(), "{when_empty:#?}");
}

#[test]
fn when_empty_still_deletes_empty_nodes() {
    let mut case = Case::new();
    case.pool().consolidation = ConsolidationPolicy::WhenEmpty;
    case.node(node("a"));
    assert_eq!(reasons(&case.plan()), [Reason::Empty]);
}

#[test]
fn nodes_not_ready_or_already_disrupting_or_foreign_are_not_candidates() {
    let mut case = Case::new();
    case.node(node("a").not_ready()).node(node("b").disrupting()).node(node("c").unmanaged());
    let plan = case.plan();
    assert!(plan.commands.is_empty(), "{plan:#?}");
    assert!(plan.kept.is_empty(), "{plan:#?}");
}
