//! Acting on static NodePools' counts: the launches and removals
//! [`crate::provisioning::static_pools::plan`] decides, at each disruption poll. A node removed is marked for
//! disruption (reason `overprovisioned`, no replacement) and drained like any other; an
//! instance that has not registered yet is terminated at once.

use std::time::Duration;

use serde_json::json;

use super::CapacityLoop;
use crate::cloud::CloudError;
use crate::cloud::dry_run::Acting;
use crate::cloud::provider::{CloudProvider, Instance};
use crate::cluster::{ClusterApi, Snapshot};
use crate::disruption::{Command, Target};
use crate::provisioning::static_pools::{Removal, plan};
use crate::provisioning::{self};
use crate::rules::Reason;
use crate::scheduling::catalog::Catalog;

/// How long a static-pool launch the cloud does not list is still counted as a member.
const UNLISTED_FOR: Duration = Duration::from_secs(300);

impl<C: CloudProvider, K: ClusterApi> CapacityLoop<C, K> {
    /// Brings every static NodePool to its `replicas`; whether it launched or removed anything.
    pub(super) async fn keep_replicas(
        &mut self,
        snapshot: &Snapshot,
        instances: &[Instance],
        catalog: &Catalog,
        now: Duration,
    ) -> bool {
        // Decided at the disruption poll (every 10 s), as Karpenter's static controllers requeue.
        if self.rules.pool_rules.iter().all(|r| r.replicas.is_none()) || !self.disruption_due(now) {
            return false;
        }
        self.unlisted.retain(|(i, at)| now < *at + UNLISTED_FOR && !instances.iter().any(|l| l.id == i.id));
        let mut known = instances.to_vec();
        known.extend(self.unlisted.iter().map(|(i, _)| i.clone()));
        let request = provisioning::Request { snapshot, instances: &known, rules: &self.rules, catalog };
        let decided = plan(&request, now);
        for (pool, why) in &decided.short {
            tracing::debug!(nodepool = %pool, "static NodePool below its replicas: {why}");
        }
        let acted = !decided.launches.is_empty() || !decided.removals.is_empty();
        for l in &decided.launches {
            match self.launch(l, "static-replicas", snapshot, now).await {
                Ok(i) => self.unlisted.push((i, now)),
                Err(CloudError::InsufficientCapacity { offerings }) => {
                    for o in &offerings {
                        self.unavailable.mark(o.clone(), now);
                    }
                }
                Err(_) => {}
            }
        }
        for r in decided.removals {
            match &r.node {
                Some(_) => self.execute(removal(r), snapshot, now).await,
                None => self.terminate_unregistered(&r, now).await,
            }
        }
        if acted {
            // The next pass lists the cloud again, so it counts what this one changed.
            self.listed = None;
        }
        acted
    }

    async fn terminate_unregistered(&mut self, r: &Removal, now: Duration) {
        match Acting::per_policy(&self.cloud, self.rules.cluster.dry_run).delete(&r.instance).await {
            Ok(()) => self.seen_terminated(&r.instance),
            Err(CloudError::DryRun { .. }) => return,
            Err(e) => {
                tracing::warn!(instance = %r.instance, error = %e, "terminating an instance a static NodePool no longer needs");
                return;
            }
        }
        let detail = json!({"instance": r.instance, "nodePool": r.node_pool, "instanceType": r.instance_type});
        let reason = Reason::Overprovisioned.label();
        let d = self.decision(now, "terminate", reason, &format!("NodeClaim/{}", r.claim), detail.clone());
        self.decide(d);
        self.emit(
            now,
            "terminate",
            format!(
                "instance {} (NodeClaim {}) terminated before registering: NodePool {} has more nodes than its replicas",
                r.instance, r.claim, r.node_pool
            ),
            detail,
        );
    }
}

/// The disruption command that drains and removes a node of a static pool.
fn removal(r: Removal) -> Command {
    let detail = format!("NodePool {} has more nodes than its replicas", r.node_pool);
    let target = Target {
        node: r.node.unwrap_or_default(),
        instance: r.instance,
        node_pool: r.node_pool,
        instance_type: r.instance_type,
        price: r.price,
        pods: r.pods,
    };
    Command {
        reason: Reason::Overprovisioned,
        savings: target.price,
        targets: vec![target],
        replacements: Vec::new(),
        detail,
    }
}
