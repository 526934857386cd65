//! Drift (the pool's digest changed since launch) and expiration (older than expireAfter):
//! replace one node at a time, oldest first.

use capstan::scheduling::pod::pod;

use super::*;

/// No consolidation, so only drift and expiration can act.
fn stale_only() -> Case {
    let mut case = Case::new();
    case.pool().consolidate_after = None;
    case
}

#[test]
fn a_drifted_node_is_replaced() {
    let mut case = stale_only();
    case.node(node("a").hash("h0"));
    case.pod("a", pod().cpu("1"));
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(c.reason, Reason::Drifted);
    assert_eq!(targets(c), ["a"]);
    assert_eq!(c.replacements.len(), 1, "its pod needs a new node: {c:#?}");
    assert_eq!(c.replacements[0].claim.tags.get(POOL_HASH_TAG).map(String::as_str), Some(HASH));
    assert!(c.detail.contains("h0") && c.detail.contains(HASH), "{}", c.detail);
}

#[test]
fn a_node_launched_under_the_current_digest_has_not_drifted() {
    let mut case = stale_only();
    case.node(node("a"));
    case.pod("a", pod().cpu("1"));
    let plan = case.plan();
    assert!(plan.commands.is_empty(), "{plan:#?}");
}

#[test]
fn a_drifted_node_whose_pods_fit_elsewhere_is_replaced_by_nothing() {
    let mut case = stale_only();
    case.node(node("a").hash("h0")).node(node("big").unmanaged().of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu("1"));
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(c.reason, Reason::Drifted);
    assert!(c.replacements.is_empty(), "{c:#?}");
}

#[test]
fn an_expired_node_is_replaced_and_a_younger_one_is_not() {
    let cluster = |age| {
        let mut case = stale_only();
        case.pool().expire_after = Some(secs(24 * HOUR));
        case.node(node("a").age(age));
        case.pod("a", pod().cpu("1"));
        case.plan()
    };
    let old = cluster(secs(24 * HOUR));
    let c = only(&old);
    assert_eq!(c.reason, Reason::Expired);
    assert_eq!(targets(c), ["a"]);
    assert_eq!(c.replacements.len(), 1);
    assert!(c.detail.contains("expireAfter 86400s"), "{}", c.detail);
    let young = cluster(secs(24 * HOUR - 1));
    assert!(young.commands.is_empty(), "{young:#?}");
}

#[test]
fn stale_nodes_are_replaced_one_at_a_time_oldest_first() {
    let mut case = stale_only();
    case.node(node("young").hash("h0").age(secs(2 * HOUR)));
    case.node(node("old").hash("h0").age(secs(9 * HOUR)));
    case.node(node("mid").hash("h0").age(secs(5 * HOUR)));
    for n in ["young", "old", "mid"] {
        case.pod(n, pod().cpu("3"));
    }
    let plan = case.plan();
    assert_eq!(targets(only(&plan)), ["old"]);
}

#[test]
fn drift_is_named_before_expiration_for_a_node_that_is_both() {
    let mut case = stale_only();
    case.pool().expire_after = Some(secs(HOUR));
    case.node(node("a").hash("h0"));
    case.pod("a", pod().cpu("1"));
    assert_eq!(reasons(&case.plan()), [Reason::Drifted]);
}

#[test]
fn an_empty_drifted_node_is_replaced_as_drifted_not_deleted_as_empty() {
    let mut case = Case::new();
    case.node(node("a").hash("h0"));
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(c.reason, Reason::Drifted);
    assert!(c.replacements.is_empty());
}

/// ClusterRules documents minNodeLifetime as "no voluntary disruption of a node (with pods)
/// younger than this", but plan() applies it to consolidation only: a young drifted node with
/// pods is replaced.
#[test]
fn min_node_lifetime_does_not_hold_drift() {
    let mut case = stale_only();
    case.cluster().min_node_lifetime = Some(secs(HOUR));
    case.node(node("a").hash("h0").age(secs(60)));
    case.pod("a", pod().cpu("1"));
    assert_eq!(reasons(&case.plan()), [Reason::Drifted]);
}

#[test]
fn pending_pods_do_not_hold_drift() {
    let mut case = stale_only();
    case.node(node("a").hash("h0"));
    case.pod("a", pod().cpu("1"));
    case.pending(pod().cpu("1"));
    assert_eq!(reasons(&case.plan()), [Reason::Drifted]);
}
