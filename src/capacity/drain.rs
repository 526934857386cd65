//! Acting on disruption decisions: validation after the delay, replacements first, then
//! cordon, evict (PodDisruptionBudgets respected through the Eviction API, retried each pass)
//! and, once only DaemonSet and mirror pods are left, terminate the instance and remove the
//! node. A node being drained carries the disrupted taint and the reason in annotations, so a
//! restarted daemon finishes the drain.

use std::time::Duration;

use serde_json::json;

use super::{CapacityLoop, Waiting, claim_json, wall};
use crate::cloud::provider::{CloudProvider, Instance};
use crate::cluster::model::ClusterNode;
use crate::cluster::{ClusterApi, ClusterError, Snapshot, Subject};
use crate::disruption::candidate::disrupting;
use crate::disruption::{self, Command, VALIDATION_DELAY, still_valid};
use crate::policy::meta::Labels;
use crate::provisioning::lifecycle::{CLAIM_ANNOTATION, INITIALIZED_ANNOTATION, REGISTRATION_TTL};
use crate::scheduling::catalog::Catalog;
use crate::scheduling::pool::NODE_POOL_LABEL;

pub const REASON_ANNOTATION: &str = "capstan.io/disruption-reason";
pub const DISRUPTION_REVISION_ANNOTATION: &str = "capstan.io/disruption-revision";

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
        let req = disruption::Request { view, now, wall: wall(now) };
        let plan = disruption::plan(req);
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
        if !self.replacing.is_empty() {
            return;
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
        if cmd.replacements.is_empty() {
            self.cordon(&cmd, now).await;
            return;
        }
        let reason = format!("replace-{}", cmd.reason.label());
        for l in &cmd.replacements {
            if self.launch(l, &reason, snapshot, now).await.is_err() {
                self.emit(
                    now,
                    "disruption-cancelled",
                    format!("replacement {} could not launch; nodes kept", l.claim.name),
                    json!({}),
                );
                return;
            }
        }
        self.replacing.push(Waiting { command: cmd, since: now });
    }

    pub(super) async fn await_replacements(&mut self, snapshot: &Snapshot, now: Duration) {
        let waiting = std::mem::take(&mut self.replacing);
        for w in waiting {
            let ready = w.command.replacements.iter().all(|l| {
                snapshot.nodes.iter().any(|n| {
                    n.annotations.get(CLAIM_ANNOTATION) == Some(&l.claim.name)
                        && n.annotations.contains_key(INITIALIZED_ANNOTATION)
                })
            });
            if ready {
                self.cordon(&w.command, now).await;
            } else if now >= w.since + REGISTRATION_TTL {
                self.emit(
                    now,
                    "disruption-cancelled",
                    "replacements did not initialize in time; nodes kept".into(),
                    json!({}),
                );
            } else {
                self.replacing.push(w);
            }
        }
    }

    async fn cordon(&mut self, cmd: &Command, now: Duration) {
        for t in &cmd.targets {
            if let Err(e) = self.cluster.cordon(&t.node).await {
                tracing::warn!(node = %t.node, error = %e, "cordon");
                continue;
            }
            let annotations = Labels::from([
                (REASON_ANNOTATION.to_string(), cmd.reason.label().to_string()),
                (DISRUPTION_REVISION_ANNOTATION.to_string(), self.rules.revision.clone()),
            ]);
            let _ = self.cluster.register(&t.node, &Labels::new(), &[], &annotations).await;
            let message =
                format!("Disrupting node: {} ({}), policy {}", cmd.reason.label(), cmd.detail, self.rules.revision);
            self.cluster.event(&Subject::Node(t.node.clone()), "DisruptionCordoned", &message).await;
            let d = self.decision(
                now,
                "disrupt",
                cmd.reason.label(),
                &format!("Node/{}", t.node),
                json!({"target": t, "detail": cmd.detail}),
            );
            self.decide(d);
            self.emit(
                now,
                "cordon",
                format!("node {} cordoned for {}; draining", t.node, cmd.reason.label()),
                json!({"node": t.node}),
            );
        }
    }

    pub(super) async fn drain(&mut self, snapshot: &Snapshot, instances: &[Instance], now: Duration) {
        for node in snapshot.nodes.iter().filter(|n| disrupting(n)) {
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
                        if self.told.insert(format!("evict:{}", p.key())) {
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
