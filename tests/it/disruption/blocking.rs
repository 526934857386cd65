//! What forbids a voluntary disruption: karpenter.sh/do-not-disrupt on a pod or a node, a bare
//! pod (no controller), a PodDisruptionBudget that allows no eviction now.

use capstan::scheduling::pod::pod;

use super::*;

/// `a`, an m6i.xlarge with one `app=web` pod that fits on `big`; without a block `a` is
/// deleted (see consolidation.rs).
fn movable() -> Case {
    let mut case = Case::new();
    case.node(node("a")).node(node("big").unmanaged().of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu("1").label("app", "web"));
    case
}

fn assert_blocked(case: &Case, node: &str, why: &str) {
    let plan = case.plan();
    assert!(plan.commands.is_empty(), "{plan:#?}");
    let kept = kept(&plan, node).unwrap_or_else(|| panic!("{node} not kept: {plan:#?}"));
    assert!(kept.contains(why), "{kept}");
}

#[test]
fn the_unblocked_cluster_is_consolidated() {
    assert_eq!(targets(only(&movable().plan())), ["a"]);
}

#[test]
fn a_do_not_disrupt_pod_blocks_consolidation() {
    let mut case = movable();
    case.snapshot.pods[0].do_not_disrupt = true;
    assert_blocked(&case, "a", "underutilized: pod default/a-0 is annotated karpenter.sh/do-not-disrupt");
}

#[test]
fn a_do_not_disrupt_node_blocks_consolidation() {
    let mut case = Case::new();
    case.node(node("a").do_not_disrupt()).node(node("big").unmanaged().of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu("1"));
    assert_blocked(&case, "a", "node a is annotated karpenter.sh/do-not-disrupt");
}

#[test]
fn do_not_disrupt_must_be_true() {
    let mut case = Case::new();
    case.node(node("a").annotation(DO_NOT_DISRUPT, "false"));
    assert_eq!(reasons(&case.plan()), [Reason::Empty]);
}

#[test]
fn a_do_not_disrupt_node_blocks_emptiness() {
    let mut case = Case::new();
    case.node(node("a").do_not_disrupt());
    assert_blocked(&case, "a", "empty: node is annotated karpenter.sh/do-not-disrupt");
}

#[test]
fn a_do_not_disrupt_pod_blocks_drift() {
    let mut case = Case::new();
    case.node(node("a").hash("h0"));
    case.pod("a", pod().cpu("1")).do_not_disrupt = true;
    assert_blocked(&case, "a", "drifted: pod default/a-0 is annotated karpenter.sh/do-not-disrupt");
}

#[test]
fn a_bare_pod_blocks() {
    let mut case = movable();
    case.snapshot.pods[0].owner = Owner::None;
    assert_blocked(&case, "a", "pod default/a-0 has no controller");
}

#[test]
fn a_pdb_allowing_no_disruption_blocks_and_one_allowing_some_does_not() {
    let mut case = movable();
    case.pdb("web", 0);
    assert_blocked(&case, "a", "PodDisruptionBudget default/web allows no disruption of default/a-0");
    case.snapshot.pdbs[0].disruptions_allowed = 1;
    assert_eq!(targets(only(&case.plan())), ["a"]);
}

#[test]
fn a_pdb_over_other_pods_does_not_block() {
    let mut case = movable();
    case.pdb("db", 0);
    assert_eq!(targets(only(&case.plan())), ["a"]);
}

#[test]
fn a_blocked_node_is_skipped_and_another_consolidated() {
    let mut case = movable();
    case.node(node("b"));
    case.pod("b", pod().cpu("1"));
    case.snapshot.pods[0].do_not_disrupt = true;
    let plan = case.plan();
    assert_eq!(targets(only(&plan)), ["b"]);
    assert!(kept(&plan, "a").is_some(), "{plan:#?}");
}

/// The PDB check is per pod (`disruptionsAllowed <= 0`), not per node: a PDB that allows one
/// eviction does not hold a node with two of its pods, though draining it needs two.
#[test]
fn a_pdb_allowing_one_eviction_does_not_hold_a_node_with_two_of_its_pods() {
    let mut case = movable();
    case.pod("a", pod().cpu("1").label("app", "web"));
    case.pdb("web", 1);
    assert_eq!(targets(only(&case.plan())), ["a"]);
}

/// Unlike Karpenter v1, where expiration is forceful, do-not-disrupt holds an expired node.
#[test]
fn a_do_not_disrupt_pod_blocks_expiration() {
    let mut case = Case::new();
    case.pool().consolidate_after = None;
    case.pool().expire_after = Some(secs(HOUR));
    case.node(node("a"));
    case.pod("a", pod().cpu("1"));
    assert_eq!(reasons(&case.plan()), [Reason::Expired]);
    case.snapshot.pods[0].do_not_disrupt = true;
    assert_blocked(&case, "a", "expired: pod default/a-0 is annotated karpenter.sh/do-not-disrupt");
}

// Karpenter (v1.12+): a pod's karpenter.sh/do-not-disrupt may be a duration; the pod is
// protected while its age since status.startTime is below it.
#[test]
fn a_do_not_disrupt_duration_blocks_only_until_the_pod_has_run_that_long() {
    let mut case = movable();
    let now = case.now;
    case.snapshot.do_not_disrupt_until.insert("default/a-0".into(), now + secs(60));
    assert_blocked(
        &case,
        "a",
        "underutilized: pod default/a-0 is annotated karpenter.sh/do-not-disrupt for another 60s",
    );
    case.snapshot.do_not_disrupt_until.insert("default/a-0".into(), now);
    assert_eq!(targets(only(&case.plan())), ["a"]);
}

// On a node only "true" counts; a duration there protects nothing.
#[test]
fn a_do_not_disrupt_duration_on_a_node_does_not_block() {
    let mut case = Case::new();
    case.node(node("a").annotation(DO_NOT_DISRUPT, "10m"));
    assert_eq!(reasons(&case.plan()), [Reason::Empty]);
}
