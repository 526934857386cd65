//! Offerings that recently ran out of capacity. EC2's InsufficientInstanceCapacity is usually
//! short-lived, so an offering is avoided for three minutes and then tried again. The clock is
//! passed in, so the cache is plain data. Its one owner is the capacity loop: it marks what
//! `create` reported, marks its catalog from it, and hands the avoided set to `create`.

use std::collections::HashMap;
use std::time::Duration;

use super::offering::OfferingKey;
use super::provider::Avoid;
use crate::scheduling::catalog::Catalog;

/// How long an offering that ran out of capacity is avoided.
pub const UNAVAILABLE_FOR: Duration = Duration::from_secs(180);

/// Offering → when it ran out.
#[derive(Debug, Clone, Default)]
pub struct Unavailable {
    since: HashMap<OfferingKey, Duration>,
}

impl Unavailable {
    pub fn mark(&mut self, offering: OfferingKey, now: Duration) {
        self.since.insert(offering, now);
    }

    /// Whether the offering is still being avoided at `now`.
    pub fn contains(&self, offering: &OfferingKey, now: Duration) -> bool {
        self.since.get(offering).is_some_and(|at| now < *at + UNAVAILABLE_FOR)
    }

    pub fn is_empty(&self) -> bool {
        self.since.is_empty()
    }

    /// Forgets entries that have expired.
    pub fn expire(&mut self, now: Duration) {
        self.since.retain(|_, at| now < *at + UNAVAILABLE_FOR);
    }

    /// The offerings being avoided at `now`, for `CloudProvider::create`.
    pub fn avoided(&self, now: Duration) -> Avoid {
        self.since.iter().filter(|(_, at)| now < **at + UNAVAILABLE_FOR).map(|(k, _)| k.clone()).collect()
    }

    /// Marks the catalog's offerings that are being avoided.
    pub fn apply(&self, catalog: &mut Catalog, now: Duration) {
        if self.since.is_empty() {
            return;
        }
        for t in &mut catalog.types {
            for o in &mut t.offerings {
                if self.contains(&OfferingKey::new(&t.name, &o.zone, o.capacity_type), now) {
                    o.available = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::catalog::CapacityType;

    #[test]
    fn an_offering_is_avoided_for_three_minutes() {
        let mut u = Unavailable::default();
        let t0 = Duration::from_secs(1000);
        let key = |z: &str, cap| OfferingKey::new("m5.large", z, cap);
        u.mark(key("us-east-1a", CapacityType::Spot), t0);
        assert!(u.contains(&key("us-east-1a", CapacityType::Spot), t0 + Duration::from_secs(179)));
        assert!(!u.contains(&key("us-east-1a", CapacityType::OnDemand), t0));
        assert!(!u.contains(&key("us-east-1b", CapacityType::Spot), t0));
        assert!(!u.contains(&key("us-east-1a", CapacityType::Spot), t0 + UNAVAILABLE_FOR));
        assert_eq!(u.avoided(t0), Avoid::from([key("us-east-1a", CapacityType::Spot)]));
        assert!(u.avoided(t0 + UNAVAILABLE_FOR).is_empty());
        let mut c = crate::scheduling::builtin::catalog();
        u.apply(&mut c, t0);
        let t = c.get("m5.large").unwrap();
        let off = |z: &str, cap| t.offerings.iter().find(|o| o.zone == z && o.capacity_type == cap).unwrap().available;
        assert!(!off("us-east-1a", CapacityType::Spot));
        assert!(off("us-east-1a", CapacityType::OnDemand));
        u.expire(t0 + UNAVAILABLE_FOR);
        assert!(u.since.is_empty());
    }
}
