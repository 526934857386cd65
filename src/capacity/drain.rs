//! Acting on disruption decisions: validation after the delay; then each node is marked for
//! disruption in one write (cordoned, tainted `karpenter.sh/disrupted` so budgets count it at
//! once, and annotated with its reason, revision and replacements) and the replacements are
//! launched. The drain itself is decided by [`crate::disruption::drain::steps`] (evict once
//! every replacement is initialized, terminate when only DaemonSet and mirror pods are left,
//! give the node back when a replacement is lost); this file only executes those steps and
//! records what happened. PodDisruptionBudgets are respected through the Eviction API, and a
//! refused eviction is retried each pass.
//!
//! Everything a drain needs is on the node ([`crate::cluster::marks`]), so a restarted daemon
//! finishes what the last one started.

use std::time::Duration;

use serde_json::json;

use super::{CapacityLoop, Waiting, claim_json, wall};
use crate::cloud::provider::{CloudProvider, Instance};
use crate::cluster::marks::DisruptionMarks;
use crate::cluster::{ClusterApi, ClusterError, Snapshot, Subject};
use crate::disruption::candidate::disrupting;
use crate::disruption::drain::{ReturnCause, Step, steps};
use crate::disruption::{self, Command, VALIDATION_DELAY, still_valid};
use crate::provisioning::buffer;
use crate::scheduling::catalog::Catalog;

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
        // Capacity buffers: placeholders occupy the room kept for them, so it is not consolidated.
        let placeholders = buffer::placeholders(&self.rules.buffers, snapshot, instances, wall(now));
        let occupied = buffer::occupied_view(snapshot, instances, &self.rules, catalog, placeholders);
        let view = crate::provisioning::Request { snapshot: &occupied, instances, rules: &self.rules, catalog };
        let plan = super::offload::decide(|| disruption::plan(disruption::Request { view, now, wall: wall(now) }));
        for (node, why) in &plan.kept {
            tracing::debug!(%node, "not disrupted: {why}");
        }
        for s in &plan.scores {
            tracing::debug!(nodes = %s.nodes.join(","), score = s.value(), approved = s.approved, "consolidation scored: {}", s.describe());
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
                    "balanced": plan.scores.iter().find(|s| s.approved && cmd.nodes().all(|n| s.nodes.iter().any(|m| m == n))),
                }),
            );
            self.validating = Some(Waiting { command: cmd, since: now });
        }
    }

    pub(super) async fn execute(&mut self, cmd: Command, snapshot: &Snapshot, now: Duration) {
        if self.rules.cluster.dry_run {
            for t in &cmd.targets {
                let d =
                    self.decision(now, "disrupt (dry run)", cmd.reason.label(), &format!("Node/{}", t.node), json!(t));
                self.decide(d);
            }
            return;
        }
        if !self.mark(&cmd, now).await {
            return;
        }
        let reason = format!("replace-{}", cmd.reason.label());
        for l in &cmd.replacements {
            if self.launch(l, &reason, snapshot, now).await.is_err() {
                for t in &cmd.targets {
                    self.give_back(&t.node).await;
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

    /// Marks every target, each in one write with its replacements recorded, then records the
    /// disruption. When a write is refused, the targets already marked are given back, nothing
    /// is launched and `false` is returned: the disruption is decided again on a later poll.
    async fn mark(&mut self, cmd: &Command, now: Duration) -> bool {
        let claims: Vec<&str> = cmd.replacements.iter().map(|l| l.claim.name.as_str()).collect();
        let marks = DisruptionMarks {
            reason: cmd.reason.label().to_string(),
            revision: self.rules.revision.to_string(),
            replacements: claims.iter().map(|c| c.to_string()).collect(),
        };
        for (done, t) in cmd.targets.iter().enumerate() {
            if let Err(e) = self.cluster.mark_for_disruption(&t.node, &marks).await {
                tracing::warn!(node = %t.node, error = %e, "mark for disruption");
                for earlier in &cmd.targets[..done] {
                    self.give_back(&earlier.node).await;
                }
                self.emit(
                    now,
                    "disruption-cancelled",
                    format!(
                        "node {} could not be marked for {} ({e}); nothing drained or launched, decided again later",
                        t.node,
                        cmd.reason.label()
                    ),
                    json!({"node": t.node, "reason": cmd.reason.label(), "error": e.to_string()}),
                );
                return false;
            }
        }
        for t in &cmd.targets {
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
                json!({"node": t.node, "reason": cmd.reason.label()}),
            );
        }
        true
    }

    /// Undoes a node's disruption marks. A failure is logged: the node stays marked with
    /// replacements that never launched, so the next pass's drain steps give it back again.
    async fn give_back(&mut self, node: &str) -> bool {
        match self.cluster.uncordon(node).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(%node, error = %e, "uncordon; retried next pass");
                false
            }
        }
    }

    /// Executes the drain steps of this pass.
    pub(super) async fn drain(&mut self, snapshot: &Snapshot, instances: &[Instance], now: Duration) {
        let draining: std::collections::HashSet<&str> =
            snapshot.nodes.iter().filter(|n| disrupting(n)).map(|n| n.name.as_str()).collect();
        self.blocked.retain(|k| {
            snapshot.pods.iter().any(|p| p.spec.name == *k && p.node.as_deref().is_some_and(|n| draining.contains(n)))
        });
        for step in steps(snapshot, instances) {
            match step {
                Step::Return { node, cause } => self.return_node(&node, cause, now).await,
                Step::Evict { node, namespace, pod } => self.evict(&node, &namespace, &pod, now).await,
                Step::Terminate { node, instance, marks, claim, node_pool } => {
                    self.terminate(&node, instance.as_deref(), &marks, claim, node_pool, now).await
                }
            }
        }
    }

    async fn return_node(&mut self, node: &str, cause: ReturnCause, now: Duration) {
        if !self.give_back(node).await {
            return;
        }
        match cause {
            ReturnCause::ReplacementLost(claim) => self.emit(
                now,
                "disruption-cancelled",
                format!("replacement {claim} for {node} is gone; node returned to service"),
                json!({"node": node, "claim": claim}),
            ),
            ReturnCause::Unrecorded => self.emit(
                now,
                "disruption-cancelled",
                format!("node {node} was cordoned without its disruption record; node returned to service"),
                json!({"node": node}),
            ),
        }
    }

    async fn evict(&mut self, node: &str, namespace: &str, pod: &str, now: Duration) {
        let key = format!("{namespace}/{pod}");
        match self.cluster.evict(namespace, pod).await {
            Ok(()) => {
                self.emit(now, "evict", format!("evicted pod {key} from {node}"), json!({"pod": key, "node": node}))
            }
            Err(ClusterError::Blocked(why)) => {
                if self.blocked.insert(key.clone()) {
                    self.emit(now, "evict-blocked", format!("{why}; retrying"), json!({"pod": key, "node": node}));
                }
            }
            Err(e) => tracing::warn!(pod = %key, error = %e, "evict"),
        }
    }

    async fn terminate(
        &mut self,
        node: &str,
        instance: Option<&Instance>,
        marks: &DisruptionMarks,
        claim: Option<String>,
        node_pool: Option<String>,
        now: Duration,
    ) {
        if let Some(i) = instance {
            if let Err(e) = self.cloud.delete(&i.id).await {
                tracing::warn!(instance = %i.id, error = %e, "terminate");
                return;
            }
            self.seen_terminated(&i.id);
        }
        if let Err(e) = self.cluster.delete_node(node).await {
            tracing::warn!(%node, error = %e, "delete node");
            return;
        }
        let reason = marks.reason.clone();
        let pool = node_pool.unwrap_or_default();
        let detail = json!({
            "node": node,
            "instance": instance.map(|i| i.id.clone()),
            "instanceType": instance.map(|i| i.instance_type.clone()),
            "pricePerHour": instance.map(|i| i.price),
            "nodePool": pool,
            "decidedUnder": marks.revision,
        });
        let object = format!("NodeClaim/{}", claim.as_deref().unwrap_or(node));
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
            format!("node {node} drained; instance terminated and node removed ({reason})"),
            detail,
        );
    }
}
