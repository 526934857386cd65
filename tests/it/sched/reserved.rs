//! Reserved capacity in the solver: a reservation's offering is used before anything else, but
//! only for as many nodes as it has free instances, counted across the whole plan; only by
//! pools that allow `reserved` and whose EC2NodeClass selects the reservation; and two
//! reservations rank by their types' prices.

use capstan::scheduling::catalog::{CAPACITY_TYPE, CapacityType, HOSTNAME};
use capstan::scheduling::pod::{Selector, pod};
use capstan::scheduling::reserved::{RESERVED_PRICE_DIVISOR, ReservationKind, ReservedCapacity, add_reserved};

use super::*;

fn reservation(id: &str, instance_type: &str, zone: &str, available: u32) -> ReservedCapacity {
    ReservedCapacity {
        id: id.into(),
        instance_type: instance_type.into(),
        zone: zone.into(),
        available,
        kind: ReservationKind::Default,
        interruptible: false,
        classes: vec!["default".into()],
    }
}

fn reserved_catalog(reservations: &[ReservedCapacity]) -> Catalog {
    let mut c = catalog();
    assert!(add_reserved(&mut c, reservations).is_empty());
    c
}

/// A pool allowing on-demand and reserved capacity.
fn reserving_pool() -> PoolSpec {
    let mut p = pool("default");
    p.requirements = in_(CAPACITY_TYPE, &["on-demand", "reserved"]);
    p
}

/// `n` pods of 1 vCPU, one per node.
fn one_per_node(n: usize) -> Vec<capstan::scheduling::pod::Pod> {
    let sel = Selector::labels(&[("app", "web")]);
    many(n, "web", || pod().cpu("1").label("app", "web").anti_affinity(HOSTNAME, sel.clone()))
}

fn reserved_claims(plan: &Plan) -> Vec<&NewClaim> {
    plan.claims.iter().filter(|c| c.capacity_type == CapacityType::Reserved).collect()
}

#[test]
fn a_reservation_is_used_first_for_as_many_nodes_as_it_has_room() {
    let c = reserved_catalog(&[reservation("cr-1", "m5.large", "us-east-1b", 2)]);
    let mut case = Case::new(&c, one_per_node(5));
    case.pools = vec![reserving_pool()];
    for (s, plan) in case.solve() {
        assert!(plan.unschedulable.is_empty(), "{s:?}: {:?}", plan.unschedulable);
        assert_eq!(plan.claims.len(), 5, "{s:?}");
        let reserved = reserved_claims(&plan);
        assert_eq!(reserved.len(), 2, "{s:?}: two free instances, two nodes: {:?}", plan.claims);
        for r in &reserved {
            assert_eq!((r.instance_type.as_str(), r.zone.as_str()), ("m5.large", "us-east-1b"), "{s:?}");
            assert!((r.price * RESERVED_PRICE_DIVISOR - 0.096).abs() < 1e-9, "{s:?}: {}", r.price);
            assert_eq!(r.options[0].capacity_type, CapacityType::Reserved, "{s:?}: launched as reserved first");
        }
        let rest = plan.claims.iter().filter(|c| c.capacity_type != CapacityType::Reserved);
        assert!(rest.into_iter().all(|c| c.capacity_type == CapacityType::OnDemand), "{s:?}");
    }
}

#[test]
fn a_pool_that_does_not_allow_reserved_never_uses_a_reservation() {
    let c = reserved_catalog(&[reservation("cr-1", "m5.large", "us-east-1b", 5)]);
    let case = Case::new(&c, one_per_node(3));
    for (s, plan) in case.solve() {
        assert_eq!(plan.claims.len(), 3, "{s:?}");
        assert!(reserved_claims(&plan).is_empty(), "{s:?}: {:?}", plan.claims);
        assert!(plan.claims.iter().flat_map(|c| c.options.iter()).all(|o| o.capacity_type == CapacityType::OnDemand));
    }
}

#[test]
fn two_reservations_rank_by_their_types_prices_and_an_empty_one_is_not_planned() {
    let c = reserved_catalog(&[
        reservation("cr-big", "m5.xlarge", "us-east-1a", 1),
        reservation("cr-small", "m5.large", "us-east-1a", 1),
        reservation("cr-empty", "c5.large", "us-east-1a", 0),
    ]);
    let mut case = Case::new(&c, vec![pod().name("p").cpu("1").build()]);
    case.pools = vec![reserving_pool()];
    for (s, plan) in case.solve() {
        let claim = claim_of(&plan, "p").unwrap_or_else(|| panic!("{s:?}: {plan:?}"));
        assert_eq!((claim.instance_type.as_str(), claim.capacity_type), ("m5.large", CapacityType::Reserved), "{s:?}");
        assert!(
            !claim.options.iter().any(|o| o.instance_type == "c5.large" && o.capacity_type == CapacityType::Reserved),
            "{s:?}: the full reservation is no option"
        );
    }
}

#[test]
fn a_reservation_serves_only_the_pools_of_the_classes_that_select_it() {
    let mut theirs = reservation("cr-gpu", "m5.large", "us-east-1b", 5);
    theirs.classes = vec!["gpu".into()];
    let c = reserved_catalog(&[theirs, reservation("cr-mine", "m5.large", "us-east-1a", 1)]);
    // A pool of another class that allows reserved capacity: the gpu class's reservation is no
    // option for it (a launch there would find no reservation of its class), its own is.
    let mut case = Case::new(&c, one_per_node(3));
    case.pools = vec![reserving_pool()];
    for (s, plan) in case.solve() {
        assert!(plan.unschedulable.is_empty(), "{s:?}: {:?}", plan.unschedulable);
        let reserved = reserved_claims(&plan);
        assert_eq!(reserved.len(), 1, "{s:?}: only its own reservation's one instance: {:?}", plan.claims);
        assert_eq!(reserved[0].zone, "us-east-1a", "{s:?}");
        let options = plan.claims.iter().flat_map(|c| c.options.iter());
        let foreign = options.filter(|o| o.capacity_type == CapacityType::Reserved && o.zone == "us-east-1b").count();
        assert_eq!(foreign, 0, "{s:?}: the other class's reservation is no launch option");
    }
    // The gpu class's pool fills it.
    let mut gpu = pool("gpu");
    gpu.requirements = in_(CAPACITY_TYPE, &["on-demand", "reserved"]);
    gpu.node_class = "gpu".into();
    let mut case = Case::new(&c, one_per_node(3));
    case.pools = vec![gpu];
    for (s, plan) in case.solve() {
        let reserved = reserved_claims(&plan);
        assert_eq!(reserved.len(), 3, "{s:?}: {:?}", plan.claims);
        assert!(reserved.iter().all(|r| r.zone == "us-east-1b"), "{s:?}");
    }
}
