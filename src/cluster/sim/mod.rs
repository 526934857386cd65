//! The simulated cluster: Deployments, DaemonSets, PodDisruptionBudgets, a scheduler and a
//! kubelet, on the same virtual clock as the simulated EC2. [`SimCluster::tick`] runs the
//! controllers in the order a real cluster converges:
//!
//! ```text
//! kubelet (instances → Nodes, Ready after the delay; gone instances → Node deleted)
//!   → DaemonSet and Deployment controllers (pods created / removed)
//!   → scheduler (pending pods bound to Ready nodes with the engine's semantics, or marked
//!     unschedulable) → kubelet starts bound pods
//! ```

mod controllers;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::api::{ClusterApi, ClusterError, Subject};
use super::marks::{self, DISRUPTED_TAINT, DisruptionMarks};
use super::model::{ClusterNode, ClusterPod, NOT_READY_TAINT, Owner, Pdb, Phase, Snapshot};
use super::workload::{DaemonSetSpec, DeploymentSpec, JobSpec, PdbSpec, Workload};
use crate::cloud::provider::InstanceState;
use crate::cloud::sim::{SimCloud, VirtualClock};
use crate::policy::meta::{Labels, Taint, TaintEffect};
use crate::scheduling::allocatable::{KubeletSettings, allocatable};
use crate::scheduling::catalog::{Catalog, HOSTNAME, INSTANCE_TYPE, InstanceType, ZONE};
use crate::scheduling::pod::Pod;
use crate::scheduling::{Input, Strategy, solve};

/// An event recorded by [`ClusterApi::event`].
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub at: Duration,
    pub subject: Subject,
    pub reason: String,
    pub message: String,
}

/// A pod's wait for a node: from its creation to its binding, or to its removal unbound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wait {
    pub created: Duration,
    /// When it was bound; `None` when it was removed (scaled down, deleted) before it was.
    pub bound: Option<Duration>,
}

#[derive(Debug, Default)]
struct State {
    /// Deployments and StatefulSets, keyed `Kind/namespace/name` (both kinds may share a name).
    deployments: BTreeMap<String, DeploymentSpec>,
    jobs: BTreeMap<String, JobSpec>,
    /// Pods of each Job that succeeded.
    succeeded: BTreeMap<String, u32>,
    /// When each Job pod started running (bound).
    started: BTreeMap<String, Duration>,
    daemonsets: Vec<DaemonSetSpec>,
    pdbs: Vec<PdbSpec>,
    pods: BTreeMap<String, ClusterPod>,
    nodes: BTreeMap<String, ClusterNode>,
    /// Nodes no instance backs (present from the start, not managed by capstan).
    static_nodes: BTreeSet<String>,
    /// The nodes (as [`nodes_fingerprint`]) the scheduler last ran over.
    scheduled_over: Option<u64>,
    /// Waits ended since the last [`SimCluster::take_waits`].
    waits: Vec<Wait>,
    /// Instances whose node was deleted: their kubelet does not register again.
    retired: Vec<String>,
    events: Vec<RecordedEvent>,
    evictions: u64,
    seq: u64,
    /// Fault: kubelets of new instances never join (bad bootstrap, wrong security group).
    kubelets_broken: bool,
    /// Fault: the API server refuses `mark_for_disruption` (RBAC, admission webhook, conflict).
    marks_refused: bool,
    /// `mark_for_disruption` calls refused while `marks_refused` was set.
    marks_refusals: u64,
}

/// The simulated Kubernetes cluster.
#[derive(Debug, Clone)]
pub struct SimCluster {
    clock: VirtualClock,
    cloud: SimCloud,
    catalog: Catalog,
    state: Arc<Mutex<State>>,
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl SimCluster {
    /// A cluster whose kubelets join the instances `cloud` launches.
    pub fn new(cloud: SimCloud, catalog: Catalog) -> SimCluster {
        SimCluster { clock: cloud.clock().clone(), cloud, catalog, state: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("sim cluster")
    }

    /// Creates or replaces workloads, as `kubectl apply` does.
    pub fn apply(&self, workloads: Vec<Workload>) {
        let mut s = self.lock();
        for w in workloads {
            match w {
                Workload::Deployment(d) => {
                    s.deployments.insert(key(d.kind.label(), &key(&d.namespace, &d.name)), d);
                }
                Workload::Job(j) => {
                    s.jobs.insert(key(&j.namespace, &j.name), j);
                }
                Workload::DaemonSet(d) => {
                    s.daemonsets.retain(|x| (&x.namespace, &x.name) != (&d.namespace, &d.name));
                    s.daemonsets.push(d);
                }
                Workload::Pdb(p) => {
                    s.pdbs.retain(|x| (&x.namespace, &x.name) != (&p.namespace, &p.name));
                    s.pdbs.push(p);
                }
            }
        }
    }

    /// `kubectl scale deployment`; `Err` when there is no such Deployment.
    pub fn scale(&self, namespace: &str, name: &str, replicas: u32) -> Result<(), ClusterError> {
        self.scale_kind("Deployment", namespace, name, replicas)
    }

    /// `kubectl scale` of a Deployment or StatefulSet (`kind`); `Err` when there is no such one.
    pub fn scale_kind(&self, kind: &str, namespace: &str, name: &str, replicas: u32) -> Result<(), ClusterError> {
        let mut s = self.lock();
        let d = s
            .deployments
            .get_mut(&key(kind, &key(namespace, name)))
            .ok_or_else(|| ClusterError::NotFound(format!("{kind} {namespace}/{name}")))?;
        d.replicas = replicas;
        Ok(())
    }

    /// `kubectl delete` of a workload (`kind` as in [`super::workload::KINDS`]) and its pods;
    /// `Err` when there is no such object.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> Result<(), ClusterError> {
        let now = self.clock.now();
        let mut s = self.lock();
        let k = key(namespace, name);
        let missing = || ClusterError::NotFound(format!("{kind} {namespace}/{name}"));
        let owner = match kind {
            "Deployment" | "StatefulSet" => {
                s.deployments.remove(&key(kind, &k)).ok_or_else(missing)?;
                Owner::Controller(format!("{kind}/{name}"))
            }
            "Job" => {
                s.jobs.remove(&k).ok_or_else(missing)?;
                s.succeeded.remove(&k);
                Owner::Controller(format!("Job/{name}"))
            }
            "DaemonSet" => {
                let before = s.daemonsets.len();
                s.daemonsets.retain(|d| (d.namespace.as_str(), d.name.as_str()) != (namespace, name));
                if s.daemonsets.len() == before {
                    return Err(missing());
                }
                Owner::DaemonSet(name.to_string())
            }
            "PodDisruptionBudget" => {
                let before = s.pdbs.len();
                s.pdbs.retain(|d| (d.namespace.as_str(), d.name.as_str()) != (namespace, name));
                return if s.pdbs.len() == before { Err(missing()) } else { Ok(()) };
            }
            _ => return Err(missing()),
        };
        let gone: Vec<String> =
            s.pods.values().filter(|p| p.namespace == namespace && p.owner == owner).map(|p| p.key()).collect();
        for p in gone {
            controllers::remove_pod(&mut s, &p, now);
        }
        Ok(())
    }

    /// A Ready node that no instance backs, present from the start (a kOps `CloudGroup`
    /// InstanceGroup's node); `false` when the catalog has no such instance type.
    pub fn add_static_node(&self, name: &str, instance_type: &str, zone: &str) -> bool {
        let Some(t) = self.catalog.get(instance_type) else { return false };
        let now = self.clock.now();
        let mut node = node_for(name, t, zone, now);
        node.ready = true;
        node.taints.clear();
        let mut s = self.lock();
        s.static_nodes.insert(name.to_string());
        s.nodes.insert(name.to_string(), node);
        true
    }

    /// When the next running Job pod completes.
    pub fn next_completion(&self) -> Option<Duration> {
        let s = self.lock();
        let runtime = |pod: &str| {
            let p = s.pods.get(pod)?;
            let Owner::Controller(c) = &p.owner else { return None };
            let job = c.strip_prefix("Job/")?;
            s.jobs.get(&key(&p.namespace, job)).map(|j| j.runtime)
        };
        s.started.iter().filter_map(|(pod, at)| runtime(pod).map(|r| at.saturating_add(r))).min()
    }

    /// Static nodes (name, instance type, zone).
    pub fn static_nodes(&self) -> Vec<(String, String, String)> {
        let s = self.lock();
        s.static_nodes
            .iter()
            .filter_map(|n| s.nodes.get(n))
            .map(|n| {
                let label = |k: &str| n.labels.get(k).cloned().unwrap_or_default();
                (n.name.clone(), label(INSTANCE_TYPE), label(ZONE))
            })
            .collect()
    }

    /// Pods' waits for a node that ended since the last call.
    pub fn take_waits(&self) -> Vec<Wait> {
        std::mem::take(&mut self.lock().waits)
    }

    /// Pods waiting for a node now (DaemonSet pods excluded), with when each was created.
    pub fn waiting(&self) -> Vec<Duration> {
        self.lock().pods.values().filter(|p| p.node.is_none()).map(|p| p.created_at).collect()
    }

    /// Sets or clears an annotation on a pod (`karpenter.sh/do-not-disrupt`).
    pub fn set_pod_do_not_disrupt(&self, namespace: &str, name: &str, value: bool) {
        if let Some(p) = self.lock().pods.get_mut(&key(namespace, name)) {
            p.do_not_disrupt = value;
        }
    }

    /// Fault injection: while set, new instances never register as nodes.
    pub fn break_kubelets(&self, broken: bool) {
        self.lock().kubelets_broken = broken;
    }

    /// Fault injection: while set, marking a node for disruption fails and writes nothing.
    pub fn refuse_disruption_marks(&self, refused: bool) {
        self.lock().marks_refused = refused;
    }

    /// How many marking writes were refused by [`SimCluster::refuse_disruption_marks`].
    pub fn disruption_marks_refused(&self) -> u64 {
        self.lock().marks_refusals
    }

    pub fn events(&self) -> Vec<RecordedEvent> {
        self.lock().events.clone()
    }

    pub fn evictions(&self) -> u64 {
        self.lock().evictions
    }

    /// Pods of a Deployment that are Running.
    pub fn running(&self, namespace: &str, deployment: &str) -> usize {
        self.running_of(namespace, &format!("Deployment/{deployment}"))
    }

    /// Pods of a controller (`StatefulSet/db`, `Job/nightly`) that are Running.
    pub fn running_of(&self, namespace: &str, controller: &str) -> usize {
        let owner = Owner::Controller(controller.to_string());
        self.lock()
            .pods
            .values()
            .filter(|p| p.namespace == namespace && p.owner == owner && p.phase == Phase::Running)
            .count()
    }

    /// Converges the cluster one step at the clock's current time.
    pub fn tick(&self) {
        let now = self.clock.now();
        // Terminated instances play no part: their nodes go because they are not alive.
        let instances = self.cloud.current();
        let mut s = self.lock();
        kubelet(&mut s, &instances, &self.catalog, now, self.cloud.timing().ready_after);
        controllers::daemonsets(&mut s, now);
        controllers::replicas(&mut s, now);
        controllers::jobs(&mut s, now);
        schedule(&mut s, &self.catalog, now);
    }

    fn pdb_status(s: &State) -> Vec<Pdb> {
        s.pdbs
            .iter()
            .map(|p| {
                let matching: Vec<&ClusterPod> = s
                    .pods
                    .values()
                    .filter(|x| x.namespace == p.namespace && p.selector.matches(x.spec.labels()))
                    .collect();
                let healthy = matching.iter().filter(|x| x.phase == Phase::Running).count() as i64;
                let expected = matching.len() as i64;
                let allowed = match (p.min_available, p.max_unavailable) {
                    (Some(min), _) => healthy - min.of(expected),
                    (None, Some(max)) => max.of(expected) - (expected - healthy),
                    (None, None) => healthy,
                };
                Pdb {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    selector: p.selector.clone(),
                    disruptions_allowed: allowed.max(0),
                }
            })
            .collect()
    }
}

fn kubelet(
    s: &mut State,
    instances: &[crate::cloud::provider::Instance],
    catalog: &Catalog,
    now: Duration,
    ready_after: Duration,
) {
    for i in instances {
        let live = matches!(i.state, InstanceState::Running);
        if !live || s.kubelets_broken || s.nodes.contains_key(&i.id) || s.retired.contains(&i.id) {
            continue;
        }
        let Some(t) = catalog.get(&i.instance_type) else { continue };
        let mut node = node_for(&i.id, t, &i.zone, now);
        node.provider_id = i.provider_id();
        s.nodes.insert(i.id.clone(), node);
    }
    let alive: Vec<&str> = instances
        .iter()
        .filter(|i| i.state != InstanceState::Terminated && i.state != InstanceState::ShuttingDown)
        .map(|i| i.id.as_str())
        .collect();
    let gone: Vec<String> =
        s.nodes.keys().filter(|n| !alive.contains(&n.as_str()) && !s.static_nodes.contains(*n)).cloned().collect();
    for n in gone {
        remove_node(s, &n);
    }
    for i in instances {
        if let Some(n) = s.nodes.get_mut(&i.id)
            && !n.ready
            && now >= i.launched_at + ready_after
        {
            n.ready = true;
            n.taints.retain(|t| t.key != NOT_READY_TAINT);
        }
    }
}

/// A new node of type `t` in `zone`, not Ready yet.
fn node_for(name: &str, t: &InstanceType, zone: &str, now: Duration) -> ClusterNode {
    let labels = Labels::from([
        (INSTANCE_TYPE.to_string(), t.name.clone()),
        (ZONE.to_string(), zone.to_string()),
        ("topology.kubernetes.io/region".to_string(), zone.trim_end_matches(char::is_alphabetic).to_string()),
        ("kubernetes.io/arch".to_string(), t.arch.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        (HOSTNAME.to_string(), name.to_string()),
    ]);
    ClusterNode {
        name: name.to_string(),
        provider_id: format!("static:///{zone}/{name}"),
        labels,
        taints: vec![Taint {
            key: NOT_READY_TAINT.into(),
            value: None,
            effect: TaintEffect::NoSchedule,
            time_added: None,
        }],
        annotations: BTreeMap::new(),
        allocatable: allocatable(t, &KubeletSettings::default()),
        ready: false,
        unschedulable: false,
        created_at: now,
        pods_changed_at: now,
    }
}

fn remove_node(s: &mut State, node: &str) {
    s.nodes.remove(node);
    s.static_nodes.remove(node);
    s.retired.push(node.to_string());
    s.pods.retain(|_, p| p.node.as_deref() != Some(node));
}

/// What the scheduler's answer for a pod already found unschedulable depends on: the nodes,
/// their readiness, marks and pods.
fn nodes_fingerprint(s: &State) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for n in s.nodes.values() {
        (&n.name, n.ready, n.unschedulable, n.taints.len(), n.labels.len(), n.pods_changed_at).hash(&mut h);
    }
    h.finish()
}

/// Binds pending pods. A pod already found unschedulable is tried again only once the nodes
/// changed, as the real scheduler retries it on a cluster event.
fn schedule(s: &mut State, catalog: &Catalog, now: Duration) {
    let nodes_now = nodes_fingerprint(s);
    let retry = s.scheduled_over != Some(nodes_now);
    let pending: Vec<Pod> =
        s.pods.values().filter(|p| p.node.is_none() && (retry || !p.unschedulable)).map(|p| p.spec.clone()).collect();
    if pending.is_empty() {
        return;
    }
    let mut on: BTreeMap<&str, Vec<&ClusterPod>> = BTreeMap::new();
    for p in s.pods.values() {
        if let Some(n) = &p.node {
            on.entry(n.as_str()).or_default().push(p);
        }
    }
    let nodes = s
        .nodes
        .values()
        .map(|n| n.scheduling_node(on.get(n.name.as_str()).into_iter().flatten().copied(), 0.0))
        .collect();
    let input = Input {
        pods: pending,
        nodes,
        daemonsets: Vec::new(),
        pools: Vec::new(),
        catalog,
        cluster_limits: Default::default(),
        strategy: Strategy::FirstFitDecreasing,
    };
    let plan = solve(&input);
    for b in plan.bindings {
        if let Some(p) = s.pods.get_mut(&b.pod) {
            p.node = Some(b.node.clone());
            p.phase = Phase::Running;
            p.unschedulable = false;
            let created = p.created_at;
            let job = matches!(&p.owner, Owner::Controller(c) if c.starts_with("Job/"));
            s.waits.push(Wait { created, bound: Some(now) });
            if job {
                s.started.insert(b.pod.clone(), now);
            }
        }
        if let Some(n) = s.nodes.get_mut(&b.node) {
            n.pods_changed_at = now;
        }
    }
    for u in plan.unschedulable {
        if let Some(p) = s.pods.get_mut(&u.pod) {
            p.unschedulable = true;
        }
    }
    s.scheduled_over = Some(nodes_fingerprint(s));
}

impl ClusterApi for SimCluster {
    async fn snapshot(&self) -> Result<Snapshot, ClusterError> {
        let s = self.lock();
        Ok(Snapshot {
            pods: s.pods.values().cloned().collect(),
            nodes: s.nodes.values().cloned().collect(),
            daemonsets: s.daemonsets.iter().map(|d| d.template.clone()).collect(),
            pdbs: SimCluster::pdb_status(&s),
            do_not_disrupt_until: Default::default(),
        })
    }

    async fn register(
        &self,
        node: &str,
        labels: &Labels,
        taints: &[Taint],
        annotations: &Labels,
    ) -> Result<(), ClusterError> {
        let mut s = self.lock();
        let n = s.nodes.get_mut(node).ok_or_else(|| ClusterError::NotFound(format!("Node {node}")))?;
        n.labels.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        n.annotations.extend(annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
        n.taints.retain(|t| t.key != marks::UNREGISTERED_TAINT);
        for t in taints {
            if !n.taints.iter().any(|x| x.key == t.key && x.effect == t.effect) {
                n.taints.push(t.clone());
            }
        }
        Ok(())
    }

    async fn mark_for_disruption(&self, node: &str, marks: &DisruptionMarks) -> Result<(), ClusterError> {
        let mut s = self.lock();
        if s.marks_refused {
            s.marks_refusals += 1;
            return Err(ClusterError::Api(format!("nodes \"{node}\" is forbidden: patch refused (injected fault)")));
        }
        let n = s.nodes.get_mut(node).ok_or_else(|| ClusterError::NotFound(format!("Node {node}")))?;
        n.unschedulable = true;
        if !marks::disrupting(n) {
            n.taints.push(marks::disrupted_taint());
        }
        n.annotations.extend(marks.annotations());
        Ok(())
    }

    async fn uncordon(&self, node: &str) -> Result<(), ClusterError> {
        let mut s = self.lock();
        let n = s.nodes.get_mut(node).ok_or_else(|| ClusterError::NotFound(format!("Node {node}")))?;
        n.unschedulable = false;
        n.taints.retain(|t| t.key != DISRUPTED_TAINT);
        n.annotations.retain(|k, _| !k.starts_with(marks::DISRUPTION_PREFIX));
        Ok(())
    }

    async fn evict(&self, namespace: &str, pod: &str) -> Result<(), ClusterError> {
        let now = self.clock.now();
        let mut s = self.lock();
        let k = key(namespace, pod);
        let Some(p) = s.pods.get(&k) else { return Ok(()) };
        for pdb in SimCluster::pdb_status(&s) {
            if pdb.covers(p) && pdb.disruptions_allowed <= 0 {
                return Err(ClusterError::Blocked(format!(
                    "Cannot evict pod {k} as it would violate PodDisruptionBudget {}/{}",
                    pdb.namespace, pdb.name
                )));
            }
        }
        let p = s.pods.remove(&k).expect("present");
        s.evictions += 1;
        if let Some(n) = p.node.and_then(|n| s.nodes.get_mut(&n)) {
            n.pods_changed_at = now;
        }
        Ok(())
    }

    async fn delete_node(&self, node: &str) -> Result<(), ClusterError> {
        remove_node(&mut self.lock(), node);
        Ok(())
    }

    async fn event(&self, subject: &Subject, reason: &str, message: &str) {
        let at = self.clock.now();
        self.lock().events.push(RecordedEvent {
            at,
            subject: subject.clone(),
            reason: reason.into(),
            message: message.into(),
        });
    }
}
