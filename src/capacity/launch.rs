//! Acting on provisioning and lifecycle decisions: launches, registration, timeouts.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{CapacityLoop, claim_json};
use crate::cloud::dry_run::Acting;
use crate::cloud::provider::{CloudProvider, Created, Instance};
use crate::cloud::{CloudError, OfferingKey};
use crate::cluster::{ClusterApi, ClusterPod, Snapshot, Subject};
use crate::provisioning::lifecycle::{INITIALIZED_ANNOTATION, Step, steps};
use crate::provisioning::{self, Launch, Request};
use crate::scheduling::catalog::Catalog;

/// Provisioning passes re-solved in one step after offerings ran out of capacity.
const ICE_RETRIES: usize = 3;

/// The pods a launch was planned for (a pod's scheduler name is its `namespace/name`).
fn served<'a>(snapshot: &'a Snapshot, l: &Launch) -> impl Iterator<Item = &'a ClusterPod> {
    let wanted: HashSet<String> = l.plan.pods.iter().cloned().collect();
    snapshot.pods.iter().filter(move |p| wanted.contains(&p.spec.name))
}

impl<C: CloudProvider, K: ClusterApi> CapacityLoop<C, K> {
    /// The provider changes go through under the policy in force: the cloud itself, or
    /// `DryRun` over it (which changes nothing and answers `CloudError::DryRun`).
    fn acting(&self) -> Acting<&C> {
        Acting::per_policy(&self.cloud, self.rules.cluster.dry_run)
    }

    /// Avoids `offerings` for a while (they ran out of capacity at `now`).
    fn mark_unavailable(&mut self, offerings: &[OfferingKey], now: Duration) {
        for o in offerings {
            self.unavailable.mark(o.clone(), now);
        }
    }

    pub(super) async fn lifecycle(
        &mut self,
        snapshot: &Snapshot,
        instances: &[Instance],
        catalog: &Catalog,
        now: Duration,
    ) {
        for step in steps(snapshot, instances, &self.rules.pools, catalog, now) {
            match step {
                Step::Register { node, claim, labels, taints, annotations } => {
                    match self.cluster.register(&node, &labels, &taints, &annotations).await {
                        Ok(()) => self.emit(
                            now,
                            "node-registered",
                            format!("node {node} registered for NodeClaim {claim}; NodePool labels and taints applied"),
                            json!({"node": node, "claim": claim}),
                        ),
                        Err(e) => tracing::warn!(%node, error = %e, "registering node"),
                    }
                }
                Step::Initialized { node, claim, since_launch } => {
                    let annotations = [(INITIALIZED_ANNOTATION.to_string(), "true".to_string())].into();
                    if self.cluster.register(&node, &Default::default(), &[], &annotations).await.is_ok() {
                        self.emit(
                            now,
                            "node-ready",
                            format!("node {node} is Ready, {}s after launch", since_launch.as_secs()),
                            json!({"node": node, "claim": claim, "secondsSinceLaunch": since_launch.as_secs_f64()}),
                        );
                    }
                }
                Step::Timeout { instance, claim, age } => {
                    match self.acting().delete(&instance).await {
                        Ok(()) => {}
                        Err(CloudError::DryRun { .. }) => continue,
                        Err(e) => {
                            tracing::warn!(%instance, error = %e, "terminating an instance that never registered");
                            continue;
                        }
                    }
                    let detail = json!({"instance": instance, "ageSeconds": age.as_secs()});
                    let d = self.decision(
                        now,
                        "terminate",
                        "registration-timeout",
                        &format!("NodeClaim/{claim}"),
                        detail.clone(),
                    );
                    self.decide(d);
                    self.emit(
                        now,
                        "registration-timeout",
                        format!("instance {instance} (NodeClaim {claim}) did not register as a node within 15 minutes; terminated"),
                        detail,
                    );
                }
            }
        }
    }

    pub(super) async fn provision(
        &mut self,
        snapshot: &Snapshot,
        instances: &[Instance],
        catalog: &Catalog,
        now: Duration,
    ) {
        let pending: Vec<String> = snapshot.pending().map(|p| p.key()).collect();
        let still: HashSet<&str> = pending.iter().map(String::as_str).collect();
        self.told.retain(|p| still.contains(p.as_str()));
        if self.status.seen.unplaced.keys().any(|p| !still.contains(p.as_str())) {
            Arc::make_mut(&mut self.status.seen.unplaced).retain(|p, _| still.contains(p.as_str()));
        }
        let c = &self.rules.cluster;
        if !self.batcher.observe(&pending, now, c.batch_idle, c.batch_max) {
            return;
        }
        self.batcher.done(now);
        let mut catalog = catalog.clone();
        let mut instances = instances.to_vec();
        for _ in 0..ICE_RETRIES {
            let started = Instant::now();
            let request = Request { snapshot, instances: &instances, rules: &self.rules, catalog: &catalog };
            let decided = super::offload::decide(|| provisioning::provision(request));
            if let Some(m) = &self.metrics {
                m.solve_seconds.observe(started.elapsed().as_secs_f64());
            }
            self.report_unschedulable(&decided, now).await;
            if decided.launches.is_empty() {
                return;
            }
            self.emit(
                now,
                "scale-up-decision",
                format!(
                    "{} pending pod(s): launch {} NodeClaim(s) at ${:.4}/h ({})",
                    decided.pending,
                    decided.launches.len(),
                    decided.launches.iter().map(|l| l.plan.price).sum::<f64>(),
                    decided
                        .launches
                        .iter()
                        .map(|l| format!("{} × {} pods in {}", l.plan.instance_type, l.plan.pods.len(), l.plan.zone))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                json!({
                    "pendingPods": decided.pending,
                    "nominatedToExisting": decided.nominated.len(),
                    "claims": decided.launches.iter().map(claim_json).collect::<Vec<_>>(),
                }),
            );
            let mut exhausted = false;
            for l in &decided.launches {
                match self.launch(l, "provisioning", snapshot, now).await {
                    Ok(i) => instances.push(i),
                    Err(CloudError::InsufficientCapacity { offerings }) => {
                        self.mark_unavailable(&offerings, now);
                        exhausted = true;
                    }
                    Err(_) => {}
                }
            }
            if !exhausted {
                return;
            }
            catalog = self.catalog(now).await.map_or(catalog, |c| (*c).clone());
        }
        let why = format!("every offering tried in {ICE_RETRIES} attempts ran out of capacity");
        self.status.last_unserved = Some((now, why));
    }

    async fn report_unschedulable(&mut self, decided: &provisioning::Provision, now: Duration) {
        // Each provisioning pass judges every pending pod: the reasons are its verdict.
        let unplaced: BTreeMap<String, String> =
            decided.unschedulable.iter().map(|u| (u.pod.clone(), u.reason.clone())).collect();
        if *self.status.seen.unplaced != unplaced {
            self.status.seen.unplaced = Arc::new(unplaced);
        }
        for u in &decided.unschedulable {
            if !self.told.insert(u.pod.clone()) {
                continue;
            }
            self.emit(
                now,
                "unschedulable",
                format!("pod {} cannot be placed: {}", u.pod, u.reason),
                json!({"pod": u.pod, "reason": u.reason}),
            );
            // The scheduler names a pod `namespace/name`.
            if let Some((namespace, name)) = u.pod.split_once('/') {
                let subject = Subject::Pod { namespace: namespace.to_string(), name: name.to_string() };
                self.cluster
                    .event(
                        &subject,
                        "FailedScaleUp",
                        &format!("capstan cannot launch a node for this pod: {}", u.reason),
                    )
                    .await;
            }
        }
    }

    /// Launches one claim and records the decision; `reason` is `provisioning` or the
    /// disruption being replaced for.
    pub(super) async fn launch(
        &mut self,
        l: &Launch,
        reason: &str,
        snapshot: &Snapshot,
        now: Duration,
    ) -> Result<Instance, CloudError> {
        let mut detail = claim_json(l);
        let avoid = self.unavailable.avoided(now);
        match self.acting().create(&l.claim, &avoid).await {
            Ok(Created { instance: i, refused }) => {
                self.mark_unavailable(&refused, now);
                detail["instance"] = json!(i.id);
                detail["instanceType"] = json!(i.instance_type);
                detail["zone"] = json!(i.zone);
                detail["pricePerHour"] = json!(i.price);
                let d = self.decision(now, "launch", reason, &format!("NodeClaim/{}", l.claim.name), detail.clone());
                self.decide(d);
                self.status.in_flight.push(l.claim.name.clone());
                if let Some(m) = &self.metrics {
                    m.launched.get_or_create(&super::report::PoolLabels { nodepool: l.claim.node_pool.clone() }).inc();
                    for p in served(snapshot, l) {
                        m.decision_latency_seconds.observe(now.saturating_sub(p.created_at).as_secs_f64());
                    }
                }
                self.emit(
                    now,
                    "launch",
                    format!(
                        "launched {} {} in {} (${:.4}/h) for NodeClaim {}",
                        i.capacity_type.label(),
                        i.instance_type,
                        i.zone,
                        i.price,
                        l.claim.name
                    ),
                    detail,
                );
                for p in served(snapshot, l) {
                    let subject = Subject::Pod { namespace: p.namespace.clone(), name: p.name.clone() };
                    let msg = format!(
                        "Pod should schedule on NodeClaim {} ({} in {})",
                        l.claim.name, i.instance_type, i.zone
                    );
                    self.cluster.event(&subject, "Nominated", &msg).await;
                }
                Ok(i)
            }
            Err(e @ CloudError::DryRun { .. }) => {
                let d = self.decision(now, "launch (dry run)", reason, &format!("NodeClaim/{}", l.claim.name), detail);
                self.decide(d);
                Err(e)
            }
            Err(e) => {
                detail["error"] = json!(e.to_string());
                self.emit(now, "launch-failed", format!("NodeClaim {} not launched: {e}", l.claim.name), detail);
                Err(e)
            }
        }
    }
}
