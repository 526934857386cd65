//! `karpenter.sh/v1` NodePool, as Karpenter's v1 API defines it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::{GoDuration, NillableDuration};
use super::meta::{CronSchedule, Labels, ObjectMeta, Taint};
use super::quantity::Quantity;

pub const API_VERSION: &str = "karpenter.sh/v1";

/// A NodePool: what nodes Karpenter (and capstan) may launch, and how they are disrupted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePool {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: NodePoolSpec,
    /// Written by a controller; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub status: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePoolSpec {
    pub template: NodeClaimTemplate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption: Option<Disruption>,
    /// Resource ceilings for all nodes of the pool (`cpu`, `memory`, `nodes`, extended resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<BTreeMap<String, Quantity>>,
    /// Priority among NodePools, 1–100; higher is tried first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    /// A static NodePool keeps exactly this many nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeClaimTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    pub spec: NodeClaimTemplateSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Labels,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeClaimTemplateSpec {
    /// Required by Karpenter's CRD (it may be an empty list).
    pub requirements: Vec<Requirement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// Taints a node starts with and removes itself once ready; not considered when scheduling.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_taints: Vec<Taint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after: Option<NillableDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period: Option<GoDuration>,
    pub node_class_ref: NodeClassRef,
}

/// A node selector requirement with Karpenter's `minValues` extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// The least number of distinct values of `key` the launch must be able to choose from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_values: Option<i64>,
}

impl Requirement {
    pub fn new(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.to_string(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
            min_values: None,
        }
    }
}

/// Node selector operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
    Gte,
    Lte,
}

impl Operator {
    /// The numeric operators, whose single value must be a non-negative integer.
    pub fn is_numeric(self) -> bool {
        matches!(self, Operator::Gt | Operator::Lt | Operator::Gte | Operator::Lte)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeClassRef {
    pub group: String,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Disruption {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolidation_policy: Option<ConsolidationPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolidate_after: Option<NillableDuration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<Budget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConsolidationPolicy {
    WhenEmpty,
    WhenEmptyOrUnderutilized,
    /// Like WhenEmptyOrUnderutilized, but acts only when the savings outweigh the disruption.
    Balanced,
}

/// Karpenter's k for `Balanced`: a move is approved at a score of at least 1/k.
pub const BALANCED_K: u32 = 2;
/// The least score a Balanced pool approves without its own threshold: 1/k.
pub const BALANCED_THRESHOLD: f64 = 1.0 / BALANCED_K as f64;
/// The NodePool annotation setting the pool's own Balanced threshold (Karpenter's CRD has no
/// field for it; an annotation keeps the document valid for both).
pub const BALANCED_THRESHOLD_ANNOTATION: &str = "capstan.io/balanced-threshold";
/// The highest threshold the annotation may set.
pub const MAX_BALANCED_THRESHOLD: f64 = 100.0;

/// A threshold as the annotation writes it; `None` unless a finite decimal in
/// (0, [`MAX_BALANCED_THRESHOLD`]].
pub fn parse_balanced_threshold(text: &str) -> Option<f64> {
    let v: f64 = text.trim().parse().ok()?;
    (v.is_finite() && v > 0.0 && v <= MAX_BALANCED_THRESHOLD).then_some(v)
}

/// How many nodes may be disrupted at once, optionally only in a cron window and for some reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Budget {
    /// A count (`5`) or a percentage of the pool's nodes (`10%`).
    pub nodes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<CronSchedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<DisruptionReason>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DisruptionReason {
    Underutilized,
    Empty,
    Drifted,
}

/// A parsed budget `nodes` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetNodes {
    Count(u64),
    Percent(u8),
}

impl BudgetNodes {
    /// Parses `5` or `10%` (0–100 %), as Karpenter's CRD pattern allows.
    pub fn parse(text: &str) -> Option<BudgetNodes> {
        // `^((100|[0-9]{1,2})%|[0-9]+)$`: a percentage is 100 or one or two digits.
        if let Some(p) = text.strip_suffix('%') {
            let ok = p == "100" || (!p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()));
            return ok.then(|| p.parse().ok().filter(|v: &u8| *v <= 100).map(BudgetNodes::Percent))?;
        }
        let ok = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| text.parse().ok().map(BudgetNodes::Count))?
    }

    /// How many of `total` nodes this allows, rounding a percentage up as Karpenter does.
    pub fn allowed(self, total: u64) -> u64 {
        match self {
            BudgetNodes::Count(n) => n,
            BudgetNodes::Percent(p) => (total * p as u64).div_ceil(100),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_nodes_forms() {
        assert_eq!(BudgetNodes::parse("10%"), Some(BudgetNodes::Percent(10)));
        assert_eq!(BudgetNodes::parse("0"), Some(BudgetNodes::Count(0)));
        assert_eq!(BudgetNodes::parse("101%"), None);
        assert_eq!(BudgetNodes::parse("000%"), None);
        assert_eq!(BudgetNodes::parse("05%"), Some(BudgetNodes::Percent(5)));
        assert_eq!(BudgetNodes::parse("ten"), None);
        assert_eq!(BudgetNodes::Percent(10).allowed(15), 2);
    }
}
