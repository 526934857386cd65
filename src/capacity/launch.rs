//! Acting on provisioning and lifecycle decisions: launches, registration, timeouts.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{CapacityLoop, claim_json};
use crate::cloud::aws::without_key_ids;
use crate::cloud::dry_run::Acting;
use crate::cloud::provider::{CloudProvider, Created, Instance};
use crate::cloud::{CloudError, OfferingKey};
use crate::cluster::{ClusterApi, ClusterPod, Snapshot, Subject};
use crate::provisioning::lifecycle::{INITIALIZED_ANNOTATION, Step, steps};
use crate::provisioning::{self, Launch, Request, buffer};
use crate::scheduling::catalog::Catalog;
use crate::scheduling::plan::Binding;

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
                        Ok(()) => self.seen_terminated(&instance),
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
        // Capacity buffers: placeholder pods, pending for the solver only (never in the cluster).
        let placeholders = buffer::placeholders(&self.rules.buffers, snapshot, instances, super::wall(now));
        let pending: Vec<String> =
            snapshot.pending().map(|p| p.key()).chain(placeholders.iter().map(ClusterPod::key)).collect();
        let still: HashSet<&str> = pending.iter().map(String::as_str).collect();
        self.told.retain(|p| still.contains(p.as_str()));
        for map in [&mut self.status.seen.unplaced, &mut self.status.seen.planned] {
            if map.keys().any(|p| !still.contains(p.as_str())) {
                Arc::make_mut(map).retain(|p, _| still.contains(p.as_str()));
            }
        }
        let c = &self.rules.cluster;
        if !self.batcher.observe(&pending, now, c.batch_idle, c.batch_max) {
            return;
        }
        self.batcher.done(now);
        let verdict = self.solve_and_launch(snapshot, &placeholders, instances, catalog, now).await;
        self.publish(verdict);
    }

    /// Solves and launches, solving again (up to [`ICE_RETRIES`] times) while offerings run out
    /// of capacity; returns the last attempt's verdict.
    async fn solve_and_launch(
        &mut self,
        snapshot: &Snapshot,
        placeholders: &[ClusterPod],
        instances: &[Instance],
        catalog: &Catalog,
        now: Duration,
    ) -> Verdict {
        let mut catalog = catalog.clone();
        let mut instances = instances.to_vec();
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let buffered = buffer::pending_view(snapshot, placeholders);
            let request = Request { snapshot: &buffered, instances: &instances, rules: &self.rules, catalog: &catalog };
            let mut decided = super::offload::decide(|| provisioning::provision(request));
            // Whether a real pod has a place is judged without the placeholders it displaces.
            let real = Request { snapshot, ..request };
            let alone = (!placeholders.is_empty()).then(|| super::offload::decide(|| provisioning::provision(real)));
            buffer::strip(&mut decided, placeholders.len(), alone);
            self.settle(&mut decided, &instances);
            if let Some(m) = &self.metrics {
                m.solve_seconds.observe(started.elapsed().as_secs_f64());
            }
            self.report_unschedulable(&decided, now).await;
            let mut verdict = Verdict::of(&decided, snapshot, &instances);
            if decided.launches.is_empty() {
                return verdict;
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
                    Ok(i) => {
                        verdict.launched(l, &i);
                        instances.push(i);
                    }
                    Err(e) => {
                        verdict.failed(l, &failure(l, &e));
                        if let CloudError::InsufficientCapacity { offerings } = e {
                            self.mark_unavailable(&offerings, now);
                            exhausted = true;
                        }
                    }
                }
            }
            if !exhausted {
                return verdict;
            }
            if attempt == ICE_RETRIES {
                let why = format!("every offering tried in {ICE_RETRIES} attempts ran out of capacity");
                self.status.last_unserved = Some((now, why));
                return verdict;
            }
            attempt += 1;
            catalog = self.catalog(now).await.map_or(catalog, |c| (*c).clone());
        }
    }

    /// Publishes a provisioning verdict in `seen`: each map replaced only when it changed.
    fn publish(&mut self, mut verdict: Verdict) {
        verdict.planned.retain(|p, _| !buffer::is_placeholder(p));
        verdict.unplaced.retain(|p, _| !buffer::is_placeholder(p));
        let seen = &mut self.status.seen;
        if *seen.unplaced != verdict.unplaced {
            seen.unplaced = Arc::new(verdict.unplaced);
        }
        if *seen.planned != verdict.planned {
            seen.planned = Arc::new(verdict.planned);
        }
    }

    /// Shows an instance this pass launched in `seen.instances` at once, rather than from the
    /// next pass's list.
    fn seen_launched(&mut self, instance: &Instance) {
        let instances = Arc::make_mut(&mut self.status.seen.instances);
        match instances.iter_mut().find(|i| i.id == instance.id) {
            Some(known) => *known = instance.clone(),
            None => instances.push(instance.clone()),
        }
    }

    async fn report_unschedulable(&mut self, decided: &provisioning::Provision, now: Duration) {
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
                self.seen_launched(&i);
                // The next pass lists the cloud again, so it sees this launch.
                self.listed = None;
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

/// What one provisioning verdict says of each pending pod it judged: why it cannot be placed
/// (`unplaced`), or what it waits for (`planned`). Pods are named `namespace/name`.
#[derive(Debug, Default, PartialEq)]
struct Verdict {
    unplaced: BTreeMap<String, String>,
    planned: BTreeMap<String, String>,
}

impl Verdict {
    /// The scheduler's part: pods it found no place for, and pods nominated to capacity that
    /// exists or is launching (`instances` are those known to the pass, launches included).
    fn of(decided: &provisioning::Provision, snapshot: &Snapshot, instances: &[Instance]) -> Verdict {
        Verdict {
            unplaced: decided.unschedulable.iter().map(|u| (u.pod.clone(), u.reason.clone())).collect(),
            planned: decided.nominated.iter().map(|b| (b.pod.clone(), nomination(b, snapshot, instances))).collect(),
        }
    }

    /// `l` launched `instance`: its pods wait for it.
    fn launched(&mut self, l: &Launch, instance: &Instance) {
        let waits = format!("NodeClaim {} ({}) launching", l.claim.name, instance.instance_type);
        for p in &l.plan.pods {
            self.planned.insert(p.clone(), waits.clone());
        }
    }

    /// `l` did not launch: its pods cannot be placed, for `why`.
    fn failed(&mut self, l: &Launch, why: &str) {
        for p in &l.plan.pods {
            self.unplaced.insert(p.clone(), why.to_string());
        }
    }
}

/// What a nominated pod waits for. The scheduler names the node a pod is bound to: a
/// registered node by its name, an instance not yet registered by its id.
fn nomination(b: &Binding, snapshot: &Snapshot, instances: &[Instance]) -> String {
    if snapshot.nodes.iter().any(|n| n.name == b.node) {
        return format!("nominated to node {}", b.node);
    }
    match instances.iter().find(|i| i.id == b.node) {
        Some(i) => format!("nominated to NodeClaim {} ({}) launching", i.claim, i.instance_type),
        None => format!("nominated to {}", b.node),
    }
}

/// Why the pods of launch `l` cannot be placed when it failed with `e`. EC2's messages may
/// carry request ids, never credentials; anything shaped like an access key id is blanked all
/// the same, as the sentence is shown on the status board.
fn failure(l: &Launch, e: &CloudError) -> String {
    let plan = &l.plan;
    match e {
        CloudError::DryRun { .. } => format!(
            "dry run: capstan would launch a {} ({}, {}) for it",
            plan.instance_type,
            plan.capacity_type.label(),
            plan.zone
        ),
        CloudError::InsufficientCapacity { offerings } => format!(
            "every offering tried ran out of capacity (InsufficientInstanceCapacity): {} of NodeClaim {}, {} first",
            match offerings.len() {
                1 => "1 offering".to_string(),
                n => format!("{n} offerings"),
            },
            l.claim.name,
            plan.instance_type
        ),
        e => format!("launching a {} for it failed: {}", plan.instance_type, without_key_ids(&e.to_string())),
    }
}

#[cfg(test)]
mod tests;
