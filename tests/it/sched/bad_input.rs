//! Impossible requests give reasons, never a panic.

use capstan::scheduling::catalog::Catalog;
use capstan::scheduling::pod::pod;
use capstan::scheduling::requirements::ValueSet;

use super::*;

#[test]
fn a_pod_larger_than_any_instance_type() {
    let c = catalog();
    let case = Case::new(&c, vec![pod().name("huge").cpu("1000").memory("10Ti").build()]);
    for (s, plan) in case.solve() {
        let why = reason_of(&plan, "huge").unwrap_or_else(|| panic!("{s:?}"));
        assert!(why.contains("no instance type offers the requests"), "{s:?}: {why}");
        assert!(why.contains("cpu: needs 1000000"), "{s:?}: {why}");
    }
}

#[test]
fn an_empty_catalog() {
    let c = Catalog::default();
    let case = Case::new(&c, vec![pod().name("p").cpu("1").build()]);
    for (s, plan) in case.solve() {
        let why = reason_of(&plan, "p").unwrap_or_else(|| panic!("{s:?}"));
        assert!(why.contains("no instance type in the catalog meets its requirements"), "{s:?}: {why}");
    }
}

#[test]
fn a_node_pool_whose_requirements_match_no_type() {
    let c = catalog();
    let mut p = pool("odd");
    p.requirements.add("karpenter.k8s.aws/instance-family", ValueSet::one("z9x"));
    let mut case = Case::new(&c, vec![pod().name("p").cpu("1").build()]);
    case.pools = vec![p];
    for (s, plan) in case.solve() {
        let why = reason_of(&plan, "p").unwrap_or_else(|| panic!("{s:?}"));
        assert!(why.contains("NodePool odd: no instance type in the catalog meets its requirements"), "{s:?}: {why}");
    }
}

#[test]
fn no_node_pool_at_all() {
    let c = catalog();
    let mut case = Case::new(&c, vec![pod().name("p").cpu("1").build()]);
    case.pools.clear();
    for (s, plan) in case.solve() {
        assert_eq!(reason_of(&plan, "p").as_deref(), Some("no NodePool is defined"), "{s:?}");
    }
}

#[test]
fn a_pod_selecting_what_no_pool_offers_names_the_conflict() {
    let c = catalog();
    let case =
        Case::new(&c, vec![pod().name("p").cpu("1").node_selector("karpenter.sh/capacity-type", "spot").build()]);
    for (s, plan) in case.solve() {
        let why = reason_of(&plan, "p").unwrap_or_else(|| panic!("{s:?}"));
        assert!(why.contains("requirement karpenter.sh/capacity-type conflicts"), "{s:?}: {why}");
    }
}

#[test]
fn a_label_no_node_will_have() {
    let c = catalog();
    let case = Case::new(&c, vec![pod().name("p").cpu("1").node_selector("team", "blue").build()]);
    for (s, plan) in case.solve() {
        assert!(reason_of(&plan, "p").is_some(), "{s:?}");
    }
}
