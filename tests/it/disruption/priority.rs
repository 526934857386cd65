//! The order of methods: drift and expiration, then emptiness, then consolidation; one command
//! per pass. Pending pods make consolidation wait, not drift or emptiness.

use capstan::scheduling::pod::pod;

use super::*;

/// `drifted` (with a pod), `empty`, and `under` (one pod that fits on `big`).
fn everything() -> Case {
    let mut case = Case::new();
    case.node(node("drifted").hash("h0")).node(node("empty")).node(node("under"));
    case.node(node("big").unmanaged().of_type("m6i.4xlarge"));
    case.pod("drifted", pod().cpu("1"));
    case.pod("under", pod().cpu("1"));
    case
}

#[test]
fn drift_then_emptiness_then_consolidation() {
    let mut case = everything();
    let first = case.plan();
    assert_eq!(reasons(&first), [Reason::Drifted]);
    assert_eq!(targets(only(&first)), ["drifted"]);

    case.instances.retain(|i| i.id != "i-drifted");
    let second = case.plan();
    assert_eq!(reasons(&second), [Reason::Empty]);
    assert_eq!(targets(only(&second)), ["empty"]);

    case.instances.retain(|i| i.id != "i-empty");
    let third = case.plan();
    assert_eq!(reasons(&third), [Reason::Underutilized]);
    assert_eq!(targets(only(&third)), ["under"]);
}

#[test]
fn expiration_comes_before_emptiness() {
    let mut case = Case::new();
    case.pool().expire_after = Some(secs(10 * HOUR));
    case.node(node("old").age(secs(11 * HOUR))).node(node("empty").age(secs(HOUR)));
    case.pod("old", pod().cpu("3"));
    let plan = case.plan();
    assert_eq!(reasons(&plan), [Reason::Expired]);
    assert_eq!(targets(only(&plan)), ["old"]);
}

#[test]
fn pending_pods_make_consolidation_wait() {
    let mut case = Case::new();
    case.node(node("a")).node(node("big").unmanaged().of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu("1"));
    assert_eq!(reasons(&case.plan()), [Reason::Underutilized]);
    case.pending(pod().cpu("1"));
    let plan = case.plan();
    assert!(plan.commands.is_empty(), "{plan:#?}");
}

#[test]
fn pending_pods_do_not_hold_emptiness() {
    let mut case = Case::new();
    case.node(node("a"));
    case.pending(pod().cpu("1"));
    assert_eq!(reasons(&case.plan()), [Reason::Empty]);
}

#[test]
fn a_pod_not_yet_marked_unschedulable_is_not_pending() {
    let mut case = Case::new();
    case.node(node("a")).node(node("big").unmanaged().of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu("1"));
    case.pending(pod().cpu("1")).unschedulable = false;
    assert_eq!(reasons(&case.plan()), [Reason::Underutilized]);
}

#[test]
fn a_command_is_still_valid_while_a_fresh_plan_takes_the_same_nodes_for_the_same_reason() {
    let case = everything();
    let cmd = only(&case.plan()).clone();
    assert!(disruption::still_valid(&cmd, &case.plan()));
    let mut fixed = everything();
    fixed.instances.iter_mut().find(|i| i.id == "i-drifted").unwrap().tags.insert(POOL_HASH_TAG.into(), HASH.into());
    assert!(!disruption::still_valid(&cmd, &fixed.plan()));
}
