//! `karpenter.sh/v1alpha1` NodeOverlay, as Karpenter's v1alpha1 API defines it: requirements
//! that select instance-type offerings, and a price (`price`) or a price change
//! (`priceAdjustment`) for them, extra extended resources (`capacity`) and a `weight` that settles
//! which overlay wins. In Karpenter the feature sits behind a feature gate; in capstan an overlay
//! in the repository is the opt-in.
//!
//! ```text
//! base/nodeoverlays/*.yaml ─┐
//!                           ├─ merge (kind, name) ─► NodeOverlay ─effect()─► PriceEffect
//! clusters/<c>/nodeoverlays ┘
//! ```

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;
use super::nodepool::{Operator, Requirement};
use super::quantity::Quantity;

/// The API version of NodeOverlay.
pub const API_VERSION: &str = "karpenter.sh/v1alpha1";

/// Most requirements one overlay may list (Karpenter's CRD limit).
pub const MAX_REQUIREMENTS: usize = 100;

/// Resources `capacity` may not name: an overlay adds extended resources only.
pub const STANDARD_RESOURCES: [&str; 4] = ["cpu", "memory", "ephemeral-storage", "pods"];

/// A NodeOverlay: a price or capacity change for the offerings its requirements select.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeOverlay {
    /// `karpenter.sh/v1alpha1`.
    pub api_version: String,
    /// `NodeOverlay`.
    pub kind: String,
    /// Name and labels; the name keys overrides.
    pub metadata: ObjectMeta,
    /// What the overlay selects and changes.
    pub spec: NodeOverlaySpec,
    /// Written by a controller; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub status: Option<serde_json::Value>,
}

/// What a NodeOverlay selects and what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeOverlaySpec {
    /// Node selector requirements on well-known labels (instance type, family, category,
    /// capacity type, zone, …) that an offering must meet for the overlay to apply.
    pub requirements: Vec<OverlayRequirement>,
    /// The price of matching offerings, USD per hour (`^\d+(\.\d+)?$`); exclusive with
    /// `priceAdjustment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// A change to the price of matching offerings: `+0.5`, `-0.05`, `+10%`, `-28%` (at most
    /// `-100%`); the result is never below 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_adjustment: Option<String>,
    /// Extended resources added to matching instance types (not cpu, memory, pods or
    /// ephemeral-storage).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, Quantity>,
    /// Priority, 1–10000; unset counts as 0. For each offering the matching overlay of highest
    /// weight wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
}

/// A node selector requirement as NodeOverlay takes it (no `minValues`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverlayRequirement {
    /// The label key.
    pub key: String,
    /// In, NotIn, Exists, DoesNotExist, Gt, Lt, Gte or Lte.
    pub operator: Operator,
    /// The values; one non-negative integer for the numeric operators, none for Exists and
    /// DoesNotExist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl OverlayRequirement {
    /// The same requirement in NodePool form, for matching and checks.
    pub fn as_requirement(&self) -> Requirement {
        Requirement { key: self.key.clone(), operator: self.operator, values: self.values.clone(), min_values: None }
    }
}

/// How an overlay changes a price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PriceEffect {
    /// `price`: this price, USD per hour.
    Set(f64),
    /// `priceAdjustment: ±N`: add this many USD per hour.
    Add(f64),
    /// `priceAdjustment: ±N%`: change by this percentage.
    Percent(f64),
}

impl PriceEffect {
    /// Reads `price` (`^\d+(\.\d+)?$`).
    pub fn parse_price(text: &str) -> Option<PriceEffect> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, "1"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (digits(whole) && digits(fraction)).then(|| text.parse().ok().map(PriceEffect::Set))?
    }

    /// Reads `priceAdjustment` as Karpenter's CRD pattern allows it: a signed amount (`+0.5`,
    /// `-.25`), an increase in percent (`+10%`), a decrease of under 100 percent with at most two
    /// whole digits (`-28%`, `-12.5%`), or `-100%`.
    pub fn parse_adjustment(text: &str) -> Option<PriceEffect> {
        let sign = match text.as_bytes().first()? {
            b'+' => 1.0,
            b'-' => -1.0,
            _ => return None,
        };
        let rest = &text[1..];
        match rest.strip_suffix('%') {
            Some(number) => {
                let ok = if sign > 0.0 {
                    is_decimal(number)
                } else {
                    let (whole, fraction) = number.split_once('.').map_or((number, None), |(w, f)| (w, Some(f)));
                    number == "100"
                        || ((1..=2).contains(&whole.len())
                            && whole.bytes().all(|b| b.is_ascii_digit())
                            && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit())))
                };
                ok.then(|| number.parse::<f64>().ok().map(|n| PriceEffect::Percent(sign * n)))?
            }
            None => is_decimal(rest).then(|| rest.parse::<f64>().ok().map(|n| PriceEffect::Add(sign * n)))?,
        }
    }

    /// The price after the change, never below 0.
    pub fn apply(self, price: f64) -> f64 {
        let out = match self {
            PriceEffect::Set(p) => p,
            PriceEffect::Add(d) => price + d,
            PriceEffect::Percent(pct) => price * (1.0 + pct / 100.0),
        };
        out.max(0.0)
    }
}

/// `\d*\.?\d+`: digits, an optional point, then at least one digit.
fn is_decimal(text: &str) -> bool {
    let (whole, fraction) = text.rsplit_once('.').unwrap_or(("", text));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !fraction.is_empty() && digits(whole) && digits(fraction)
}

impl NodeOverlaySpec {
    /// The price change the overlay makes, if it makes one and it is well written.
    pub fn effect(&self) -> Option<PriceEffect> {
        match (&self.price, &self.price_adjustment) {
            (Some(p), None) => PriceEffect::parse_price(p),
            (None, Some(a)) => PriceEffect::parse_adjustment(a),
            _ => None,
        }
    }

    /// The weight, unset counting as 0 as in Karpenter.
    pub fn weight(&self) -> i64 {
        self.weight.unwrap_or(0)
    }
}

/// Whether `key` is a label an offering carries by itself (instance-type labels, zone, capacity
/// type, region): the only keys capstan matches overlays on.
pub fn is_offering_key(key: &str) -> bool {
    super::labels::is_instance_label(key)
        || matches!(key, "topology.kubernetes.io/zone" | "karpenter.sh/capacity-type" | "topology.kubernetes.io/region")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_follow_the_crd_pattern() {
        assert_eq!(PriceEffect::parse_price("0.05"), Some(PriceEffect::Set(0.05)));
        assert_eq!(PriceEffect::parse_price("3"), Some(PriceEffect::Set(3.0)));
        for bad in ["", "-1", "+1", ".5", "1.", "1.2.3", "1e3", "1%", " 1"] {
            assert_eq!(PriceEffect::parse_price(bad), None, "{bad}");
        }
    }

    #[test]
    fn adjustments_follow_the_crd_pattern() {
        assert_eq!(PriceEffect::parse_adjustment("-28%"), Some(PriceEffect::Percent(-28.0)));
        assert_eq!(PriceEffect::parse_adjustment("-12.5%"), Some(PriceEffect::Percent(-12.5)));
        assert_eq!(PriceEffect::parse_adjustment("-100%"), Some(PriceEffect::Percent(-100.0)));
        assert_eq!(PriceEffect::parse_adjustment("+150%"), Some(PriceEffect::Percent(150.0)));
        assert_eq!(PriceEffect::parse_adjustment("-.5"), Some(PriceEffect::Add(-0.5)));
        assert_eq!(PriceEffect::parse_adjustment("+1.25"), Some(PriceEffect::Add(1.25)));
        for bad in ["28%", "-101%", "-120%", "-5.%", "0.5", "+", "-", "+-1", "-1.", "--1", "+1%%", "-100.0%"] {
            assert_eq!(PriceEffect::parse_adjustment(bad), None, "{bad}");
        }
    }

    #[test]
    fn effects_never_go_below_zero() {
        assert_eq!(PriceEffect::Add(-1.0).apply(0.1), 0.0);
        assert_eq!(PriceEffect::Percent(-100.0).apply(0.1), 0.0);
        assert!((PriceEffect::Percent(-50.0).apply(0.2) - 0.1).abs() < 1e-12);
        assert_eq!(PriceEffect::Set(0.3).apply(9.0), 0.3);
    }
}
