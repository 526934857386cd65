//! Capacity buffers compiled from a cluster's effective policy: each CapacityBuffer, and the
//! ClusterPolicy `headroom`, as plain data the capacity loop turns into placeholder pods.
//!
//! ```text
//! CapacityBuffer ──podTemplateRef──► PodTemplate ─► Chunk::Template(pod)
//!                └─scalableRef─────► Chunk::Workload (shape and count read from the cluster)
//! ClusterPolicy headroom ──────────► Chunk::Template(cpu + memory pod in one NodePool)
//! ```

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::policy::EffectivePolicy;
use crate::policy::capacitybuffer::{CapacityBuffer, DURATION_ANNOTATION, SCHEDULE_ANNOTATION};
use crate::policy::capstan::Headroom;
use crate::policy::duration::GoDuration;
use crate::policy::meta::CronSchedule;
use crate::scheduling::pod::{Constraints, Pod, Toleration, TolerationOperator};
use crate::scheduling::pool::{NODE_POOL_LABEL, PoolSpec};
use crate::scheduling::resources::Resources;

/// The name the ClusterPolicy's headroom goes by among buffers.
pub const HEADROOM: &str = "headroom";

/// What one chunk of a buffer looks like.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// A fixed pod shape: a PodTemplate, or the headroom's cpu and memory.
    Template(Pod),
    /// Shaped like the newest pod of this workload (`kind` Deployment, StatefulSet or
    /// ReplicaSet), which also gives the count a percentage is taken of.
    Workload { kind: String, name: String },
}

/// When a buffer is kept: from each fire of `schedule`, for `duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub schedule: CronSchedule,
    pub duration: Duration,
}

impl Window {
    fn of(schedule: Option<&CronSchedule>, duration: Option<Duration>) -> Option<Window> {
        Some(Window { schedule: schedule?.clone(), duration: duration? })
    }

    /// Whether `now` falls in a window `[fire, fire + duration)`.
    pub fn open(&self, now: DateTime<Utc>) -> bool {
        use croner::parser::{CronParser, Seconds, Year};
        let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        let Ok(cron) = parser.parse(self.schedule.as_str()) else { return false };
        let Ok(fire) = cron.find_previous_occurrence(&now, true) else { return false };
        let end = fire + chrono::Duration::from_std(self.duration).unwrap_or_default();
        fire <= now && now < end
    }
}

/// One buffer, ready to size.
#[derive(Debug, Clone, PartialEq)]
pub struct Buffer {
    /// `CapacityBuffer/<name>`, or [`HEADROOM`]: what its placeholders are marked with.
    pub name: String,
    /// The namespace of its placeholders and of the workload it names.
    pub namespace: String,
    pub chunk: Chunk,
    pub replicas: Option<u32>,
    pub percentage: Option<u32>,
    /// Caps on the chunks' total requests: (resource, millicores for cpu, else units).
    pub limits: Option<Vec<(String, i64)>>,
    /// Kept only inside this window; always when unset.
    pub window: Option<Window>,
}

/// Every buffer of one policy revision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buffers {
    pub buffers: Vec<Buffer>,
}

impl Buffers {
    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }

    /// The buffers of `policy`; `pools` highest weight first. Buffers with errors (reported by
    /// validation) and those of another provisioning strategy are left out.
    pub fn from_policy(policy: &EffectivePolicy, pools: &[PoolSpec]) -> Buffers {
        let mut buffers: Vec<Buffer> =
            policy.capacity_buffers.iter().filter_map(|b| buffer(&b.value, policy)).collect();
        let headroom = policy.cluster_policy.as_ref().and_then(|p| p.value.spec.headroom.as_ref());
        buffers.extend(headroom.and_then(|h| headroom_buffer(h, pools)));
        Buffers { buffers }
    }
}

fn count(n: Option<i64>) -> Option<u32> {
    n.and_then(|n| u32::try_from(n).ok())
}

fn buffer(b: &CapacityBuffer, policy: &EffectivePolicy) -> Option<Buffer> {
    if !b.active() {
        return None;
    }
    let ns = b.namespace().to_string();
    let spec = &b.spec;
    let chunk = match (&spec.pod_template_ref, &spec.scalable_ref) {
        (Some(r), None) => {
            let t =
                policy.pod_templates.iter().find(|t| t.value.metadata.name == r.name && t.value.namespace() == ns)?;
            let template = t.value.spec().ok()?;
            let labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
            let pod = crate::cluster::convert::pod(&ns, &r.name, &labels, template.spec.as_ref()?).ok()?;
            Chunk::Template(pod)
        }
        (None, Some(s)) => Chunk::Workload { kind: s.kind.clone(), name: s.name.clone() },
        _ => return None,
    };
    let notes = &b.metadata.annotations;
    let schedule = notes.get(SCHEDULE_ANNOTATION).and_then(|s| CronSchedule::parse(s).ok());
    let duration = notes.get(DURATION_ANNOTATION).and_then(|d| GoDuration::parse(d)).map(|d| d.duration());
    if notes.contains_key(SCHEDULE_ANNOTATION) != schedule.is_some() || schedule.is_some() != duration.is_some() {
        return None;
    }
    let limits = spec.limits.as_ref().map(|l| {
        let amount = |k: &str, q: &crate::policy::quantity::Quantity| if k == "cpu" { q.milli() } else { q.units() };
        l.iter().map(|(k, q)| (k.clone(), amount(k, q).clamp(0, i128::from(i64::MAX)) as i64)).collect()
    });
    Some(Buffer {
        name: format!("CapacityBuffer/{}", b.metadata.name),
        namespace: ns,
        chunk,
        replicas: count(spec.replicas),
        percentage: count(spec.percentage),
        limits,
        window: Window::of(schedule.as_ref(), duration),
    })
}

/// The headroom as one chunk: a pod requesting its cpu and memory, selecting its pool (named,
/// or the highest-weight one) and tolerating that pool's taints.
fn headroom_buffer(h: &Headroom, pools: &[PoolSpec]) -> Option<Buffer> {
    let pool = match &h.node_pool {
        Some(name) => pools.iter().find(|p| &p.name == name)?,
        None => pools.first()?,
    };
    let cpu = h.cpu.as_ref().map_or(0, |q| q.milli() as i64);
    let memory = h.memory.as_ref().map_or(0, |q| q.units() as i64);
    if cpu <= 0 && memory <= 0 {
        return None;
    }
    let mut c = Constraints { namespace: "default".into(), ..Constraints::default() };
    c.node_selector.insert(NODE_POOL_LABEL.to_string(), pool.name.clone());
    c.tolerations = pool
        .taints
        .iter()
        .chain(&pool.startup_taints)
        .map(|t| Toleration {
            key: t.key.clone(),
            operator: TolerationOperator::Exists,
            value: String::new(),
            effect: Some(t.effect),
        })
        .collect();
    let requests = Resources { cpu, memory, pods: 1, ..Resources::default() };
    let pod = Pod { name: format!("default/{HEADROOM}"), requests, constraints: Arc::new(c), owner: None };
    Some(Buffer {
        name: HEADROOM.to_string(),
        namespace: "default".into(),
        chunk: Chunk::Template(pod),
        replicas: Some(1),
        percentage: None,
        limits: None,
        window: Window::of(h.schedule.as_ref(), h.duration.as_ref().map(|d| d.duration())),
    })
}
