//! Capacity reservations (On-Demand Capacity Reservations and capacity blocks) as the catalog
//! and the scheduler see them.
//!
//! ```text
//! cloud: reservations (id, type, zone, free count, classes) ─add_reserved─► catalog: `reserved`
//!          offerings priced at on-demand ÷ 10,000,000, each carrying its Reservation
//! solve: a pool sees only its class's reserved offerings; ReservedLeft::of(catalog) ─► the
//!          packer takes from the class's free counts as it plans nodes
//! ```
//!
//! A reserved offering is so cheap that it is always used before anything else, while two
//! reserved offerings still rank by their on-demand prices. It serves only the NodePools whose
//! EC2NodeClass selects its reservation ([`Offering::admits`]): a launch goes through the
//! class's own reservations. How many nodes may be planned into it is bounded by the free
//! counts of the class's reservations of that instance type and zone: the cloud launches into
//! any of them.

use std::collections::HashMap;

use super::catalog::{CapacityType, Catalog, InstanceType, Offering};
pub use super::reservation::{
    RESERVATION_ID_LABEL, RESERVATION_INTERRUPTIBLE_LABEL, RESERVATION_LABELS, RESERVATION_TYPE_LABEL,
    RESERVED_PRICE_DIVISOR, Reservation, ReservationKind,
};

/// One active reservation as the cloud reports it: the input of [`add_reserved`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReservedCapacity {
    /// `cr-…`.
    pub id: String,
    /// The one instance type it reserves.
    pub instance_type: String,
    /// The availability zone it reserves in.
    pub zone: String,
    /// Instances it can still take (EC2's AvailableInstanceCount).
    pub available: u32,
    /// Ordinary reservation or capacity block.
    pub kind: ReservationKind,
    /// EC2 may take the capacity back.
    pub interruptible: bool,
    /// The EC2NodeClasses that select it, sorted.
    pub classes: Vec<String>,
}

impl ReservedCapacity {
    /// The reservation as a reserved offering carries it.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            id: self.id.clone(),
            kind: self.kind,
            interruptible: self.interruptible,
            available: self.available,
            classes: self.classes.clone(),
        }
    }

    /// Whether a launch for EC2NodeClass `class` may go into it.
    pub fn admits(&self, class: &str) -> bool {
        self.classes.iter().any(|c| c == class)
    }
}

/// Adds one `reserved` offering per reservation to the catalog, priced from the type's
/// on-demand price (in the reservation's zone, else any zone). Returns the ids left out: their
/// instance type is not in the catalog or has no on-demand price.
pub fn add_reserved(catalog: &mut Catalog, reservations: &[ReservedCapacity]) -> Vec<String> {
    let mut skipped = Vec::new();
    for r in reservations {
        let Some(t) = catalog.types.iter_mut().find(|t| t.name == r.instance_type) else {
            skipped.push(r.id.clone());
            continue;
        };
        let on_demand = |o: &&Offering| o.capacity_type == CapacityType::OnDemand;
        let price = t
            .offerings
            .iter()
            .filter(on_demand)
            .find(|o| o.zone == r.zone)
            .or_else(|| t.offerings.iter().find(on_demand))
            .map(|o| o.price);
        let Some(price) = price else {
            skipped.push(r.id.clone());
            continue;
        };
        t.offerings.push(Offering {
            zone: r.zone.clone(),
            capacity_type: CapacityType::Reserved,
            price: price / RESERVED_PRICE_DIVISOR,
            available: r.available > 0,
            reservation: Some(r.reservation()),
        });
    }
    skipped
}

/// `catalog` without its reserved offerings: what reservations are added to when read again.
pub fn without_reserved(mut catalog: Catalog) -> Catalog {
    for t in &mut catalog.types {
        t.offerings.retain(|o| o.capacity_type != CapacityType::Reserved);
    }
    catalog
}

/// `catalog` less the instances launched into its reservations since it was read (`launched`:
/// their reservation ids), so a catalog kept between reads does not offer them again; `None`
/// when none of them is in it. Freed places wait for the next read.
pub fn less_launched<'a>(catalog: &Catalog, launched: impl Iterator<Item = &'a str>) -> Option<Catalog> {
    let mut used: HashMap<&str, u32> = HashMap::new();
    for id in launched {
        *used.entry(id).or_default() += 1;
    }
    let offered = |o: &Offering| o.reservation.as_ref().is_some_and(|r| used.contains_key(r.id.as_str()));
    if !catalog.types.iter().any(|t| t.offerings.iter().any(offered)) {
        return None;
    }
    let mut out = catalog.clone();
    for o in out.types.iter_mut().flat_map(|t| t.offerings.iter_mut()) {
        if let Some(r) = o.reservation.as_mut()
            && let Some(n) = used.get(r.id.as_str())
        {
            r.available = r.available.saturating_sub(*n);
            o.available = o.available && r.available > 0;
        }
    }
    Some(out)
}

/// One reservation as the plan takes from it.
#[derive(Debug, Clone, PartialEq)]
struct Left {
    id: String,
    classes: Vec<String>,
    free: u32,
}

/// Free reserved instances per reservation, by (instance type, zone), taken from as a plan
/// places nodes, so a reservation with two free instances is never planned for ten nodes. A
/// NodePool counts only the reservations its EC2NodeClass selects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReservedLeft {
    left: HashMap<(String, String), Vec<Left>>,
}

impl ReservedLeft {
    /// The free counts of the catalog's available reserved offerings.
    pub fn of(catalog: &Catalog) -> ReservedLeft {
        let mut left: HashMap<(String, String), Vec<Left>> = HashMap::new();
        for t in &catalog.types {
            for o in t.offerings.iter().filter(|o| o.available && o.capacity_type == CapacityType::Reserved) {
                let Some(r) = &o.reservation else { continue };
                let at = left.entry((t.name.clone(), o.zone.clone())).or_default();
                // The same reservation offered twice counts once.
                if !at.iter().any(|l| l.id == r.id) {
                    at.push(Left { id: r.id.clone(), classes: r.classes.clone(), free: r.available });
                }
            }
        }
        ReservedLeft { left }
    }

    /// Whether any reserved instance is still free.
    pub fn any(&self) -> bool {
        self.left.values().flatten().any(|l| l.free > 0)
    }

    fn of_class<'a>(&'a self, class: &'a str, instance_type: &str, zone: &str) -> impl Iterator<Item = &'a Left> {
        let at = self.left.get(&(instance_type.to_string(), zone.to_string()));
        at.into_iter().flatten().filter(move |l| l.classes.iter().any(|c| c == class))
    }

    /// Free reserved instances of `instance_type` in `zone` that a NodePool of EC2NodeClass
    /// `class` may launch into.
    pub fn left(&self, class: &str, instance_type: &str, zone: &str) -> u32 {
        self.of_class(class, instance_type, zone).map(|l| l.free).sum()
    }

    /// Whether offering `o` of `t` can take one more node of a NodePool of `class`: always,
    /// unless it is reserved and the class's reservations there are used up (or it has none).
    pub fn allows(&self, class: &str, t: &InstanceType, o: &Offering) -> bool {
        o.capacity_type != CapacityType::Reserved || self.left(class, &t.name, &o.zone) > 0
    }

    /// Takes up to `n` free instances of the class's reservations, each from the one with the
    /// most room (ties: the lowest id), as the cloud chooses; returns how many were taken.
    pub fn take(&mut self, class: &str, instance_type: &str, zone: &str, n: u32) -> u32 {
        let Some(at) = self.left.get_mut(&(instance_type.to_string(), zone.to_string())) else { return 0 };
        let mut taken = 0;
        while taken < n {
            let most = at
                .iter_mut()
                .filter(|l| l.free > 0 && l.classes.iter().any(|c| c == class))
                .min_by(|a, b| b.free.cmp(&a.free).then_with(|| a.id.cmp(&b.id)));
            let Some(l) = most else { break };
            l.free -= 1;
            taken += 1;
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::builtin;

    fn reservation(id: &str, t: &str, zone: &str, available: u32) -> ReservedCapacity {
        let (instance_type, zone) = (t.to_string(), zone.to_string());
        ReservedCapacity {
            id: id.into(),
            instance_type,
            zone,
            available,
            kind: ReservationKind::Default,
            interruptible: false,
            classes: vec!["default".into()],
        }
    }

    fn of_classes(mut r: ReservedCapacity, classes: &[&str]) -> ReservedCapacity {
        r.classes = classes.iter().map(|c| c.to_string()).collect();
        r
    }

    #[test]
    fn a_reservation_is_an_offering_at_a_ten_millionth_of_on_demand() {
        let mut c = builtin::catalog();
        let skipped = add_reserved(
            &mut c,
            &[reservation("cr-1", "m5.large", "us-east-1b", 2), reservation("cr-2", "no.such", "us-east-1a", 1)],
        );
        assert_eq!(skipped, vec!["cr-2".to_string()]);
        let t = c.get("m5.large").unwrap();
        let od = t.offerings.iter().find(|o| o.zone == "us-east-1b" && o.capacity_type == CapacityType::OnDemand);
        let r = t.offerings.iter().find(|o| o.capacity_type == CapacityType::Reserved).unwrap();
        assert_eq!(r.zone, "us-east-1b");
        assert!((r.price * RESERVED_PRICE_DIVISOR - od.unwrap().price).abs() < 1e-9);
        assert!((r.list_price() - od.unwrap().price).abs() < 1e-9);
        assert_eq!(r.reservation.as_ref().map(|r| (r.id.as_str(), r.available)), Some(("cr-1", 2)));
    }

    #[test]
    fn an_empty_reservation_is_unavailable_and_counts_are_taken_per_type_and_zone() {
        let mut c = builtin::catalog();
        add_reserved(
            &mut c,
            &[
                reservation("cr-1", "m5.large", "us-east-1a", 2),
                reservation("cr-2", "m5.large", "us-east-1a", 1),
                reservation("cr-3", "m5.large", "us-east-1b", 0),
            ],
        );
        let t = c.get("m5.large").unwrap();
        let empty = t.offerings.iter().find(|o| o.reservation.as_ref().is_some_and(|r| r.id == "cr-3")).unwrap();
        assert!(!empty.available);
        let mut left = ReservedLeft::of(&c);
        assert_eq!(left.left("default", "m5.large", "us-east-1a"), 3);
        assert_eq!(left.left("default", "m5.large", "us-east-1b"), 0);
        assert_eq!(left.take("default", "m5.large", "us-east-1a", 2), 2);
        assert_eq!(left.take("default", "m5.large", "us-east-1a", 5), 1);
        let reserved = t.offerings.iter().find(|o| o.capacity_type == CapacityType::Reserved).unwrap();
        assert!(!left.allows("default", t, reserved));
        let od = t.offerings.iter().find(|o| o.capacity_type == CapacityType::OnDemand).unwrap();
        assert!(left.allows("default", t, od));
    }

    #[test]
    fn launches_since_the_read_come_off_the_free_counts() {
        let mut c = builtin::catalog();
        add_reserved(&mut c, &[reservation("cr-1", "m5.large", "us-east-1a", 2)]);
        assert_eq!(less_launched(&c, ["cr-9"].into_iter()), None);
        let less = less_launched(&c, ["cr-1"].into_iter()).unwrap();
        assert_eq!(ReservedLeft::of(&less).left("default", "m5.large", "us-east-1a"), 1);
        let none = less_launched(&c, ["cr-1", "cr-1", "cr-1"].into_iter()).unwrap();
        assert_eq!(ReservedLeft::of(&none).left("default", "m5.large", "us-east-1a"), 0);
        let t = none.get("m5.large").unwrap();
        assert!(t.offerings.iter().filter(|o| o.capacity_type == CapacityType::Reserved).all(|o| !o.available));
    }

    #[test]
    fn labels_name_the_reservation_and_its_interruptibility() {
        let r = Reservation {
            id: "cr-0abc".into(),
            kind: ReservationKind::CapacityBlock,
            interruptible: true,
            available: 1,
            classes: vec!["gpu".into()],
        };
        let labels = r.labels();
        assert_eq!(labels[RESERVATION_ID_LABEL], "cr-0abc");
        assert_eq!(labels[RESERVATION_TYPE_LABEL], "capacity-block");
        assert_eq!(labels[RESERVATION_INTERRUPTIBLE_LABEL], "true");
        let plain = Reservation { interruptible: false, kind: ReservationKind::Default, ..r };
        assert!(!plain.labels().contains_key(RESERVATION_INTERRUPTIBLE_LABEL));
    }

    #[test]
    fn a_reservation_serves_only_the_classes_that_select_it() {
        let mut c = builtin::catalog();
        add_reserved(
            &mut c,
            &[
                of_classes(reservation("cr-a", "m5.large", "us-east-1a", 2), &["a"]),
                of_classes(reservation("cr-b", "m5.large", "us-east-1a", 3), &["b"]),
                of_classes(reservation("cr-ab", "m5.large", "us-east-1a", 1), &["a", "b"]),
            ],
        );
        let t = c.get("m5.large").unwrap();
        let offered = |class: &str| -> Vec<&str> {
            let admitted = t.offerings.iter().filter(|o| o.capacity_type == CapacityType::Reserved && o.admits(class));
            admitted.filter_map(|o| o.reservation.as_ref().map(|r| r.id.as_str())).collect()
        };
        assert_eq!(offered("a"), ["cr-a", "cr-ab"]);
        assert_eq!(offered("b"), ["cr-b", "cr-ab"]);
        assert!(offered("c").is_empty(), "a class that selects no reservation gets none");
        let od = t.offerings.iter().find(|o| o.capacity_type == CapacityType::OnDemand).unwrap();
        assert!(od.admits("c"));
        let mut left = ReservedLeft::of(&c);
        assert_eq!((left.left("a", "m5.large", "us-east-1a"), left.left("b", "m5.large", "us-east-1a")), (3, 4));
        assert_eq!(left.left("c", "m5.large", "us-east-1a"), 0);
        let reserved = t.offerings.iter().find(|o| o.capacity_type == CapacityType::Reserved).unwrap();
        assert!(!left.allows("c", t, reserved));
        // Class a takes from the reservation with most room, then the shared one: b's own stays.
        assert_eq!(left.take("a", "m5.large", "us-east-1a", 5), 3);
        assert_eq!((left.left("a", "m5.large", "us-east-1a"), left.left("b", "m5.large", "us-east-1a")), (0, 3));
        assert_eq!(without_reserved(c.clone()).get("m5.large").unwrap().offerings.len(), t.offerings.len() - 3);
    }
}
