//! The simulated cloud: the same contract as EC2 on a virtual clock, with the built-in catalog.
//! Instances launch, run after a short delay, and their nodes turn Ready about two minutes
//! after launch, as in the kOps + Karpenter proof of concept. Faults can be injected:
//! insufficient capacity per offering, failures of the next calls, spot interruptions (a
//! warning in the interruption queue, the instance gone two minutes later). Every call but
//! reading and acknowledging the queue is recorded. Like EC2, the catalog says nothing of capacity: an offering out of
//! capacity is learned only from `create`'s answer.
//! Capacity reservations ([`SimCloud::add_reservation`]) are the exception, as in EC2: served
//! as reserved offerings with their free counts, filled by launches and freed by terminations.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::interruption::Notice;
use super::provider::{Avoid, CloudProvider, Created, Instance, InstanceState, NodeClaim, tags};
use super::{CloudError, OfferingKey, sim_reservations};
use crate::scheduling::builtin;
use crate::scheduling::catalog::{CapacityType, Catalog};
use crate::scheduling::reserved::{ReservationKind, ReservedCapacity, add_reserved};

/// A clock that only moves when told to. Shared by the simulated cloud and cluster.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock {
    now: Arc<Mutex<Duration>>,
}

impl VirtualClock {
    pub fn now(&self) -> Duration {
        *self.now.lock().expect("clock")
    }

    pub fn advance(&self, by: Duration) {
        *self.now.lock().expect("clock") += by;
    }

    pub fn set(&self, to: Duration) {
        let mut now = self.now.lock().expect("clock");
        if to > *now {
            *now = to;
        }
    }
}

/// How long after its interruption warning EC2 takes a spot instance back.
pub const INTERRUPTION_NOTICE: Duration = Duration::from_secs(120);

impl crate::clock::Clock for VirtualClock {
    fn now(&self) -> Duration {
        VirtualClock::now(self)
    }
}

/// Timing of the simulated launch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Launch → `running`.
    pub running_after: Duration,
    /// Launch → node Ready (used by the simulated kubelet).
    pub ready_after: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { running_after: Duration::from_secs(15), ready_after: Duration::from_secs(120) }
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Catalog,
    Create { claim: String },
    Delete { id: String },
    Get { id: String },
    List,
}

#[derive(Debug, Default)]
struct State {
    instances: BTreeMap<String, Instance>,
    next_id: u64,
    /// Offerings with no capacity.
    no_capacity: BTreeSet<OfferingKey>,
    failures: VecDeque<CloudError>,
    calls: Vec<Call>,
    /// The interruption queue: (message id, body) not yet acknowledged, oldest first.
    queue: Vec<(String, String)>,
    next_message: u64,
    /// Interrupted instances and when EC2 takes them away.
    doomed: BTreeMap<String, Duration>,
    /// Capacity reservations, each with its size as `available`.
    reservations: Vec<ReservedCapacity>,
}

/// The simulated EC2.
#[derive(Debug, Clone)]
pub struct SimCloud {
    cluster: String,
    catalog: Catalog,
    clock: VirtualClock,
    timing: Timing,
    state: Arc<Mutex<State>>,
}

impl SimCloud {
    pub fn new(cluster: &str, clock: VirtualClock) -> SimCloud {
        SimCloud::with_catalog(cluster, clock, builtin::catalog())
    }

    pub fn with_catalog(cluster: &str, clock: VirtualClock, catalog: Catalog) -> SimCloud {
        SimCloud { cluster: cluster.to_string(), catalog, clock, timing: Timing::default(), state: Arc::default() }
    }

    pub fn with_timing(mut self, timing: Timing) -> SimCloud {
        self.timing = timing;
        self
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// The catalog this EC2 offers, without recording a call.
    pub fn catalog_ref(&self) -> &Catalog {
        &self.catalog
    }

    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// Makes an offering report insufficient capacity until `restore_capacity`.
    pub fn exhaust(&self, instance_type: &str, zone: &str, capacity_type: CapacityType) {
        self.lock().no_capacity.insert(OfferingKey::new(instance_type, zone, capacity_type));
    }

    /// Gives EC2 a capacity reservation of `count` instances of `instance_type` in `zone`,
    /// selected by EC2NodeClass `class`: it is served as a reserved offering for that class's
    /// NodePools, launches of other classes never go into it, and launches into it are refused
    /// once it is full.
    pub fn add_reservation(&self, class: &str, id: &str, instance_type: &str, zone: &str, count: u32) {
        self.lock().reservations.push(ReservedCapacity {
            id: id.to_string(),
            instance_type: instance_type.to_string(),
            zone: zone.to_string(),
            available: count,
            kind: ReservationKind::Default,
            interruptible: false,
            classes: vec![class.to_string()],
        });
    }

    pub fn restore_capacity(&self) {
        self.lock().no_capacity.clear();
    }

    /// The next call fails with `error` (queued in order).
    pub fn fail_next(&self, error: CloudError) {
        self.lock().failures.push_back(error);
    }

    /// A spot interruption: a warning (the EventBridge event EC2 sends) goes to the
    /// interruption queue now, and the instance terminates [`INTERRUPTION_NOTICE`] later. An
    /// instance already interrupted or gone is left alone.
    pub fn interrupt(&self, id: &str) {
        let now = self.clock.now();
        let mut s = self.lock();
        let Some(i) = s.instances.get(id).filter(|i| i.state != InstanceState::Terminated) else { return };
        if s.doomed.contains_key(id) {
            return;
        }
        let region = i.zone.trim_end_matches(|c: char| c.is_ascii_alphabetic()).to_string();
        let time = chrono::DateTime::from_timestamp(now.as_secs() as i64, 0).unwrap_or_default();
        let body =
            super::interruption::spot_warning(id, &region, &time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        s.doomed.insert(id.to_string(), now + INTERRUPTION_NOTICE);
        drop(s);
        self.send_notice(&body);
    }

    /// Puts a message with `body` in the interruption queue, as EventBridge (or anyone) would;
    /// returns its message id.
    pub fn send_notice(&self, body: &str) -> String {
        let mut s = self.lock();
        s.next_message += 1;
        let id = format!("msg-{}", s.next_message);
        s.queue.push((id.clone(), body.to_string()));
        id
    }

    /// Messages in the interruption queue not yet acknowledged.
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether `id` was interrupted and has not been taken away yet.
    pub fn interrupted(&self, id: &str) -> bool {
        self.lock().doomed.contains_key(id)
    }

    /// Every instance as EC2 itself sees it, without recording a call (the simulated kubelet
    /// and the hypervisor use this).
    pub fn instances(&self) -> Vec<Instance> {
        let mut s = self.lock();
        s.instances
            .values_mut()
            .map(|i| {
                self.refresh(i);
                i.clone()
            })
            .collect()
    }

    /// The instances not terminated, as [`SimCloud::instances`] sees them: terminated ones stay
    /// listed for good, so callers that look only at live ones ask for these.
    pub fn current(&self) -> Vec<Instance> {
        let mut s = self.lock();
        s.instances
            .values_mut()
            .filter(|i| i.state != InstanceState::Terminated)
            .map(|i| {
                self.refresh(i);
                i.clone()
            })
            .collect()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// When the node of `instance` turns Ready.
    pub fn ready_at(&self, instance: &Instance) -> Duration {
        instance.launched_at + self.timing.ready_after
    }

    /// The state, with the interrupted instances whose time has come terminated.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        let mut s = self.state.lock().expect("sim state");
        let now = self.clock.now();
        if s.doomed.values().any(|at| now >= *at) {
            let State { doomed, instances, .. } = &mut *s;
            doomed.retain(|id, at| {
                let gone = now >= *at;
                if let Some(i) = instances.get_mut(id).filter(|_| gone) {
                    i.state = InstanceState::Terminated;
                }
                !gone
            });
        }
        s
    }

    fn begin(&self, call: Call) -> Result<std::sync::MutexGuard<'_, State>, CloudError> {
        let mut s = self.lock();
        s.calls.push(call);
        match s.failures.pop_front() {
            Some(e) => Err(e),
            None => Ok(s),
        }
    }

    fn refresh(&self, i: &mut Instance) {
        if i.state == InstanceState::Pending && self.clock.now() >= i.launched_at + self.timing.running_after {
            i.state = InstanceState::Running;
        }
    }
}

impl CloudProvider for SimCloud {
    async fn catalog(&self) -> Result<Catalog, CloudError> {
        let s = self.begin(Call::Catalog)?;
        let mut catalog = self.catalog.clone();
        add_reserved(&mut catalog, &sim_reservations::free(&s.reservations, s.instances.values()));
        Ok(catalog)
    }

    async fn create(&self, claim: &NodeClaim, avoid: &Avoid) -> Result<Created, CloudError> {
        let mut s = self.begin(Call::Create { claim: claim.name.clone() })?;
        if let Some(existing) =
            s.instances.values().find(|i| i.claim == claim.name && i.state != InstanceState::Terminated)
        {
            return Ok(Created::at_once(existing.clone()));
        }
        if let Some(o) = claim.options.iter().find(|o| self.catalog.get(&o.instance_type).is_none()) {
            return Err(CloudError::InvalidConfig(format!(
                "unknown instance type {} in NodeClaim {}",
                o.instance_type, claim.name
            )));
        }
        if claim.options.is_empty() {
            return Err(CloudError::InvalidConfig(format!("NodeClaim {} has no launch options", claim.name)));
        }
        // As EC2's CreateFleet: one capacity type per call, the first option's the caller does
        // not avoid; a refusal there is answered, never made up for with another capacity type.
        let tried: Vec<_> = claim.options.iter().filter(|o| !avoid.contains(&OfferingKey::of(o))).collect();
        let Some(capacity) = tried.first().map(|o| o.capacity_type) else {
            return Err(CloudError::InsufficientCapacity {
                offerings: claim.options.iter().map(OfferingKey::of).collect(),
            });
        };
        let mut refused = Vec::new();
        for o in tried.into_iter().filter(|o| o.capacity_type == capacity) {
            let key = OfferingKey::of(o);
            if s.no_capacity.contains(&key) {
                refused.push(key);
                continue;
            }
            let mut reservation = None;
            if o.capacity_type == CapacityType::Reserved {
                let free = sim_reservations::free(&s.reservations, s.instances.values());
                let Some(r) = sim_reservations::pick(free, &claim.node_class, &o.instance_type, &o.zone) else {
                    refused.push(key);
                    continue;
                };
                reservation = Some(r);
            }
            s.next_id += 1;
            let id = format!("i-{:017x}", s.next_id);
            let mut tag_map = claim.tags.clone();
            tag_map.insert(tags::cluster(&self.cluster), "owned".to_string());
            tag_map.insert(tags::NODE_POOL.to_string(), claim.node_pool.clone());
            tag_map.insert(tags::NODE_CLAIM.to_string(), claim.name.clone());
            tag_map.insert(tags::POLICY_REVISION.to_string(), claim.policy_revision.clone());
            if let Some(r) = reservation {
                tag_map.extend(r.reservation().labels());
            }
            let instance = Instance {
                id: id.clone(),
                claim: claim.name.clone(),
                node_pool: claim.node_pool.clone(),
                instance_type: o.instance_type.clone(),
                zone: o.zone.clone(),
                capacity_type: o.capacity_type,
                price: o.price,
                state: InstanceState::Pending,
                launched_at: self.clock.now(),
                tags: tag_map,
            };
            s.instances.insert(id, instance.clone());
            // Only what the cloud refused is reported, not what the caller already avoids.
            return Ok(Created { instance, refused });
        }
        Err(CloudError::InsufficientCapacity { offerings: refused })
    }

    async fn delete(&self, id: &str) -> Result<(), CloudError> {
        let mut s = self.begin(Call::Delete { id: id.to_string() })?;
        if let Some(i) = s.instances.get_mut(id) {
            i.state = InstanceState::Terminated;
        }
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Instance, CloudError> {
        let mut s = self.begin(Call::Get { id: id.to_string() })?;
        let i = s.instances.get_mut(id).ok_or_else(|| CloudError::NotFound(format!("instance {id}")))?;
        self.refresh(i);
        Ok(i.clone())
    }

    fn cluster_tag(&self) -> Option<String> {
        Some(tags::cluster(&self.cluster))
    }

    /// Every message not yet acknowledged (no visibility timeout: a message not acknowledged
    /// is served again on the next call). Not recorded as a call, and no injected failure
    /// applies to it.
    async fn notices(&self) -> Result<Vec<Notice>, CloudError> {
        let s = self.lock();
        Ok(s.queue
            .iter()
            .map(|(id, body)| Notice {
                receipt: id.clone(),
                message_id: id.clone(),
                event: super::interruption::parse(body),
            })
            .collect())
    }

    async fn acknowledge(&self, receipt: &str) -> Result<(), CloudError> {
        self.lock().queue.retain(|(id, _)| id != receipt);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        let mut s = self.begin(Call::List)?;
        let mut out = Vec::new();
        for i in s.instances.values_mut() {
            self.refresh(i);
            if i.state != InstanceState::Terminated {
                out.push(i.clone());
            }
        }
        Ok(out)
    }
}
