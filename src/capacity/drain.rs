//! Acting on disruption decisions: validation after the delay; then the nodes are cordoned
//! (tainted `karpenter.sh/disrupted`, so budgets count them at once) and their replacements
//! launched; once every replacement is initialized the pods are evicted (PodDisruptionBudgets
//! respected through the Eviction API, retried each pass) and, when only DaemonSet and mirror
//! pods are left, the instance is terminated and the node removed.
//!
//! Everything a drain needs is on the node (taint, reason, revision, the replacements' claim
//! names), so a restarted daemon finishes what the last one started.

use std::time::Duration;

use serde_json::json;

use super::{CapacityLoop, Waiting, claim_json, wall};
use crate::cloud::provider::{CloudProvider, Instance};
use crate::cluster::model::ClusterNode;
use crate::cluster::{ClusterApi, ClusterError, Snapshot, Subject};
use crate::disruption::candidate::disrupting;
use crate::disruption::{self, Command, VALIDATION_DELAY, still_valid};
use crate::policy::meta::Labels;
use crate::provisioning::lifecycle::{CLAIM_ANNOTATION, INITIALIZED_ANNOTATION};
use crate::scheduling::catalog::Catalog;
use crate::scheduling::pool::NODE_POOL_LABEL;

// All start with `cluster::model::DISRUPTION_ANNOTATION_PREFIX`, so `uncordon` clears them.
pub const REASON_ANNOTATION: &str = "capstan.io/disruption-reason";
pub const DISRUPTION_REVISION_ANNOTATION: &str = "capstan.io/disruption-revision";
/// Comma-separated claim names the node waits for before it is drained.
pub const REPLACEMENTS_ANNOTATION: &str = "capstan.io/disruption-replacements";

/// Where a drained node's replacements stand.
enum Replacements {
    /// None, or all initialized: drain.
    Ready,
    /// Still launching or registering.
    Waiting,
    /// A replacement is gone without becoming a node: give the node back.
    Lost(String),
}

fn replacements(node: &ClusterNode, snapshot: &Snapshot, instances: &[Instance]) -> Replacements {
    let Some(list) = node.annotations.get(REPLACEMENTS_ANNOTATION).filter(|l| !l.is_empty()) else {
        return Replacements::Ready;
    };
    let mut waiting = false;
    for claim in list.split(',') {
        let initialized = snapshot.nodes.iter().any(|n| {
            n.annotations.get(CLAIM_ANNOTATION).map(String::as_str) == Some(claim)
                && n.annotations.contains_key(INITIALIZED_ANNOTATION)
        });
        if initialized {
            continue;
        }
        if instances.iter().any(|i| i.claim == claim) {
            waiting = true;
        } else {
            return Replacements::Lost(claim.to_string());
        }
    }
    if waiting { Replacements::Waiting } else { Replacements::Ready }
}

impl<C: CloudProvider, K: ClusterApi> CapacityLoop<C, K> {
    pub(super) fn disruption_due(&self, now: Duration) -> bool {
        now >= self.next_disruption || self.validating.as_ref().is_some_and(|w| now >= w.since + VALIDATION_DELAY)
    }

    pub(super) async fn disrupt(
        &mut self,
        snapshot: &Snapshot,
        instances: &[Instance],
        catalog: &Catalog,
        now: Duration,
    ) {
        let view = crate::provisioning::Request { snapshot, instances, rules: &self.rules, catalog };
        let plan = disruption::plan(disruption::Request { view, now, wall: wall(now) });
        for (node, why) in &plan.kept {
            tracing::debug!(%node, "not disrupted: {why}");
        }
        match self.validating.take() {
            Some(w) if now >= w.since + VALIDATION_DELAY => {
                if still_valid(&w.command, &plan) {
                    self.execute(w.command, snapshot, now).await;
                } else {
                    let nodes: Vec<&str> = w.command.nodes().collect();
                    self.emit(
                        now,
                        "disruption-cancelled",
                        format!(
                            "{} of {} no longer holds after {}s; nothing done",
                            w.command.reason.label(),
                            nodes.join(", "),
                            VALIDATION_DELAY.as_secs()
                        ),
                        json!({"reason": w.command.reason.label(), "nodes": nodes}),
                    );
                }
                return;
            }
            Some(w) => {
                self.validating = Some(w);
                return;
            }
            None => {}
        }
        if let Some(cmd) = plan.commands.into_iter().next() {
            let nodes: Vec<&str> = cmd.nodes().collect();
            self.emit(
                now,
                "disruption-decision",
                format!(
                    "{}: {} ({}); saves ${:.4}/h; acting after {}s if it still holds",
                    cmd.reason.label(),
                    nodes.join(", "),
                    cmd.detail,
                    cmd.savings,
                    VALIDATION_DELAY.as_secs()
                ),
                json!({
                    "reason": cmd.reason.label(),
                    "nodes": cmd.targets,
                    "replacements": cmd.replacements.iter().map(claim_json).collect::<Vec<_>>(),
                    "savingsPerHour": cmd.savings,
                    "detail": cmd.detail,
                }),
            );
            self.validating = Some(Waiting { command: cmd, since: now });
        }
    }

    async fn execute(&mut self, cmd: Command, snapshot: &Snapshot, now: Duration) {
        if self.rules.cluster.dry_run {
            for t in &cmd.targets {
                let d =
                    self.decision(now, "disrupt (dry run)", cmd.reason.label(), &format!("Node/{}", t.node), json!(t));
                self.decide(d);
            }
            return;
        }
        self.cordon(&cmd, now).await;
        let reason = format!("replace-{}", cmd.reason.label());
        for l in &cmd.replacements {
            if self.launch(l, &reason, snapshot, now).await.is_err() {
                for t in &cmd.targets {
                    let _ = self.cluster.uncordon(&t.node).await;
                }
                self.emit(
                    now,
                    "disruption-cancelled",
                    format!("replacement {} could not launch; nodes returned to service", l.claim.name),
                    json!({"claim": l.claim.name}),
                );
                return;
            }
        }
    }

    async fn cordon(&mut self, cmd: &Command, now: Duration) {
        let claims: Vec<&str> = cmd.replacements.iter().map(|l| l.claim.name.as_str()).collect();
        for t in &cmd.targets {
            if let Err(e) = self.cluster.cordon(&t.node).await {
                tracing::warn!(node = %t.node, error = %e, "cordon");
                continue;
            }
            let annotations = Labels::from([
                (REASON_ANNOTATION.to_string(), cmd.reason.label().to_string()),
                (DISRUPTION_REVISION_ANNOTATION.to_string(), self.rules.revision.clone()),
                (REPLACEMENTS_ANNOTATION.to_string(), claims.join(",")),
            ]);
            let _ = self.cluster.register(&t.node, &Labels::new(), &[], &annotations).await;
            let message =
                format!("Disrupting node: {} ({}), policy {}", cmd.reason.label(), cmd.detail, self.rules.revision);
            self.cluster.event(&Subject::Node(t.node.clone()), "DisruptionCordoned", &message).await;
            let detail = json!({"target": t, "detail": cmd.detail, "replacements": claims});
            let d = self.decision(now, "disrupt", cmd.reason.label(), &format!("Node/{}", t.node), detail);
            self.decide(d);
            let waits = if claims.is_empty() { String::new() } else { format!(" once {} is ready", claims.join(", ")) };
            self.emit(
                now,
                "cordon",
                format!("node {} cordoned for {}; draining{waits}", t.node, cmd.reason.label()),
                json!({"node": t.node}),
            );
        }
    }

    pub(super) async fn drain(&mut self, snapshot: &Snapshot, instances: &[Instance], now: Duration) {
        let draining: std::collections::HashSet<&str> =
            snapshot.nodes.iter().filter(|n| disrupting(n)).map(|n| n.name.as_str()).collect();
        self.blocked.retain(|k| {
            snapshot.pods.iter().any(|p| p.spec.name == *k && p.node.as_deref().is_some_and(|n| draining.contains(n)))
        });
        for node in snapshot.nodes.iter().filter(|n| disrupting(n)) {
            match replacements(node, snapshot, instances) {
                Replacements::Waiting => continue,
                Replacements::Lost(claim) => {
                    let _ = self.cluster.uncordon(&node.name).await;
                    self.emit(
                        now,
                        "disruption-cancelled",
                        format!("replacement {claim} for {} is gone; node returned to service", node.name),
                        json!({"node": node.name, "claim": claim}),
                    );
                    continue;
                }
                Replacements::Ready => {}
            }
            let pods: Vec<_> = snapshot.pods_on(&node.name).filter(|p| !p.is_node_bound()).collect();
            if pods.is_empty() {
                self.terminate(node, instances, now).await;
                continue;
            }
            for p in pods {
                match self.cluster.evict(&p.namespace, &p.name).await {
                    Ok(()) => self.emit(
                        now,
                        "evict",
                        format!("evicted pod {} from {}", p.key(), node.name),
                        json!({"pod": p.key(), "node": node.name}),
                    ),
                    Err(ClusterError::Blocked(why)) => {
                        if self.blocked.insert(p.key()) {
                            self.emit(
                                now,
                                "evict-blocked",
                                format!("{why}; retrying"),
                                json!({"pod": p.key(), "node": node.name}),
                            );
                        }
                    }
                    Err(e) => tracing::warn!(pod = %p.key(), error = %e, "evict"),
                }
            }
        }
    }

    async fn terminate(&mut self, node: &ClusterNode, instances: &[Instance], now: Duration) {
        let instance = node.instance_id().and_then(|id| instances.iter().find(|i| i.id == id));
        if let Some(i) = instance
            && let Err(e) = self.cloud.delete(&i.id).await
        {
            tracing::warn!(instance = %i.id, error = %e, "terminate");
            return;
        }
        if let Err(e) = self.cluster.delete_node(&node.name).await {
            tracing::warn!(node = %node.name, error = %e, "delete node");
            return;
        }
        let reason = node.annotations.get(REASON_ANNOTATION).cloned().unwrap_or_else(|| "disrupted".into());
        let pool = node.labels.get(NODE_POOL_LABEL).cloned().unwrap_or_default();
        let detail = json!({
            "node": node.name,
            "instance": instance.map(|i| i.id.clone()),
            "instanceType": instance.map(|i| i.instance_type.clone()),
            "pricePerHour": instance.map(|i| i.price),
            "nodePool": pool,
            "decidedUnder": node.annotations.get(DISRUPTION_REVISION_ANNOTATION),
        });
        let object = format!(
            "NodeClaim/{}",
            node.annotations.get(CLAIM_ANNOTATION).cloned().unwrap_or_else(|| node.name.clone())
        );
        let d = self.decision(now, "terminate", &reason, &object, detail.clone());
        self.decide(d);
        if let Some(m) = &self.metrics {
            m.terminated
                .get_or_create(&super::report::TerminationLabels { nodepool: pool, reason: reason.clone() })
                .inc();
        }
        self.emit(
            now,
            "terminate",
            format!("node {} drained; instance terminated and node removed ({reason})", node.name),
            detail,
        );
    }
}
