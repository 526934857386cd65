//! A cluster's compiled policy: what the capacity loop, the provisioner and the disruption planner
//! take from its effective policy, as plain data — the pools the scheduler uses, each pool's
//! disruption rules and drift hash, and the ClusterPolicy settings.

pub mod buffers;

use std::time::Duration;

use serde::Serialize;

use crate::digest::fnv64;
use crate::policy::EffectivePolicy;
use crate::policy::meta::CronSchedule;
use crate::policy::nodepool::{
    BALANCED_THRESHOLD, BALANCED_THRESHOLD_ANNOTATION, BudgetNodes, ConsolidationPolicy, DisruptionReason, NodePool,
    parse_balanced_threshold,
};
use crate::revision::Revision;
use crate::scheduling::overlay::Pricing;
use crate::scheduling::pool::{self, Limits, PoolSpec};

/// Why a node is voluntarily disrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Reason {
    Empty,
    Underutilized,
    Drifted,
    Expired,
    /// Involuntary: EC2 takes the instance away (spot interruption, scheduled change, …).
    Interrupted,
    /// Voluntary: EC2 recommends moving off a spot instance at elevated risk of interruption;
    /// the node is replaced like a drifted one (budgets, `do-not-disrupt`, replacement first).
    Rebalance,
    /// A static NodePool has more nodes than its `replicas`: the extra nodes are drained and
    /// removed, as the user asked, without disruption budgets.
    Overprovisioned,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::Empty => "empty",
            Reason::Underutilized => "underutilized",
            Reason::Drifted => "drifted",
            Reason::Expired => "expired",
            Reason::Interrupted => "interrupted",
            Reason::Rebalance => "rebalance-recommendation",
            Reason::Overprovisioned => "overprovisioned",
        }
    }
}

/// One disruption budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub nodes: BudgetNodes,
    /// Active from each fire time for `duration`; always active when unset.
    pub schedule: Option<CronSchedule>,
    pub duration: Option<Duration>,
    /// The reasons it limits; every reason when unset.
    pub reasons: Option<Vec<Reason>>,
}

/// Disruption rules of one NodePool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolRules {
    pub name: String,
    pub consolidation: ConsolidationPolicy,
    /// `None` is `Never`.
    pub consolidate_after: Option<Duration>,
    pub expire_after: Option<Duration>,
    pub budgets: Vec<Budget>,
    /// Digest of the NodePool template and its EC2NodeClass: nodes launched under another
    /// digest have drifted.
    pub hash: String,
    /// A static NodePool's node count (`spec.replicas`); `None` for a dynamic pool.
    pub replicas: Option<u64>,
    /// The least Balanced score a consolidation of this pool needs.
    pub balanced_threshold: f64,
}

/// Cluster-wide rules (ClusterPolicy).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRules {
    pub batch_idle: Duration,
    pub batch_max: Duration,
    /// Only nodes whose requested cpu and memory are both below this fraction are consolidated.
    pub utilization_threshold: Option<f64>,
    /// No voluntary disruption of a node (with pods) younger than this.
    pub min_node_lifetime: Option<Duration>,
    pub limits: Limits,
    pub dry_run: bool,
}

/// Everything the loop decides from, for one policy revision.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The policy revision these rules were compiled from (`main@sha1:<sha>` when printed).
    pub revision: Revision,
    /// Highest weight first.
    pub pools: Vec<PoolSpec>,
    /// Same order as `pools`.
    pub pool_rules: Vec<PoolRules>,
    pub cluster: ClusterRules,
    /// NodeOverlay prices and the cluster's share of the fleet's commitments, applied to the
    /// catalog before each solve.
    pub pricing: Pricing,
    /// CapacityBuffers and the ClusterPolicy headroom: room kept for placeholder pods.
    pub buffers: buffers::Buffers,
}

/// Karpenter's default `expireAfter`.
pub const DEFAULT_EXPIRE_AFTER: Duration = Duration::from_secs(720 * 3600);

fn reason(r: DisruptionReason) -> Reason {
    match r {
        DisruptionReason::Underutilized => Reason::Underutilized,
        DisruptionReason::Empty => Reason::Empty,
        DisruptionReason::Drifted => Reason::Drifted,
    }
}

/// The drift digest of a pool: its template and its node class's spec.
pub fn pool_hash(pool: &NodePool, policy: &EffectivePolicy) -> String {
    let mut bytes = serde_json::to_vec(&pool.spec.template).unwrap_or_default();
    if let Some(class) = policy.node_class(&pool.spec.template.spec.node_class_ref.name) {
        bytes.extend(serde_json::to_vec(&class.value.spec).unwrap_or_default());
    }
    format!("{:016x}", fnv64(&bytes))
}

fn pool_rules(pool: &NodePool, policy: &EffectivePolicy) -> PoolRules {
    let d = pool.spec.disruption.clone();
    let budgets = d
        .as_ref()
        .map(|d| {
            d.budgets
                .iter()
                .filter_map(|b| {
                    Some(Budget {
                        nodes: BudgetNodes::parse(&b.nodes)?,
                        schedule: b.schedule.clone(),
                        duration: b.duration.as_ref().map(|d| d.duration()),
                        reasons: b.reasons.as_ref().map(|rs| rs.iter().copied().map(reason).collect()),
                    })
                })
                .collect::<Vec<_>>()
        })
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| {
            vec![Budget { nodes: BudgetNodes::Percent(10), schedule: None, duration: None, reasons: None }]
        });
    PoolRules {
        name: pool.metadata.name.clone(),
        consolidation: d
            .as_ref()
            .and_then(|d| d.consolidation_policy)
            .unwrap_or(ConsolidationPolicy::WhenEmptyOrUnderutilized),
        consolidate_after: match d.as_ref().and_then(|d| d.consolidate_after.as_ref()) {
            Some(n) => n.duration(),
            None => Some(Duration::ZERO),
        },
        expire_after: match &pool.spec.template.spec.expire_after {
            Some(n) => n.duration(),
            None => Some(DEFAULT_EXPIRE_AFTER),
        },
        budgets,
        hash: pool_hash(pool, policy),
        replicas: pool.spec.replicas.map(|r| r.max(0) as u64),
        balanced_threshold: pool
            .metadata
            .annotations
            .get(BALANCED_THRESHOLD_ANNOTATION)
            .and_then(|t| parse_balanced_threshold(t))
            .unwrap_or(BALANCED_THRESHOLD),
    }
}

impl Rules {
    pub fn from_policy(policy: &EffectivePolicy, revision: Revision) -> Rules {
        let pools = pool::pools(policy);
        let pool_rules =
            pools.iter().filter_map(|p| policy.node_pool(&p.name)).map(|p| pool_rules(&p.value, policy)).collect();
        let spec = policy.cluster_policy.as_ref().map(|c| c.value.spec.clone()).unwrap_or_default();
        let batching = spec.batching.clone();
        let consolidation = spec.consolidation.clone();
        let cluster = ClusterRules {
            batch_idle: batching
                .as_ref()
                .and_then(|b| b.idle_duration.as_ref())
                .map_or(Duration::from_secs(1), |d| d.duration()),
            batch_max: batching
                .as_ref()
                .and_then(|b| b.max_duration.as_ref())
                .map_or(Duration::from_secs(10), |d| d.duration()),
            utilization_threshold: consolidation.as_ref().and_then(|c| c.utilization_threshold),
            min_node_lifetime: consolidation.as_ref().and_then(|c| c.min_node_lifetime.as_ref()).map(|d| d.duration()),
            limits: spec.limits.as_ref().map(Limits::from_quantities).unwrap_or_default(),
            dry_run: spec.dry_run.unwrap_or(false),
        };
        // Headroom never targets a static pool: its node count is `replicas`, not pods.
        let dynamic: Vec<PoolSpec> = pools
            .iter()
            .zip(&pool_rules)
            .filter(|(_, r): &(_, &PoolRules)| r.replicas.is_none())
            .map(|(p, _)| p.clone())
            .collect();
        let buffers = buffers::Buffers::from_policy(policy, &dynamic);
        Rules { revision, pools, pool_rules, cluster, pricing: Pricing::from_policy(policy), buffers }
    }

    pub fn pool(&self, name: &str) -> Option<(usize, &PoolSpec, &PoolRules)> {
        let i = self.pools.iter().position(|p| p.name == name)?;
        Some((i, &self.pools[i], &self.pool_rules[i]))
    }
}
