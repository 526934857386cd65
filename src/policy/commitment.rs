//! `capstan.io/v1alpha1` Commitment: a Savings Plan or Reserved Instances bought for a region,
//! kept once for the whole fleet under `commitments/` at the repository root.
//!
//! The commitment covers on-demand usage in its region across every cluster of the fleet in
//! that region. `shares` splits it between those clusters (in instances for Reserved Instances,
//! in USD per hour of commitment for a Savings Plan); without `shares` it is split evenly between
//! the fleet's clusters in the region. Each cluster prices the part of its share its own nodes
//! do not already use at the commitment's rate, and everything beyond at the on-demand price.
//!
//! ```text
//! commitments/*.yaml ─load─► Commitment ─check(fleet)─► share(cluster) ─► scheduling::overlay
//! ```

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::capstan::FleetSpec;
use super::meta::ObjectMeta;
use super::nodeoverlay::PriceEffect;

/// The API version of Commitment.
pub const API_VERSION: &str = super::capstan::API_VERSION;

/// A Savings Plan or a Reserved Instances purchase, for one region of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Commitment {
    /// `capstan.io/v1alpha1`.
    pub api_version: String,
    /// `Commitment`.
    pub kind: String,
    /// The commitment's name.
    pub metadata: ObjectMeta,
    /// What was bought and how it is split.
    pub spec: CommitmentSpec,
}

/// The two ways AWS sells committed use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CommitmentType {
    /// `count` instances of one `instanceType`, regional scope.
    ReservedInstances,
    /// An hourly spend (`hourlyCommitment`, at the discounted rates) over one `instanceFamily`
    /// (an EC2 Instance Savings Plan) or every family (a Compute Savings Plan).
    SavingsPlan,
}

/// What was bought, where, at what rate, and each cluster's part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitmentSpec {
    /// ReservedInstances or SavingsPlan.
    #[serde(rename = "type")]
    pub commitment_type: CommitmentType,
    /// The AWS region it was bought in, e.g. us-east-1; clusters in other regions never use it.
    pub region: String,
    /// Reserved Instances: the instance type reserved, e.g. m5.large.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Savings Plan: the instance family it covers (EC2 Instance Savings Plan); unset covers every
    /// family (Compute Savings Plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_family: Option<String>,
    /// Reserved Instances: how many instances are reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// Savings Plan: the committed spend, USD per hour at the discounted rates (`^\d+(\.\d+)?$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly_commitment: Option<String>,
    /// Reserved Instances: the effective hourly rate of one reserved instance, upfront payment
    /// spread over the term included (`^\d+(\.\d+)?$`); exclusive with `discount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// The covered rate as a change to the on-demand price, e.g. `-28%` (more than -100%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<String>,
    /// Each cluster's part (instances, or USD per hour); clusters not listed get none. Unset:
    /// an even split between the fleet's clusters in the region.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shares: BTreeMap<String, f64>,
}

/// The rate covered usage is priced at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// USD per instance-hour.
    Price(f64),
    /// A fraction of the on-demand price (0.72 for `-28%`).
    Fraction(f64),
}

impl Rate {
    /// The covered price of an offering whose on-demand price is `on_demand`.
    pub fn of(self, on_demand: f64) -> f64 {
        match self {
            Rate::Price(p) => p,
            Rate::Fraction(f) => on_demand * f,
        }
    }
}

impl CommitmentSpec {
    /// The total bought: instances for Reserved Instances, USD per hour for a Savings Plan.
    pub fn total(&self) -> Option<f64> {
        match self.commitment_type {
            CommitmentType::ReservedInstances => self.count.filter(|c| *c > 0).map(|c| c as f64),
            CommitmentType::SavingsPlan => match PriceEffect::parse_price(self.hourly_commitment.as_deref()?)? {
                PriceEffect::Set(p) => Some(p),
                _ => None,
            },
        }
    }

    /// The covered rate, when it is well written.
    pub fn rate(&self) -> Option<Rate> {
        match (&self.price, &self.discount) {
            (Some(p), None) => match PriceEffect::parse_price(p)? {
                PriceEffect::Set(p) => Some(Rate::Price(p)),
                _ => None,
            },
            (None, Some(d)) => match PriceEffect::parse_adjustment(d)? {
                PriceEffect::Percent(pct) if pct > -100.0 && pct < 0.0 => Some(Rate::Fraction(1.0 + pct / 100.0)),
                _ => None,
            },
            _ => None,
        }
    }

    /// The part of the commitment `cluster` may use, given the fleet: its entry in `shares`, or
    /// an even split between the fleet's clusters in the region. `None` when the cluster is not in
    /// the region.
    pub fn share(&self, fleet: &FleetSpec, cluster: &str) -> Option<f64> {
        let here: Vec<&str> =
            fleet.clusters.iter().filter(|c| c.region == self.region).map(|c| c.name.as_str()).collect();
        if !here.contains(&cluster) {
            return None;
        }
        let total = self.total()?;
        if self.shares.is_empty() {
            return Some(total / here.len() as f64);
        }
        Some(self.shares.get(cluster).copied().unwrap_or(0.0).max(0.0))
    }
}

/// One line per commitment in the cluster's region: what it is and the cluster's share, for
/// `render`'s header.
pub fn render_lines(policy: &super::EffectivePolicy) -> Vec<String> {
    let Some(fleet) = &policy.fleet else { return Vec::new() };
    policy
        .commitments
        .iter()
        .map(|c| {
            let s = &c.value.spec;
            let what = match s.commitment_type {
                CommitmentType::ReservedInstances => format!(
                    "Reserved Instances, {} × {}",
                    s.count.unwrap_or_default(),
                    s.instance_type.as_deref().unwrap_or("?")
                ),
                CommitmentType::SavingsPlan => format!(
                    "Savings Plan, ${}/h over {}",
                    s.hourly_commitment.as_deref().unwrap_or("?"),
                    s.instance_family.as_deref().map_or("every family".to_string(), |f| format!("family {f}"))
                ),
            };
            let unit = if s.commitment_type == CommitmentType::ReservedInstances { " instance(s)" } else { " $/h" };
            let share = s.share(fleet, &policy.cluster).map_or("none".to_string(), |v| format!("{v}{unit}"));
            format!("{} in {} ({what}); this cluster's share: {share}", c.value.metadata.name, s.region)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(clusters: &[(&str, &str)]) -> FleetSpec {
        let yaml = serde_json::json!({
            "clusters": clusters.iter().map(|(n, r)| serde_json::json!({
                "name": n, "kopsName": format!("{n}.example.com"), "stateStore": "s3://b", "region": r,
            })).collect::<Vec<_>>(),
        });
        serde_json::from_value(yaml).expect("a fleet")
    }

    fn ri(count: i64, shares: &[(&str, f64)]) -> CommitmentSpec {
        CommitmentSpec {
            commitment_type: CommitmentType::ReservedInstances,
            region: "us-east-1".into(),
            instance_type: Some("m5.large".into()),
            instance_family: None,
            count: Some(count),
            hourly_commitment: None,
            price: Some("0.06".into()),
            discount: None,
            shares: shares.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn shares_split_evenly_in_the_region_or_as_written() {
        let f = fleet(&[("dev", "us-east-1"), ("prod", "us-east-1"), ("eu", "eu-west-1")]);
        assert_eq!(ri(4, &[]).share(&f, "dev"), Some(2.0));
        assert_eq!(ri(4, &[]).share(&f, "eu"), None);
        assert_eq!(ri(4, &[("prod", 4.0)]).share(&f, "dev"), Some(0.0));
        assert_eq!(ri(4, &[("prod", 4.0)]).share(&f, "prod"), Some(4.0));
    }

    #[test]
    fn rates_read_price_or_discount() {
        assert_eq!(ri(1, &[]).rate(), Some(Rate::Price(0.06)));
        let mut sp = ri(1, &[]);
        (sp.price, sp.discount) = (None, Some("-28%".into()));
        assert!(matches!(sp.rate(), Some(Rate::Fraction(f)) if (f - 0.72).abs() < 1e-12));
        sp.discount = Some("-100%".into());
        assert_eq!(sp.rate(), None);
        sp.discount = Some("+10%".into());
        assert_eq!(sp.rate(), None);
    }
}
