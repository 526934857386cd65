//! The capacity loop: each pass reads the cluster and the cloud, decides with the pure
//! functions of `provisioning` and `disruption`, and acts through the ports. Level-triggered:
//! every pass re-derives state from the cloud (instance tags) and the cluster (node labels,
//! taints and annotations), so a restart loses nothing and launches nothing twice. The only
//! memory kept between passes is timing (the batch window, a decision waiting for validation,
//! replacements being awaited), and losing it only delays a decision.
//!
//! ```text
//! snapshot + instances ─► lifecycle (register, initialize, time out)
//!                      ─► interruption notices (replace, cordon; drained at once,
//!                         or once replaced for a rebalance recommendation)
//!                      ─► drains in progress (evict, then terminate)
//!                      ─► provisioning (batched) ─► CreateFleet
//!                      ─► disruption (every 10 s; validated after 15 s) ─► replace / cordon
//! decisions ─► tracing, the state store's decision log, /status, metrics
//! ```

mod drain;
mod interrupt;
mod launch;
pub mod offload;
mod prices;
mod replicas;
pub mod report;
mod tidy;
pub mod wake;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tracing::Instrument;

use crate::cloud::CloudError;
use crate::cloud::provider::{CloudProvider, Instance};
use crate::cloud::unavailable::Unavailable;
use crate::cluster::{ClusterApi, ClusterError, Snapshot};
use crate::disruption::Command;
use crate::kops::any::Store;
use crate::kops::decisions::{self, Decision};
use crate::provisioning::batch::Batcher;
use crate::scheduling::catalog::Catalog;
use crate::scheduling::pool::NODE_POOL_LABEL;

use crate::rules::Rules;
use report::{LoopEvent, LoopMetrics, LoopStatus, RECENT_DECISIONS};

/// The longest an instance list is reused while the cluster is quiet: an instance that goes
/// away without its node noticing is seen at most this late.
pub const INSTANCES_STALE_AFTER: Duration = Duration::from_secs(60);

/// The last instance list and what the cluster looked like then.
#[derive(Debug)]
struct Listed {
    instances: Vec<Instance>,
    at: Duration,
    nodes: BTreeSet<String>,
}

/// The first back-off after the cloud throttled a pass; it doubles up to [`THROTTLE_MAX`] while
/// the cloud keeps throttling.
pub const THROTTLE_FIRST: Duration = Duration::from_secs(1);
pub const THROTTLE_MAX: Duration = Duration::from_secs(60);

/// How long a fetched catalog is used before it is fetched again: reading it from EC2 takes many
/// paged calls, so once an hour (offerings that run out of capacity are learned from launches).
const CATALOG_TTL: Duration = Duration::from_secs(3600);

/// How long a catalog is used while a NodePool allows reserved capacity: reservations fill, free
/// up, start and end, and a provider reads them again cheaply (the instance types it keeps).
const RESERVATIONS_TTL: Duration = Duration::from_secs(300);

/// How much earlier than the catalog's read an instance may have launched and still be taken
/// off its reservation's free count: EC2's launch time is in whole seconds and its free count
/// may lag a launch by a moment.
const RESERVED_LAUNCH_MARGIN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// The cluster could not be read; the pass is retried.
    #[error("reading the cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// The cloud could not be read; the pass is retried.
    #[error("reading the cloud: {0}")]
    Cloud(#[from] CloudError),
}

/// Where decisions are kept: the kOps state store's `<cluster>/capstan/decisions/`.
#[derive(Debug)]
pub struct DecisionLog {
    pub store: Store,
    pub kops_name: String,
}

/// A disruption command waiting for validation.
#[derive(Debug, Clone)]
struct Waiting {
    command: Command,
    since: Duration,
}

/// The capacity loop over a cloud `C` and a cluster `K`.
pub struct CapacityLoop<C, K> {
    cloud: C,
    cluster: K,
    /// The cluster's name, for the span of each pass.
    name: String,
    rules: Arc<Rules>,
    log: Option<DecisionLog>,
    metrics: Option<LoopMetrics>,
    /// The catalog as the cloud last published it, and when it was read: the one catalog
    /// cache (providers keep none), read again after `CATALOG_TTL`.
    catalog: Option<(Arc<Catalog>, Duration)>,
    /// Offerings that recently ran out of capacity, learned from `create`: the one such cache.
    /// Marked on the catalog before each solve and passed to `create` as the set to avoid.
    unavailable: Unavailable,
    /// What a rebalance recommendation from the interruption queue does.
    rebalance: crate::cloud::interruption::RebalancePolicy,
    /// Nodes the interruption notices of this pass marked: no disruption decided before them
    /// marks them again in the same pass.
    marked_now: BTreeSet<String>,
    batcher: Batcher,
    next_disruption: Duration,
    /// When unused launch templates and instance profiles are next cleaned up.
    next_tidy: Duration,
    validating: Option<Waiting>,
    listed: Option<Listed>,
    /// Static-pool launches the cloud does not list yet, and when they were made: counted as
    /// members of their pool, so a list that lags a launch does not launch again.
    unlisted: Vec<(Instance, Duration)>,
    /// After a throttled pass: no pass before the first time, and the current delay.
    throttled: Option<(Duration, Duration)>,
    /// Pods already told they cannot be placed, so events are not repeated each pass.
    told: BTreeSet<String>,
    /// Pods whose eviction a PodDisruptionBudget refused, reported once per drain.
    blocked: BTreeSet<String>,
    unsaved: Vec<Decision>,
    events: Vec<LoopEvent>,
    status: LoopStatus,
}

/// The earliest launch time (as EC2 gives it, in whole seconds) of an instance taken off the
/// free count of a catalog read at `read_at`: the read's second, less [`RESERVED_LAUNCH_MARGIN`].
fn reserved_counted_from(read_at: Duration) -> Duration {
    Duration::from_secs(read_at.as_secs()).saturating_sub(RESERVED_LAUNCH_MARGIN)
}

/// Wall-clock time of a loop time; defined with the `Clock` port.
pub use crate::clock::wall;

/// A digest of what in a snapshot a pass acts on: the pods pending and, per node, whether it
/// is ready or cordoned and its taints and annotations (registration, initialization,
/// disruption marks). Pods moving between running nodes are not in it: the disruption poll
/// looks at them. Independent of the order pods and nodes are listed in (a reflector's store
/// has none). Equal digests mean a pass now would act as the last one did.
pub fn fingerprint(snapshot: &Snapshot) -> u64 {
    use std::hash::{Hash, Hasher};
    let digest = |item: &dyn Fn(&mut std::hash::DefaultHasher)| {
        let mut h = std::hash::DefaultHasher::new();
        item(&mut h);
        h.finish()
    };
    let (mut pods, mut nodes) = (0u64, 0u64);
    for p in snapshot.pending() {
        pods = pods.wrapping_add(digest(&|h| (&p.namespace, &p.name).hash(h)));
    }
    for n in &snapshot.nodes {
        nodes = nodes.wrapping_add(digest(&|h| {
            (&n.name, n.ready, n.unschedulable, &n.annotations).hash(h);
            let mut taints: Vec<_> = n.taints.iter().map(|t| (&t.key, &t.value, t.effect)).collect();
            taints.sort();
            taints.hash(h);
        }));
    }
    digest(&|h| (pods, nodes, snapshot.pending().count(), snapshot.nodes.len()).hash(h))
}

impl<C: CloudProvider, K: ClusterApi> CapacityLoop<C, K> {
    pub fn new(cloud: C, cluster: K, rules: Arc<Rules>) -> Self {
        let status = LoopStatus { revision: rules.revision.to_string(), ..LoopStatus::default() };
        CapacityLoop {
            cloud,
            cluster,
            name: String::new(),
            rules,
            log: None,
            metrics: None,
            catalog: None,
            unavailable: Unavailable::default(),
            rebalance: Default::default(),
            marked_now: BTreeSet::new(),
            batcher: Batcher::default(),
            next_disruption: Duration::ZERO,
            next_tidy: Duration::ZERO,
            validating: None,
            listed: None,
            unlisted: Vec::new(),
            throttled: None,
            told: BTreeSet::new(),
            blocked: BTreeSet::new(),
            unsaved: Vec::new(),
            events: Vec::new(),
            status,
        }
    }

    pub fn with_decision_log(mut self, log: DecisionLog) -> Self {
        self.log = Some(log);
        self
    }

    /// Names the cluster in the span of each pass.
    pub fn with_cluster_name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// What a rebalance recommendation does (default: replace the node, as a voluntary
    /// disruption).
    pub fn with_rebalance(mut self, rebalance: crate::cloud::interruption::RebalancePolicy) -> Self {
        self.rebalance = rebalance;
        self
    }

    pub fn with_metrics(mut self, metrics: LoopMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// A new policy revision takes effect from the next pass. A decision waiting for
    /// validation is dropped: it was made under the old policy.
    pub fn set_rules(&mut self, rules: Arc<Rules>) {
        if rules.revision != self.rules.revision {
            self.validating = None;
            self.status.revision = rules.revision.to_string();
            self.rules = rules;
        }
    }

    /// Replaces the cloud provider (a new revision's EC2NodeClasses); what the loop remembers
    /// (unavailable offerings, the batch window) is kept.
    pub fn set_cloud(&mut self, cloud: C) {
        self.cloud = cloud;
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn cloud(&self) -> &C {
        &self.cloud
    }

    pub fn cluster(&self) -> &K {
        &self.cluster
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<LoopEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn status(&self) -> &LoopStatus {
        &self.status
    }

    /// When the loop next has something timed to do (batch window, validation), so a caller
    /// can sleep until then.
    pub fn next_due(&self) -> Option<Duration> {
        let c = &self.rules.cluster;
        let batch = self.batcher.due(c.batch_idle, c.batch_max);
        let validation = self.validating.as_ref().map(|w| w.since + crate::disruption::VALIDATION_DELAY);
        let due = [batch, validation, Some(self.next_disruption)].into_iter().flatten().min();
        match self.throttled {
            // Nothing runs before the back-off ends.
            Some((until, _)) => due.map(|d| d.max(until)),
            None => due,
        }
    }

    /// A launch not yet initialized or a node being drained, as of the last pass: a driver
    /// keeps running passes until it lands.
    pub fn in_flight(&self) -> bool {
        !self.status.in_flight.is_empty() || !self.status.draining.is_empty()
    }

    fn emit(&mut self, at: Duration, event: &str, message: String, detail: Value) {
        tracing::info!(event, revision = %self.rules.revision, "{message}");
        self.events.push(LoopEvent { at, event: event.to_string(), message, detail });
    }

    fn decide(&mut self, d: Decision) {
        self.status.recent_decisions.push_back(d.clone());
        while self.status.recent_decisions.len() > RECENT_DECISIONS {
            self.status.recent_decisions.pop_front();
        }
        self.unsaved.push(d);
    }

    /// The catalog last read from the cloud, as published (no offering marked), so a rebuilt
    /// provider can start from it.
    pub fn published_catalog(&self) -> Option<Arc<Catalog>> {
        self.catalog.as_ref().map(|(c, _)| c.clone())
    }

    /// The catalog, with the offerings being avoided marked unavailable; shared, not copied,
    /// while none is.
    async fn catalog(&mut self, now: Duration) -> Result<Arc<Catalog>, CloudError> {
        let age = self.catalog.as_ref().map(|(_, at)| now.saturating_sub(*at));
        let reserving = || {
            use crate::scheduling::catalog::{CAPACITY_TYPE, CapacityType};
            let allows = |p: &crate::scheduling::pool::PoolSpec| {
                p.requirements.get(CAPACITY_TYPE).is_none_or(|s| s.has(CapacityType::Reserved.label()))
            };
            self.rules.pools.iter().any(allows)
        };
        if age.is_none_or(|a| a >= CATALOG_TTL || (a >= RESERVATIONS_TTL && reserving())) {
            match self.cloud.catalog().await {
                Ok(c) => self.catalog = Some((Arc::new(c), now)),
                // Only the reservations were due: the catalog held is still good.
                Err(e) if age.is_some_and(|a| a < CATALOG_TTL) => {
                    tracing::warn!(error = %e, "reading capacity reservations again failed; keeping the catalog")
                }
                Err(e) => return Err(e),
            }
        }
        let c = self.catalog.as_ref().map(|(c, _)| c.clone()).unwrap_or_default();
        let c = self.less_reserved(c);
        self.unavailable.expire(now);
        let c = if self.unavailable.is_empty() {
            c
        } else {
            let mut marked = (*c).clone();
            self.unavailable.apply(&mut marked, now);
            Arc::new(marked)
        };
        Ok(self.priced(c))
    }

    /// `catalog` less the reserved instances launched since it was read (it is kept for minutes,
    /// or an hour). An instance's launch time is in whole seconds: one launched in the second of
    /// the read, or up to [`RESERVED_LAUNCH_MARGIN`] before it, is taken off too. If the read
    /// already counted it, its reservation offers one instance less than it has until the next
    /// read, and one node goes on-demand; not taking it off when the read missed it would plan
    /// a launch into a full reservation, which fails and keeps the offering avoided for
    /// minutes, for every pool.
    fn less_reserved(&self, catalog: Arc<Catalog>) -> Arc<Catalog> {
        use crate::scheduling::reserved::{RESERVATION_ID_LABEL, less_launched};
        let Some((_, read_at)) = &self.catalog else { return catalog };
        let from = reserved_counted_from(*read_at);
        let since = self.listed.iter().flat_map(|l| &l.instances);
        let since =
            since.filter(|i| i.launched_at >= from && i.state != crate::cloud::provider::InstanceState::Terminated);
        match less_launched(&catalog, since.filter_map(|i| i.tags.get(RESERVATION_ID_LABEL).map(String::as_str))) {
            Some(c) => Arc::new(c),
            None => catalog,
        }
    }

    /// One pass at time `now` (since the epoch of the loop's clock).
    pub async fn step(&mut self, now: Duration) -> Result<(), LoopError> {
        // One span per pass; its fields are formatted only when a subscriber records the span.
        let span = tracing::info_span!("capacity_pass", cluster = %self.name, revision = %self.rules.revision);
        if let Some(m) = &self.metrics {
            m.passes.inc();
        }
        async {
            if self.throttled.is_some_and(|(until, _)| now < until) {
                return Ok(());
            }
            let result = self.pass(now).await;
            if let (Ok(()), Some(m)) = (&result, &self.metrics) {
                m.last_success.set(now.as_secs_f64());
            }
            self.throttled = match &result {
                Err(LoopError::Cloud(CloudError::Throttled(why))) => {
                    let delay = self.throttled.map_or(THROTTLE_FIRST, |(_, d)| (d * 2).min(THROTTLE_MAX));
                    tracing::warn!(delay_s = delay.as_secs(), "the cloud throttled this pass ({why}); backing off");
                    Some((now + delay, delay))
                }
                _ => None,
            };
            self.status.last_error = result.as_ref().err().map(|e| e.to_string());
            self.flush(now).await;
            result
        }
        .instrument(span)
        .await
    }

    async fn pass(&mut self, now: Duration) -> Result<(), LoopError> {
        let snapshot = self.cluster.snapshot().await?;
        let instances = self.instances(&snapshot, now).await?;
        let catalog = self.catalog(now).await?;
        let instances = self.at_effective_prices(instances);
        self.observe(&snapshot, &instances);
        self.status.seen.instances = Arc::new(instances.clone());
        self.status.seen.registered =
            Arc::new(snapshot.nodes.iter().filter_map(|n| n.instance_id()).map(String::from).collect());
        self.status.seen.catalog = Some(catalog.clone());
        self.status.seen.rules = Some(self.rules.clone());
        self.lifecycle(&snapshot, &instances, &catalog, now).await;
        self.interruptions(&snapshot, &instances, &catalog, now).await;
        self.drop_overtaken(now);
        self.drain(&snapshot, &instances, now).await;
        self.provision(&snapshot, &instances, &catalog, now).await;
        // Disruption decides over the instances listed before: not after static pools changed.
        let resized = self.keep_replicas(&snapshot, &instances, &catalog, now).await;
        if self.disruption_due(now) && !resized {
            if now >= self.next_disruption {
                self.next_disruption = now + crate::disruption::POLL;
            }
            self.disrupt(&snapshot, &instances, &catalog, now).await;
        }
        self.tidy(now).await;
        if let Some(m) = &self.metrics {
            // What the pass left: launches added, terminations on their way out.
            let seen = &self.status.seen.instances;
            m.observe_pools(&self.rules, &report::pool_counts(&snapshot, seen, &catalog), report::cost_per_hour(seen));
        }
        Ok(())
    }

    /// The cloud's instances: listed again when anything may be changing (pods pending, a
    /// launch in flight, a node draining or not initialized, a disruption being validated, the
    /// set of nodes changed), else reused for at most [`INSTANCES_STALE_AFTER`].
    async fn instances(&mut self, snapshot: &Snapshot, now: Duration) -> Result<Vec<Instance>, CloudError> {
        let nodes: BTreeSet<&str> = snapshot.nodes.iter().map(|n| n.name.as_str()).collect();
        let quiet = snapshot.pending().next().is_none()
            && self.validating.is_none()
            && snapshot.nodes.iter().all(|n| {
                n.annotations.contains_key(crate::provisioning::lifecycle::INITIALIZED_ANNOTATION)
                    && !crate::disruption::candidate::disrupting(n)
            });
        if let Some(l) = &self.listed {
            let same_nodes = l.nodes.iter().map(String::as_str).eq(nodes.iter().copied());
            let settled = l.instances.iter().all(|i| i.state == crate::cloud::provider::InstanceState::Running);
            if quiet && settled && same_nodes && now < l.at + INSTANCES_STALE_AFTER {
                return Ok(l.instances.clone());
            }
        }
        let instances = self.cloud.list().await?;
        let nodes = nodes.into_iter().map(String::from).collect();
        self.listed = Some(Listed { instances: instances.clone(), at: now, nodes });
        Ok(instances)
    }

    fn observe(&mut self, snapshot: &Snapshot, instances: &[Instance]) {
        let s = &mut self.status;
        s.pending_pods = snapshot.pending().count();
        s.oldest_pending = snapshot.pending().min_by_key(|p| p.created_at).map(|p| (p.created_at, p.key()));
        s.nodes_per_node_pool.clear();
        for n in &snapshot.nodes {
            if let Some(p) = n.labels.get(NODE_POOL_LABEL) {
                *s.nodes_per_node_pool.entry(p.clone()).or_default() += 1;
            }
        }
        let initialized: BTreeSet<&str> = snapshot
            .nodes
            .iter()
            .filter(|n| n.annotations.contains_key(crate::provisioning::lifecycle::INITIALIZED_ANNOTATION))
            .filter_map(|n| n.instance_id())
            .collect();
        s.in_flight =
            instances.iter().filter(|i| !initialized.contains(i.id.as_str())).map(|i| i.claim.clone()).collect();
        s.draining = snapshot
            .nodes
            .iter()
            .filter(|n| crate::disruption::candidate::disrupting(n))
            .map(|n| n.name.clone())
            .collect();
        if let Some(m) = &self.metrics {
            m.pending_pods.set(s.pending_pods as i64);
        }
    }

    /// Shows an instance the loop deleted as `ShuttingDown` in `seen.instances` at once: the
    /// pass may also delete its node, and a listed instance without a node looks launching.
    fn seen_terminated(&mut self, id: &str) {
        use crate::cloud::provider::InstanceState;
        let gone = |i: &Instance| i.id == id && i.state != InstanceState::Terminated;
        if self.status.seen.instances.iter().any(|i| gone(i) && i.state != InstanceState::ShuttingDown) {
            for i in Arc::make_mut(&mut self.status.seen.instances).iter_mut().filter(|i| gone(i)) {
                i.state = InstanceState::ShuttingDown;
            }
        }
    }

    /// Writes the pass's decisions to the state store; kept for the next pass on failure.
    async fn flush(&mut self, now: Duration) {
        if self.unsaved.is_empty() {
            return;
        }
        let Some(log) = &self.log else {
            self.unsaved.clear();
            return;
        };
        match decisions::append(&log.store, &log.kops_name, &self.unsaved, wall(now)).await {
            Ok(_) => self.unsaved.clear(),
            Err(e) => {
                tracing::warn!(error = %e, kept = self.unsaved.len(), "decisions not written to the state store; retrying next pass")
            }
        }
    }

    fn decision(&self, now: Duration, action: &str, reason: &str, object: &str, detail: Value) -> Decision {
        let mut d = decisions::decision(wall(now), action, reason, object, &self.rules.revision);
        if let Value::Object(map) = detail {
            d.detail = map;
        }
        d
    }
}

fn claim_json(l: &crate::provisioning::Launch) -> Value {
    json!({
        "claim": l.claim.name,
        "nodePool": l.claim.node_pool,
        "instanceType": l.plan.instance_type,
        "zone": l.plan.zone,
        "capacityType": l.plan.capacity_type.label(),
        "pricePerHour": l.plan.price,
        "options": l.claim.options.len(),
        "pods": l.plan.pods.len(),
    })
}

#[cfg(test)]
mod reserved_tests {
    use super::*;

    #[test]
    fn a_launch_in_the_second_of_the_read_is_taken_off() {
        let read_at = Duration::from_millis(1_000_500);
        // EC2's launch time of an instance launched 0.2 s after the read: 1000 s.
        let launched = Duration::from_secs(1_000);
        assert!(launched < read_at, "whole seconds fall before a read within the same second");
        assert!(launched >= reserved_counted_from(read_at));
        assert_eq!(reserved_counted_from(read_at), Duration::from_secs(1_000) - RESERVED_LAUNCH_MARGIN);
        assert_eq!(reserved_counted_from(Duration::from_secs(2)), Duration::ZERO);
    }
}
