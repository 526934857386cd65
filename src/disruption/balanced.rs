//! Balanced consolidation (Karpenter 1.14): a move is worth making when the share of its
//! NodePool's cost it saves is large enough against the share of the pool's disruption it
//! causes.
//!
//! ```text
//! score = (savings / pool cost) ÷ (move disruption / pool disruption)     approved when ≥ 1/k
//! node disruption = 1 + Σ max(0, pod eviction cost)                        k = 2 for Balanced
//! pod eviction cost = clamp(1 + deletion-cost / 2^27 + priority / 2^25, -10, 10)
//! ```
//!
//! The denominators are every node of the pool, candidates or not. A move across pools is
//! judged by each Balanced source pool on its share of the net savings (in proportion to the
//! price of its nodes in the move); every one must approve. Pools with another policy are not
//! scored. Karpenter fixes k = 2 (a score of at least 0.5) and has no field for it; capstan
//! reads a pool's own threshold from its `capstan.io/balanced-threshold` annotation
//! ([`THRESHOLD_ANNOTATION`]), which Karpenter's CRDs accept and ignore, so a NodePool stays
//! valid for both.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cloud::provider::Instance;
use crate::cluster::model::{ClusterPod, Snapshot};
use crate::scheduling::pool::NODE_POOL_LABEL;

pub use crate::policy::nodepool::{
    BALANCED_K, BALANCED_THRESHOLD, BALANCED_THRESHOLD_ANNOTATION as THRESHOLD_ANNOTATION, MAX_BALANCED_THRESHOLD,
    parse_balanced_threshold as parse_threshold,
};
/// What disrupting a node costs before any of its pods (cordon, drain, a replacement's wait).
pub const NODE_DISRUPTION_COST: f64 = 1.0;

pub use crate::cluster::model::eviction_cost;

/// A pod's eviction cost from its deletion cost and priority; nothing for a placeholder, which
/// is never evicted.
pub fn pod_cost(pod: &ClusterPod) -> f64 {
    if crate::provisioning::buffer::is_placeholder(&pod.key()) {
        return 0.0;
    }
    pod.eviction.cost()
}

/// A node's disruption cost from its pods' eviction costs; a pod never lowers it.
pub fn node_cost(pod_costs: impl IntoIterator<Item = f64>) -> f64 {
    NODE_DISRUPTION_COST + pod_costs.into_iter().map(|c| c.max(0.0)).sum::<f64>()
}

/// A pool's denominators: the price of all its nodes and their disruption costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub cost: f64,
    pub disruption: f64,
}

/// Per pool: the price of every node with a live instance, and every node's disruption cost
/// (pods a drain would evict).
pub fn totals(snapshot: &Snapshot, instances: &[Instance]) -> BTreeMap<String, Totals> {
    let mut pods: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for p in snapshot.pods.iter().filter(|p| !p.is_node_bound()) {
        if let Some(n) = &p.node {
            pods.entry(n.as_str()).or_default().push(pod_cost(p));
        }
    }
    let price: BTreeMap<&str, f64> = instances.iter().map(|i| (i.id.as_str(), i.price)).collect();
    let mut out: BTreeMap<String, Totals> = BTreeMap::new();
    for n in &snapshot.nodes {
        let Some(pool) = n.labels.get(NODE_POOL_LABEL) else { continue };
        let t = out.entry(pool.clone()).or_default();
        t.disruption += node_cost(pods.get(n.name.as_str()).into_iter().flatten().copied());
        t.cost += n.instance_id().and_then(|id| price.get(id)).copied().unwrap_or_default();
    }
    out
}

/// A move scored against one pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// Savings over the pool's cost.
    pub savings_fraction: f64,
    /// The move's disruption over the pool's.
    pub disruption_fraction: f64,
    /// The least score the pool approves.
    pub threshold: f64,
}

impl Score {
    /// The ratio; 0 without savings, unbounded without disruption.
    pub fn value(&self) -> f64 {
        if self.savings_fraction <= 0.0 {
            0.0
        } else if self.disruption_fraction == 0.0 {
            f64::INFINITY
        } else {
            self.savings_fraction / self.disruption_fraction
        }
    }

    pub fn approved(&self) -> bool {
        self.value() >= self.threshold
    }
}

/// Scores `savings` (price per hour) and `disruption` against a pool's totals. Empty totals
/// leave nothing to compare with: the score is 0.
pub fn score(savings: f64, disruption: f64, totals: Totals, threshold: f64) -> Score {
    if totals.cost <= 0.0 || totals.disruption <= 0.0 {
        return Score { savings_fraction: 0.0, disruption_fraction: 0.0, threshold };
    }
    Score { savings_fraction: savings / totals.cost, disruption_fraction: disruption / totals.disruption, threshold }
}

/// One source node of a move: its pool, price and disruption cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Source<'a> {
    pub pool: &'a str,
    pub price: f64,
    pub disruption: f64,
}

/// A move scored by each Balanced pool it takes nodes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scored {
    /// The nodes the move removes.
    pub nodes: Vec<String>,
    /// Price per hour saved by the whole move.
    pub savings: f64,
    /// The score of each Balanced source pool.
    pub pools: BTreeMap<String, Score>,
    pub approved: bool,
}

impl Scored {
    /// The lowest pool score: the one that decides.
    pub fn value(&self) -> f64 {
        self.pools.values().map(Score::value).fold(f64::INFINITY, f64::min)
    }

    /// For people: `score 0.62 ≥ 0.50 (savings 12.5%, disruption 3.8%)`, per pool.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .pools
            .iter()
            .map(|(pool, s)| {
                format!(
                    "NodePool {pool} Balanced score {:.2} {} {:.2} (savings {:.1}% of its cost, disruption {:.1}% of its total)",
                    s.value(),
                    if s.approved() { "≥" } else { "<" },
                    s.threshold,
                    s.savings_fraction * 100.0,
                    s.disruption_fraction * 100.0
                )
            })
            .collect();
        parts.join("; ")
    }
}

/// Scores a move of net `savings` from `sources` for every pool `balanced` gives a threshold;
/// `None` when no source pool is Balanced.
pub fn evaluate(
    nodes: Vec<String>,
    savings: f64,
    sources: &[Source],
    balanced: impl Fn(&str) -> Option<f64>,
    totals: &BTreeMap<String, Totals>,
) -> Option<Scored> {
    let source_cost: f64 = sources.iter().map(|s| s.price).sum();
    let mut by_pool: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for s in sources {
        let e = by_pool.entry(s.pool).or_default();
        e.0 += s.price;
        e.1 += s.disruption;
    }
    let several = by_pool.len() > 1;
    let mut pools = BTreeMap::new();
    for (pool, (price, disruption)) in &by_pool {
        let Some(threshold) = balanced(pool) else { continue };
        let share = if several && source_cost > 0.0 { savings * price / source_cost } else { savings };
        let t = totals.get(*pool).copied().unwrap_or_default();
        pools.insert(pool.to_string(), score(share, *disruption, t, threshold));
    }
    if pools.is_empty() {
        return None;
    }
    let approved = pools.values().all(Score::approved);
    Some(Scored { nodes, savings, pools, approved })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_cost_follows_deletion_cost_and_priority() {
        assert_eq!(eviction_cost(None, None), 1.0);
        assert_eq!(eviction_cost(Some(2f64.powi(27)), None), 2.0);
        assert_eq!(eviction_cost(None, Some(1 << 25)), 2.0);
        assert_eq!(eviction_cost(Some(2_147_483_647.0), Some(1_000_000_000)), 10.0, "clamped");
        assert_eq!(eviction_cost(Some(-2_147_483_647.0), None), -10.0, "clamped");
        assert_eq!(node_cost([1.0, -10.0, 2.0]), 4.0, "a negative pod adds nothing");
    }

    #[test]
    fn a_uniform_pool_replace_to_half_the_price_is_on_the_threshold() {
        // Ten nodes at 4.84 a day, eight pods each: a replace saving 2.42 and evicting eight.
        let totals = Totals { cost: 48.40, disruption: 90.0 };
        let s = score(2.42, 9.0, totals, BALANCED_THRESHOLD);
        assert!((s.value() - 0.5).abs() < 1e-12, "{}", s.value());
        assert!(s.approved());
    }

    #[test]
    fn a_threshold_is_a_finite_decimal_in_range() {
        assert_eq!(parse_threshold("0.25"), Some(0.25));
        assert_eq!(parse_threshold(" 2 "), Some(2.0));
        for bad in ["0", "-1", "NaN", "inf", "1e9", "half", ""] {
            assert_eq!(parse_threshold(bad), None, "{bad}");
        }
    }

    #[test]
    fn no_savings_is_never_approved() {
        let t = Totals { cost: 10.0, disruption: 10.0 };
        assert_eq!(score(0.0, 1.0, t, BALANCED_THRESHOLD).value(), 0.0);
        assert!(!score(-1.0, 1.0, t, BALANCED_THRESHOLD).approved());
        assert!(!score(1.0, 1.0, Totals::default(), BALANCED_THRESHOLD).approved());
    }

    #[test]
    fn a_cross_pool_move_shares_its_savings_by_source_price() {
        let totals = BTreeMap::from([
            ("a".to_string(), Totals { cost: 10.0, disruption: 20.0 }),
            ("b".to_string(), Totals { cost: 10.0, disruption: 20.0 }),
        ]);
        let sources =
            [Source { pool: "a", price: 3.0, disruption: 2.0 }, Source { pool: "b", price: 1.0, disruption: 2.0 }];
        let s = evaluate(vec![], 2.0, &sources, |_| Some(BALANCED_THRESHOLD), &totals).unwrap();
        // a: (2 × 3/4) / 10 = 0.15 over 2/20 = 0.1 → 1.5; b: (2 × 1/4) / 10 = 0.05 over 0.1 → 0.5.
        assert!((s.pools["a"].value() - 1.5).abs() < 1e-12);
        assert!((s.pools["b"].value() - 0.5).abs() < 1e-12);
        assert!(s.approved);
        assert!(evaluate(vec![], 2.0, &sources, |_| None, &totals).is_none(), "only Balanced pools score");
    }
}
