//! Acting on interruption notices, in every pass: the notices waiting in the queue are decided by
//! [`crate::disruption::interrupt::decide`] and executed at once (no validation delay: the
//! instance goes in two minutes). A notice naming an instance the last listing does not hold
//! (EC2's listing lags right after a launch) has it looked up with `get` first.
//!
//! ```text
//! decide for every notice ─► mark every node (cheap Kubernetes writes: cordon, taint, record)
//!                         ─► then the cloud calls: terminate, launch each replacement once
//!                         ─► record, acknowledge each message whose items were all done
//! ```
//!
//! Marking every node first drains as many as possible before the two minutes are up, however
//! many launches follow. An interrupted node is drained from the next pass on, without waiting
//! for its replacements; a node replaced on a rebalance recommendation waits for them, as any
//! voluntary disruption. A message is acknowledged only once every instance it names was acted
//! on; one whose action failed, or was put off, stays in the queue and comes back. An unreadable
//! or unknown message is logged and acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;

use super::{CapacityLoop, claim_json, wall};
use crate::cloud::CloudError;
use crate::cloud::interruption::{Event, Kind, Notice};
use crate::cloud::provider::{CloudProvider, Instance};
use crate::cluster::marks::DisruptionMarks;
use crate::cluster::{ClusterApi, Snapshot, Subject};
use crate::disruption::interrupt::{Action, Fetched, Item, Verdict, decide};
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
        self.marked_now.clear();
        let notices: Vec<Notice> = match self.cloud.notices().await {
            Ok(n) => n,
            Err(e) => return tracing::warn!(error = %e, "reading the interruption queue; retried next pass"),
        };
        if notices.is_empty() {
            return;
        }
        let fetched = self.fetch_unlisted(&notices, instances).await;
        let view = crate::provisioning::Request { snapshot, instances, rules: &self.rules, catalog };
        let req = crate::disruption::Request { view, now, wall: wall(now) };
        let verdicts = super::offload::decide(|| decide(&notices, req, self.rebalance, &fetched));
        // Every node first, then the cloud calls.
        let mut done: Vec<Vec<bool>> = Vec::with_capacity(verdicts.len());
        for v in &verdicts {
            let mut marked = Vec::with_capacity(v.items.len());
            for item in &v.items {
                marked.push(self.mark_item(item, now).await);
            }
            done.push(marked);
        }
        let mut launched: BTreeSet<String> = BTreeSet::new();
        for (v, done) in verdicts.iter().zip(&mut done) {
            for (item, ok) in v.items.iter().zip(done.iter_mut()) {
                if *ok {
                    *ok = self.call_cloud(item, &mut launched, snapshot, now).await;
                }
            }
        }
        for (v, done) in verdicts.iter().zip(&done) {
            if let Some(why) = &v.unreadable {
                tracing::warn!(message_id = %v.message_id, "interruption queue: {why}; message deleted");
            }
            for (item, ok) in v.items.iter().zip(done) {
                if *ok {
                    self.record(v, item, now).await;
                }
            }
            if !done.iter().all(|ok| *ok) {
                tracing::info!(message_id = %v.message_id, "interruption not fully acted on; the message stays in the queue");
                continue;
            }
            if let Err(e) = self.cloud.acknowledge(&v.receipt).await {
                tracing::warn!(message_id = %v.message_id, error = %e, "deleting an interruption message; it comes back");
            }
        }
    }

    /// What `get` says of each instance the notices that ask for action name, when `instances`
    /// does not hold it.
    async fn fetch_unlisted(&self, notices: &[Notice], instances: &[Instance]) -> BTreeMap<String, Fetched> {
        let tag = self.cloud.cluster_tag();
        let replace = self.rebalance == crate::cloud::interruption::RebalancePolicy::Replace;
        let acts = |e: &&Event| e.takes_instances_away() || (replace && e.kind == Kind::RebalanceRecommendation);
        let mut out = BTreeMap::new();
        for id in notices.iter().filter_map(|n| n.event.as_ref().ok()).filter(acts).flat_map(|e| &e.instance_ids) {
            if out.contains_key(id) || instances.iter().any(|i| i.id == *id) {
                continue;
            }
            let fetched = match (self.cloud.get(id).await, &tag) {
                (Ok(i), Some(tag)) => {
                    let ours = !i.claim.is_empty() && i.tags.get(tag).is_some_and(|v| v == "owned");
                    Fetched::Found { instance: i, ours }
                }
                (Ok(_), None) => Fetched::Failed("the cloud cannot tell this cluster's instances".into()),
                (Err(CloudError::NotFound(_)), _) => Fetched::NotFound,
                (Err(e), _) => Fetched::Failed(e.to_string()),
            };
            out.insert(id.clone(), fetched);
        }
        out
    }

    /// The Kubernetes part of an item: its offering avoided, its node marked. `false` when it
    /// could not be done (the message is kept).
    async fn mark_item(&mut self, item: &Item, now: Duration) -> bool {
        match &item.action {
            Action::Later(why) => {
                tracing::info!(instance = %item.instance, "interruption put off: {why}");
                return false;
            }
            Action::Ignore(why) => {
                tracing::info!(instance = %item.instance, "interruption ignored: {why}");
                return true;
            }
            _ => {}
        }
        if let Some(o) = &item.unavailable {
            self.unavailable.mark(o.clone(), now);
        }
        if self.rules.cluster.dry_run {
            return true;
        }
        match &item.action {
            Action::Hasten { node, replacements } => {
                self.mark_node(node, Reason::Interrupted, replacements.clone()).await
            }
            Action::Replace(cmd) => {
                let claims: Vec<String> = cmd.replacements.iter().map(|l| l.claim.name.clone()).collect();
                for t in &cmd.targets {
                    if !self.mark_node(&t.node, cmd.reason, claims.clone()).await {
                        return false;
                    }
                }
                true
            }
            _ => true,
        }
    }

    /// The cloud part of an item, once its node is marked: the instance terminated, or the
    /// replacements launched (each once in the batch). A failed launch is logged: an
    /// interrupted node's pods are provisioned for once evicted, and a rebalanced node whose
    /// replacement is lost is given back by the drain.
    async fn call_cloud(
        &mut self,
        item: &Item,
        launched: &mut BTreeSet<String>,
        snapshot: &Snapshot,
        now: Duration,
    ) -> bool {
        if self.rules.cluster.dry_run {
            return true;
        }
        match &item.action {
            Action::Terminate => self.terminate_interrupted(&item.instance).await,
            Action::Replace(cmd) => {
                let reason = format!("replace-{}", cmd.reason.label());
                for l in &cmd.replacements {
                    if !launched.insert(l.claim.name.clone()) {
                        continue;
                    }
                    if let Err(CloudError::InsufficientCapacity { offerings }) =
                        self.launch(l, &reason, snapshot, now).await
                    {
                        for o in offerings {
                            self.unavailable.mark(o, now);
                        }
                    }
                }
                true
            }
            _ => true,
        }
    }

    /// Records an item acted on: a decision, an event on the node, a loop event.
    async fn record(&mut self, v: &Verdict, item: &Item, now: Duration) {
        if matches!(item.action, Action::Ignore(_) | Action::Later(_)) {
            return;
        }
        let kind = v.kind.map_or("unknown", |k| k.label());
        let dry_run = self.rules.cluster.dry_run;
        let object = match &item.node {
            Some(n) => format!("Node/{n}"),
            None => format!("Instance/{}", item.instance),
        };
        let replacements: Vec<serde_json::Value> = match &item.action {
            Action::Replace(cmd) => cmd.replacements.iter().map(claim_json).collect(),
            _ => Vec::new(),
        };
        let label = item.action.label();
        let acts = !matches!(item.action, Action::Record | Action::AlreadyDraining | Action::Kept(_));
        let action =
            if dry_run && acts { format!("interruption-{label} (dry run)") } else { format!("interruption-{label}") };
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
            Action::Kept(why) => format!("{kind} for {object} not acted on: {why}"),
            Action::AlreadyDraining => format!("{kind} for {object}: already draining"),
            Action::Terminate => format!("{kind} for {object}, not yet a node: instance terminated"),
            Action::Hasten { .. } => format!("{kind} for {object}: draining now, without waiting for replacements"),
            Action::Replace(cmd) if cmd.reason == Reason::Interrupted => format!(
                "{kind} for {object}: cordoned and draining now; {} replacement(s) launched ({})",
                cmd.replacements.len(),
                cmd.detail
            ),
            Action::Replace(cmd) => format!(
                "{kind} for {object}: cordoned; {} replacement(s) launched, drained once they are ready ({})",
                cmd.replacements.len(),
                cmd.detail
            ),
            Action::Ignore(_) | Action::Later(_) => String::new(),
        };
        if let Some(n) = &item.node
            && !matches!(item.action, Action::AlreadyDraining)
        {
            self.cluster.event(&Subject::Node(n.clone()), "Interrupted", &message).await;
        }
        self.emit(now, "interruption", message, detail);
    }

    /// Marks `node` for disruption for `reason`, recording `replacements`, and remembers it for
    /// the rest of the pass.
    async fn mark_node(&mut self, node: &str, reason: Reason, replacements: Vec<String>) -> bool {
        let marks = DisruptionMarks {
            reason: reason.label().to_string(),
            revision: self.rules.revision.to_string(),
            replacements,
        };
        match self.cluster.mark_for_disruption(node, &marks).await {
            Ok(()) => {
                self.marked_now.insert(node.to_string());
                true
            }
            Err(e) => {
                tracing::warn!(%node, error = %e, "marking a node for an interruption; retried when the message comes back");
                false
            }
        }
    }

    /// Drops the disruption command waiting for validation when the interruption handling of
    /// this pass marked one of its nodes: the command was decided from a snapshot taken before,
    /// and executing it would overwrite the interruption's marks.
    pub(super) fn drop_overtaken(&mut self, now: Duration) {
        let Some(w) = &self.validating else { return };
        let overtaken: Vec<String> =
            w.command.nodes().filter(|n| self.marked_now.contains(*n)).map(String::from).collect();
        if overtaken.is_empty() {
            return;
        }
        let reason = w.command.reason.label();
        self.validating = None;
        self.emit(
            now,
            "disruption-cancelled",
            format!("{reason} of {} overtaken by an interruption notice; nothing done", overtaken.join(", ")),
            json!({"reason": reason, "nodes": overtaken}),
        );
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
