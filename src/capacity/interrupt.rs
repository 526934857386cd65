//! Acting on interruption notices, in every pass: the notices waiting in the queue are decided by
//! [`crate::disruption::interrupt::decide`] and executed at once (no validation delay: the
//! instance goes in two minutes). For a node that goes: the interrupted spot offering is avoided,
//! the node is marked for disruption in one write (reason `interrupted`, its replacements
//! recorded) and the replacements are launched; the drain evicts its pods from the next pass on,
//! without waiting for them. A message is acknowledged only once every instance it names was
//! acted on; one whose action failed stays in the queue and comes back. An unreadable or unknown
//! message is logged and acknowledged.

use std::time::Duration;

use serde_json::json;

use super::{CapacityLoop, claim_json};
use crate::cloud::CloudError;
use crate::cloud::interruption::Notice;
use crate::cloud::provider::{CloudProvider, Instance};
use crate::cluster::marks::DisruptionMarks;
use crate::cluster::{ClusterApi, Snapshot, Subject};
use crate::disruption::Command;
use crate::disruption::interrupt::{Action, Item, Verdict, decide};
use crate::rules::Reason;
use crate::scheduling::catalog::Catalog;

impl<C: CloudProvider, K: ClusterApi> CapacityLoop<C, K> {
    /// Reads the interruption queue and acts on what it holds.
    pub(super) async fn interruptions(
        &mut self,
        snapshot: &Snapshot,
        instances: &[Instance],
        catalog: &Catalog,
        now: Duration,
    ) {
        let notices: Vec<Notice> = match self.cloud.notices().await {
            Ok(n) => n,
            Err(e) => return tracing::warn!(error = %e, "reading the interruption queue; retried next pass"),
        };
        if notices.is_empty() {
            return;
        }
        let view = crate::provisioning::Request { snapshot, instances, rules: &self.rules, catalog };
        let verdicts = super::offload::decide(|| decide(&notices, view, self.rebalance));
        for v in verdicts {
            let mut acted = true;
            if let Some(why) = &v.unreadable {
                tracing::warn!(message_id = %v.message_id, "interruption queue: {why}; message deleted");
            }
            for item in &v.items {
                acted &= self.act_on(&v, item, snapshot, now).await;
            }
            if !acted {
                tracing::warn!(message_id = %v.message_id, "interruption not fully acted on; the message stays in the queue");
                continue;
            }
            if let Err(e) = self.cloud.acknowledge(&v.receipt).await {
                tracing::warn!(message_id = %v.message_id, error = %e, "deleting an interruption message; it comes back");
            }
        }
    }

    /// Executes one item; `false` when it could not be done (the message is kept).
    async fn act_on(&mut self, v: &Verdict, item: &Item, snapshot: &Snapshot, now: Duration) -> bool {
        let kind = v.kind.map_or("unknown", |k| k.label());
        if let Action::Ignore(why) = &item.action {
            tracing::info!(message_id = %v.message_id, instance = %item.instance, kind, "interruption ignored: {why}");
            return true;
        }
        if let Some(o) = &item.unavailable {
            self.unavailable.mark(o.clone(), now);
        }
        let dry_run = self.rules.cluster.dry_run;
        let acted = match &item.action {
            Action::Ignore(_) | Action::Record | Action::AlreadyDraining => true,
            _ if dry_run => true,
            Action::Terminate => self.terminate_interrupted(&item.instance).await,
            Action::Hasten { replacements } => {
                let node = item.node.as_deref().unwrap_or_default();
                self.mark_interrupted(node, replacements.clone()).await
            }
            Action::Replace(cmd) => self.replace_interrupted(cmd, snapshot, now).await,
        };
        if !acted {
            return false;
        }
        let object = match &item.node {
            Some(n) => format!("Node/{n}"),
            None => format!("Instance/{}", item.instance),
        };
        let replacements: Vec<serde_json::Value> = match &item.action {
            Action::Replace(cmd) => cmd.replacements.iter().map(claim_json).collect(),
            _ => Vec::new(),
        };
        let label = item.action.label();
        let action = if dry_run && !matches!(item.action, Action::Record | Action::AlreadyDraining) {
            format!("interruption-{label} (dry run)")
        } else {
            format!("interruption-{label}")
        };
        let detail = json!({
            "kind": kind,
            "instance": item.instance,
            "node": item.node,
            "messageId": v.message_id,
            "unavailable": item.unavailable,
            "replacements": replacements,
        });
        let d = self.decision(now, &action, kind, &object, detail.clone());
        self.decide(d);
        let message = match &item.action {
            Action::Record => format!("{kind} for {object} recorded; nothing done"),
            Action::AlreadyDraining => format!("{kind} for {object}: already draining for an interruption"),
            Action::Terminate => format!("{kind} for {object}, not yet a node: instance terminated"),
            Action::Hasten { .. } => format!("{kind} for {object}: draining now, without waiting for replacements"),
            Action::Replace(cmd) => format!(
                "{kind} for {object}: cordoned and draining now; {} replacement(s) launched ({})",
                cmd.replacements.len(),
                cmd.detail
            ),
            Action::Ignore(_) => String::new(),
        };
        if let Some(n) = &item.node
            && !matches!(item.action, Action::AlreadyDraining)
        {
            self.cluster.event(&Subject::Node(n.clone()), "Interrupted", &message).await;
        }
        self.emit(now, "interruption", message, detail);
        true
    }

    /// Marks `node` for an interruption, recording `replacements`.
    async fn mark_interrupted(&mut self, node: &str, replacements: Vec<String>) -> bool {
        let marks = DisruptionMarks {
            reason: Reason::Interrupted.label().to_string(),
            revision: self.rules.revision.to_string(),
            replacements,
        };
        match self.cluster.mark_for_disruption(node, &marks).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(%node, error = %e, "marking an interrupted node; retried when the message comes back");
                false
            }
        }
    }

    /// Marks the node, then launches its replacements; a failed launch is logged and the pods
    /// are provisioned for once evicted.
    async fn replace_interrupted(&mut self, cmd: &Command, snapshot: &Snapshot, now: Duration) -> bool {
        let claims: Vec<String> = cmd.replacements.iter().map(|l| l.claim.name.clone()).collect();
        for t in &cmd.targets {
            if !self.mark_interrupted(&t.node, claims.clone()).await {
                return false;
            }
        }
        let reason = format!("replace-{}", Reason::Interrupted.label());
        for l in &cmd.replacements {
            if let Err(CloudError::InsufficientCapacity { offerings }) = self.launch(l, &reason, snapshot, now).await {
                for o in offerings {
                    self.unavailable.mark(o, now);
                }
            }
        }
        true
    }

    /// Terminates an interrupted instance that has no node yet.
    async fn terminate_interrupted(&mut self, id: &str) -> bool {
        match self.cloud.delete(id).await {
            Ok(()) => {
                self.seen_terminated(id);
                true
            }
            Err(e) => {
                tracing::warn!(instance = %id, error = %e, "terminating an interrupted instance");
                false
            }
        }
    }
}
