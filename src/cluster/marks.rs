//! The node protocol: every mark capstan writes on a Node, in one place. Lifecycle, drain,
//! disruption candidate selection, the simulated cluster and the Kubernetes binding all read
//! and write nodes through these names, so they cannot drift apart.
//!
//! ```text
//! registered   labels (NodePool's, karpenter.sh/nodepool), taints (NodePool's + startup),
//!              annotations capstan.io/nodeclaim, capstan.io/policy-revision; taint
//!              karpenter.sh/unregistered removed, in the same write
//! initialized  annotation capstan.io/initialized
//! disrupted    spec.unschedulable, taint karpenter.sh/disrupted:NoSchedule, annotations
//!              capstan.io/disruption-{reason,revision,replacements}: ONE write
//!              (`ClusterApi::mark_for_disruption`), undone by ONE write (`ClusterApi::uncordon`)
//! ```
//!
//! A node carrying the taint always carries its disruption record ([`DisruptionMarks`]): the
//! drain waits for the recorded replacements before it evicts anything.

use crate::policy::meta::{Labels, Taint, TaintEffect};

use super::model::ClusterNode;

/// The NodeClaim a node was launched for (annotation).
pub const CLAIM: &str = "capstan.io/nodeclaim";
/// The policy revision a node was launched under (annotation).
pub const POLICY_REVISION: &str = "capstan.io/policy-revision";
/// Set once the node is Ready and its startup taints are gone (annotation, value `"true"`).
pub const INITIALIZED: &str = "capstan.io/initialized";
/// The NodePool a node belongs to (label).
pub use crate::scheduling::pool::NODE_POOL_LABEL as NODE_POOL;

/// Every disruption annotation starts with this; [`super::ClusterApi::uncordon`] removes them.
pub const DISRUPTION_PREFIX: &str = "capstan.io/disruption-";
/// Why the node is disrupted: a `Reason` label (`empty`, `underutilized`, `drifted`, `expired`).
pub const DISRUPTION_REASON: &str = "capstan.io/disruption-reason";
/// The policy revision the disruption was decided under.
pub const DISRUPTION_REVISION: &str = "capstan.io/disruption-revision";
/// Comma-separated claim names the node waits for before it is drained; empty for none.
pub const DISRUPTION_REPLACEMENTS: &str = "capstan.io/disruption-replacements";
/// The taint put on a node being drained, so nothing new lands on it and budgets count it.
pub const DISRUPTED_TAINT: &str = "karpenter.sh/disrupted";

/// The taint kOps (1.36+) bakes into the kubelet of every `manager: Karpenter` InstanceGroup's
/// nodes (`NoExecute`), keeping pods off until the NodePool's labels and taints are applied.
/// Registration removes it (any effect); nothing else does.
pub const UNREGISTERED_TAINT: &str = "karpenter.sh/unregistered";

/// Whether a node still carries the unregistered taint.
pub fn unregistered(node: &ClusterNode) -> bool {
    node.taints.iter().any(|t| t.key == UNREGISTERED_TAINT)
}

/// The `karpenter.sh/disrupted:NoSchedule` taint.
pub fn disrupted_taint() -> Taint {
    Taint { key: DISRUPTED_TAINT.into(), value: None, effect: TaintEffect::NoSchedule, time_added: None }
}

/// Whether a node carries the disrupted taint (cordoned for disruption, by capstan or not).
pub fn disrupting(node: &ClusterNode) -> bool {
    node.taints.iter().any(|t| t.key == DISRUPTED_TAINT)
}

/// The NodeClaim a node was launched for, when capstan launched it.
pub fn claim(node: &ClusterNode) -> Option<&str> {
    node.annotations.get(CLAIM).map(String::as_str)
}

/// Whether capstan has seen the node Ready with its startup taints gone.
pub fn initialized(node: &ClusterNode) -> bool {
    node.annotations.contains_key(INITIALIZED)
}

/// The `capstan.io/initialized` annotation, as the lifecycle writes it.
pub fn initialized_annotation() -> Labels {
    Labels::from([(INITIALIZED.to_string(), "true".to_string())])
}

/// What a node being disrupted records about it, written with the cordon and the taint in one
/// write so a drain never finds a cordoned node without the replacements it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisruptionMarks {
    /// The disruption reason's label.
    pub reason: String,
    /// The policy revision the disruption was decided under.
    pub revision: String,
    /// The replacements' claim names; the node is drained once each is initialized.
    pub replacements: Vec<String>,
}

impl DisruptionMarks {
    /// The annotations, as written on the node.
    pub fn annotations(&self) -> Labels {
        Labels::from([
            (DISRUPTION_REASON.to_string(), self.reason.clone()),
            (DISRUPTION_REVISION.to_string(), self.revision.clone()),
            (DISRUPTION_REPLACEMENTS.to_string(), self.replacements.join(",")),
        ])
    }

    /// The record on a node; `None` when the node carries no complete one (the reason and the
    /// replacements are required; an empty replacements value means none).
    pub fn read(node: &ClusterNode) -> Option<DisruptionMarks> {
        let reason = node.annotations.get(DISRUPTION_REASON)?;
        let list = node.annotations.get(DISRUPTION_REPLACEMENTS)?;
        Some(DisruptionMarks {
            reason: reason.clone(),
            revision: node.annotations.get(DISRUPTION_REVISION).cloned().unwrap_or_default(),
            replacements: list.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(annotations: Labels) -> ClusterNode {
        ClusterNode {
            name: "n".into(),
            provider_id: "aws:///us-east-1a/i-1".into(),
            labels: Labels::new(),
            taints: vec![disrupted_taint()],
            annotations,
            allocatable: Default::default(),
            ready: true,
            unschedulable: true,
            created_at: Default::default(),
            pods_changed_at: Default::default(),
        }
    }

    #[test]
    fn disruption_marks_read_back_what_they_write() {
        for replacements in [vec![], vec!["a".to_string()], vec!["a".to_string(), "b".to_string()]] {
            let m = DisruptionMarks { reason: "drifted".into(), revision: "main@sha1:1".into(), replacements };
            assert_eq!(DisruptionMarks::read(&node(m.annotations())), Some(m));
        }
    }

    #[test]
    fn an_incomplete_record_reads_as_none() {
        assert_eq!(DisruptionMarks::read(&node(Labels::new())), None);
        let only_reason = Labels::from([(DISRUPTION_REASON.to_string(), "empty".to_string())]);
        assert_eq!(DisruptionMarks::read(&node(only_reason)), None);
        let m = DisruptionMarks { reason: "empty".into(), revision: "r".into(), replacements: vec![] };
        assert!(m.annotations().keys().all(|k| k.starts_with(DISRUPTION_PREFIX)));
    }
}
