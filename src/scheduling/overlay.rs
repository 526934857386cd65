//! Prices as the solver should see them: the cluster's NodeOverlays and its share of the fleet's
//! commitments applied to the published catalog, offering by offering. Pure.
//!
//! ```text
//! published price ─► highest-weight matching NodeOverlay ─► on-demand price the cluster pays
//!        │                                                         │ (uncovered part)
//!        └─► commitment rate (Reserved Instances first, then Savings Plans; on-demand only)
//!                 weighted by how much of the cluster's share its running instances leave
//! ```
//!
//! The price of an offering is the price of one more instance of it ([`priced`]): the part the
//! commitments still cover at their rate, the rest at the overlay-adjusted price. Spot offerings
//! are never covered; reserved (capacity-reservation) offerings are left as published. Running
//! instances are priced oldest first ([`running_prices`]), and a plan's new claims one after the
//! other ([`settle`]), so a share is spent once. Extended resources from an overlay's `capacity`
//! are not added: the catalog does not carry them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::policy::EffectivePolicy;
use crate::policy::commitment::{CommitmentType, Rate};
use crate::policy::nodeoverlay::{NodeOverlay, PriceEffect, is_offering_key};

use super::catalog::{CAPACITY_TYPE, CapacityType, Catalog, InstanceType, Offering, ZONE};
use super::plan::{LaunchOption, Plan};
use super::requirements::Requirements;

const REGION: &str = "topology.kubernetes.io/region";

/// One NodeOverlay's price change, ready to match.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceOverlay {
    /// The NodeOverlay's name.
    pub name: String,
    /// Its weight (unset is 0); the highest matching weight wins.
    pub weight: i64,
    /// What an offering must meet.
    pub requirements: Requirements,
    /// The change.
    pub effect: PriceEffect,
}

/// What a commitment covers.
#[derive(Debug, Clone, PartialEq)]
pub enum Covers {
    /// Reserved Instances of one type: the share is in instances.
    Instances(String),
    /// A Savings Plan over one family, or every family: the share is in USD per hour.
    Spend(Option<String>),
}

/// This cluster's part of one commitment.
#[derive(Debug, Clone, PartialEq)]
pub struct Cover {
    /// The Commitment's name.
    pub name: String,
    /// What it covers.
    pub covers: Covers,
    /// The cluster's share: instances, or USD per hour.
    pub share: f64,
    /// The rate covered usage is priced at.
    pub rate: Rate,
}

/// The price changes of one policy revision for one cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pricing {
    /// Highest weight first; among equal weights, by name descending (Karpenter's order).
    pub overlays: Vec<PriceOverlay>,
    /// Reserved Instances first, then Savings Plans, each in name order.
    pub covers: Vec<Cover>,
}

/// On-demand instances the cluster runs, by instance type: the usage its shares cover first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Running on-demand instances per type.
    pub on_demand: BTreeMap<String, u32>,
}

impl Usage {
    /// Counts `(instance type, capacity type)` pairs; only on-demand ones use commitments.
    pub fn count<'a>(instances: impl IntoIterator<Item = (&'a str, CapacityType)>) -> Usage {
        let mut on_demand = BTreeMap::new();
        for (t, c) in instances {
            if c == CapacityType::OnDemand {
                *on_demand.entry(t.to_string()).or_insert(0) += 1;
            }
        }
        Usage { on_demand }
    }

    /// One more on-demand instance of `instance_type`.
    pub fn add(&mut self, instance_type: &str) {
        *self.on_demand.entry(instance_type.to_string()).or_insert(0) += 1;
    }
}

impl Pricing {
    /// The overlays and commitment shares of `policy`'s cluster. Overlays whose price is not well
    /// written, or that select on keys other than offering labels, are left out (validation
    /// reports them); so are commitments without a share for the cluster.
    pub fn from_policy(policy: &EffectivePolicy) -> Pricing {
        let region = policy.fleet_entry.as_ref().map(|c| c.region.as_str());
        let mut overlays: Vec<PriceOverlay> = policy
            .node_overlays
            .iter()
            .filter(|o| o.value.spec.requirements.iter().all(|r| is_offering_key(&r.key)))
            .filter_map(|o| {
                Some(PriceOverlay {
                    name: o.value.metadata.name.clone(),
                    weight: o.value.spec.weight(),
                    requirements: requirements(&o.value),
                    effect: o.value.spec.effect()?,
                })
            })
            // A catalog is one region's: an overlay for another region changes nothing here.
            .filter(|o| match (o.requirements.get(REGION), region) {
                (Some(set), Some(r)) => set.has(r),
                (Some(set), None) => set.allows_absent(),
                (None, _) => true,
            })
            .collect();
        overlays.sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| b.name.cmp(&a.name)));
        let mut covers: Vec<Cover> = policy
            .commitments
            .iter()
            .filter_map(|c| {
                let s = &c.value.spec;
                let covers = match s.commitment_type {
                    CommitmentType::ReservedInstances => Covers::Instances(s.instance_type.clone()?),
                    CommitmentType::SavingsPlan => Covers::Spend(s.instance_family.clone()),
                };
                let share = s.share(policy.fleet.as_ref()?, &policy.cluster)?;
                Some(Cover { name: c.value.metadata.name.clone(), covers, share, rate: s.rate()? })
            })
            .filter(|c| c.share > 0.0)
            .collect();
        covers.sort_by_key(|c| (matches!(c.covers, Covers::Spend(_)), c.name.clone()));
        Pricing { overlays, covers }
    }

    /// True when nothing changes a price.
    pub fn is_empty(&self) -> bool {
        self.overlays.is_empty() && self.covers.is_empty()
    }

    /// The overlay that sets `offering`'s price, if any.
    pub fn overlay_for(&self, t: &InstanceType, offering: &Offering) -> Option<&PriceOverlay> {
        self.overlays.iter().find(|o| matches(&o.requirements, t, offering))
    }

    /// The price the cluster pays for `offering` beyond its commitments.
    pub fn list_price(&self, t: &InstanceType, offering: &Offering) -> f64 {
        self.overlay_for(t, offering).map_or(offering.price, |o| o.effect.apply(offering.price))
    }

    /// What is left of each cover after `usage` (Reserved Instances are used first, as AWS
    /// applies them), in the order of `covers`.
    pub fn remaining(&self, catalog: &Catalog, usage: &Usage) -> Vec<f64> {
        let mut left: Vec<f64> = self.covers.iter().map(|c| c.share).collect();
        for (ty, &count) in &usage.on_demand {
            for _ in 0..count {
                self.consume(catalog, ty, &mut left);
            }
        }
        left
    }

    /// Takes from `left` (one amount per cover) what one more on-demand instance of `ty` uses.
    pub fn consume(&self, catalog: &Catalog, ty: &str, left: &mut [f64]) {
        let published = catalog.get(ty).and_then(on_demand_price);
        let mut need = 1.0_f64;
        for (c, l) in self.covers.iter().zip(left.iter_mut()) {
            if need <= 0.0 {
                break;
            }
            match &c.covers {
                Covers::Instances(t) if t == ty => {
                    let take = need.min(*l);
                    *l -= take;
                    need -= take;
                }
                Covers::Spend(family) if family_ok(family, ty) => {
                    let Some(p) = published else { continue };
                    let cost = need * c.rate.of(p);
                    let take = cost.min(*l);
                    *l -= take;
                    if cost > 0.0 {
                        need -= need * take / cost;
                    }
                }
                _ => {}
            }
        }
    }

    /// The price of one more instance of `offering` with `left` of each cover remaining.
    pub fn price_one(&self, t: &InstanceType, offering: &Offering, left: &[f64]) -> f64 {
        let list = self.list_price(t, offering);
        if offering.capacity_type != CapacityType::OnDemand {
            return list;
        }
        let (mut need, mut paid) = (1.0_f64, 0.0_f64);
        for (c, &l) in self.covers.iter().zip(left) {
            if need <= 0.0 || l <= 0.0 {
                continue;
            }
            match &c.covers {
                Covers::Instances(ty) if *ty == t.name => {
                    let take = need.min(l);
                    paid += take * c.rate.of(offering.price);
                    need -= take;
                }
                Covers::Spend(family) if family_ok(family, &t.name) => {
                    let cost = need * c.rate.of(offering.price);
                    let take = cost.min(l);
                    paid += take;
                    if cost > 0.0 {
                        need -= need * take / cost;
                    }
                }
                _ => {}
            }
        }
        paid + need.max(0.0) * list
    }
}

/// The catalog the solver sees: every offering at the price one more instance costs the
/// cluster, given the on-demand instances it runs. Everything but prices is kept as published.
pub fn priced(catalog: &Catalog, pricing: &Pricing, usage: &Usage) -> Catalog {
    let mut out = catalog.clone();
    if pricing.is_empty() {
        return out;
    }
    let left = pricing.remaining(catalog, usage);
    for t in &mut out.types {
        let published = t.clone();
        // A reserved offering's price ranks capacity already paid for; nothing here changes it.
        for (o, p) in t.offerings.iter_mut().zip(&published.offerings) {
            if p.capacity_type != CapacityType::Reserved {
                o.price = pricing.price_one(&published, p, &left);
            }
        }
    }
    out
}

/// What each running instance costs the cluster, in the order given (oldest first: the first
/// launched use the commitments first): `(instance type, zone, capacity type)` each, priced after
/// those before it. `None` where the catalog does not know the offering.
pub fn running_prices<'a>(
    catalog: &Catalog,
    pricing: &Pricing,
    running: impl IntoIterator<Item = (&'a str, &'a str, CapacityType)>,
) -> Vec<Option<f64>> {
    let mut left = pricing.remaining(catalog, &Usage::default());
    let mut out = Vec::new();
    for (ty, zone, capacity_type) in running {
        let found = catalog.get(ty).and_then(|t| {
            let o = t.offerings.iter().find(|o| o.zone == zone && o.capacity_type == capacity_type)?;
            Some((t, o))
        });
        let found = found.filter(|(_, o)| o.capacity_type != CapacityType::Reserved);
        out.push(found.map(|(t, o)| pricing.price_one(t, o, &left)));
        if capacity_type == CapacityType::OnDemand {
            pricing.consume(catalog, ty, &mut left);
        }
    }
    out
}

/// Settles a plan's new claims against the commitments, in order: each on-demand claim uses
/// what the claims before it left, and takes the option (same pods, another type or zone) that is
/// cheapest at that point. A solve prices every offering as one more instance, so without this a
/// batch needing more nodes than a share still covers would price them all at the covered rate.
pub fn settle(plan: &mut Plan, published: &Catalog, pricing: &Pricing, usage: &Usage) {
    if pricing.covers.is_empty() {
        return;
    }
    let mut left = pricing.remaining(published, usage);
    for claim in &mut plan.claims {
        let mut options: Vec<LaunchOption> = claim.options.iter().cloned().collect();
        for o in &mut options {
            let offering = published.get(&o.instance_type).and_then(|t| {
                let found = t.offerings.iter().find(|p| p.zone == o.zone && p.capacity_type == o.capacity_type)?;
                Some((t, found))
            });
            if let Some((t, p)) = offering
                && p.capacity_type != CapacityType::Reserved
            {
                o.price = pricing.price_one(t, p, &left);
            }
        }
        // Stable: among equal prices the solver's own order stands.
        options.sort_by(|a, b| a.price.total_cmp(&b.price));
        if let Some(best) = options.first() {
            claim.instance_type = best.instance_type.clone();
            claim.zone = best.zone.clone();
            claim.capacity_type = best.capacity_type;
            claim.price = best.price;
        }
        if claim.capacity_type == CapacityType::OnDemand {
            pricing.consume(published, &claim.instance_type, &mut left);
        }
        claim.options = Arc::new(options);
    }
}

/// Whether a Savings Plan over `family` (every family when unset) covers `instance_type`.
fn family_ok(family: &Option<String>, instance_type: &str) -> bool {
    family.as_deref().is_none_or(|f| instance_type.split('.').next() == Some(f))
}

/// The published on-demand price of a type (the lowest over its zones).
fn on_demand_price(t: &InstanceType) -> Option<f64> {
    t.offerings.iter().filter(|o| o.capacity_type == CapacityType::OnDemand).map(|o| o.price).reduce(f64::min)
}

/// Whether an offering meets an overlay's requirements: the type's labels, the offering's zone
/// and capacity type (a region requirement is met by any offering: a catalog is one region's).
fn matches(reqs: &Requirements, t: &InstanceType, offering: &Offering) -> bool {
    reqs.iter().all(|(k, set)| match k {
        ZONE => set.has(&offering.zone),
        CAPACITY_TYPE => set.has(offering.capacity_type.label()),
        REGION => true,
        _ => match t.label(k) {
            Some(v) => set.has(&v),
            None => set.allows_absent(),
        },
    })
}

/// An overlay's requirements in the scheduler's form.
fn requirements(o: &NodeOverlay) -> Requirements {
    let reqs: Vec<_> = o.spec.requirements.iter().map(|r| r.as_requirement()).collect();
    Requirements::from_policy(&reqs)
}

#[cfg(test)]
#[path = "overlay_tests.rs"]
mod tests;
