//! What the pod store holds, and the snapshot assembled from the stores.
//!
//! A pod is converted as it arrives ([`StoredPod::of`]): the conversion reads nothing but the
//! object, so converting it once gives what converting it at every snapshot would, and the
//! store keeps a few hundred bytes per pod instead of a whole `Pod` (several kilobytes even
//! trimmed, as `k8s_openapi` types hold every field inline). Pods of one controller share one
//! copy of their (equal) constraints ([`Sharing`]).
//!
//! ```text
//! Pod event ──▶ StoredPod::of (objects::pod, Sharing) ──▶ Store<StoredPod> ─┐
//! Node / DaemonSet / PDB event ──▶ trim ──▶ Store<Node> …  ─────────────────┴▶ snapshot_of ─▶ Snapshot
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::core::DynamicObject;
use kube::runtime::reflector::Lookup;
use kube::runtime::watcher::Event;

use super::objects;
use crate::cluster::model::{ClusterPod, Owner, PodDoNotDisrupt, Snapshot};
use crate::scheduling::pod::Constraints;

/// A pod as the store keeps it.
#[derive(Debug, Clone)]
pub struct StoredPod {
    /// The pod's namespace and name when `pod` is `None` (otherwise `pod` holds them).
    namespace: String,
    name: String,
    /// The loop's view of it; `None` for pods that hold no capacity or could not be read.
    pub pod: Option<ClusterPod>,
    /// What its `karpenter.sh/do-not-disrupt` asks for.
    pub do_not_disrupt: PodDoNotDisrupt,
}

impl StoredPod {
    /// Converts `p`, sharing its constraints through `sharing`.
    pub fn of(p: &Pod, sharing: &mut Sharing) -> StoredPod {
        let mut pod = objects::pod(p);
        let (namespace, name) = match pod.as_mut() {
            Some(c) => {
                sharing.share(c);
                Default::default()
            }
            None => (p.metadata.namespace.clone().unwrap_or_default(), p.metadata.name.clone().unwrap_or_default()),
        };
        StoredPod { namespace, name, pod, do_not_disrupt: objects::do_not_disrupt(p) }
    }

    /// Only the key of `p`: what a delete event needs, without converting (or warning about)
    /// the whole pod again.
    pub fn key_of(p: &Pod) -> StoredPod {
        StoredPod {
            namespace: p.metadata.namespace.clone().unwrap_or_default(),
            name: p.metadata.name.clone().unwrap_or_default(),
            pod: None,
            do_not_disrupt: PodDoNotDisrupt::No,
        }
    }

    /// Namespace and name.
    pub fn identity(&self) -> (&str, &str) {
        match &self.pod {
            Some(p) => (&p.namespace, &p.name),
            None => (&self.namespace, &self.name),
        }
    }
}

impl Lookup for StoredPod {
    type DynamicType = ();

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }

    fn name(&self) -> Option<Cow<'_, str>> {
        Some(self.identity().1.into())
    }

    fn namespace(&self) -> Option<Cow<'_, str>> {
        Some(self.identity().0.into())
    }

    /// Not kept: the store keys objects by namespace and name only.
    fn resource_version(&self) -> Option<Cow<'_, str>> {
        None
    }

    fn uid(&self) -> Option<Cow<'_, str>> {
        None
    }
}

/// A watch event with its object converted by `f`, or by `key` when it is deleted.
pub fn map_event<K, T>(e: Event<K>, mut f: impl FnMut(K) -> T, key: impl FnOnce(K) -> T) -> Event<T> {
    match e {
        Event::Apply(k) => Event::Apply(f(k)),
        Event::Delete(k) => Event::Delete(key(k)),
        Event::Init => Event::Init,
        Event::InitApply(k) => Event::InitApply(f(k)),
        Event::InitDone => Event::InitDone,
    }
}

/// Gives pods of one controller whose constraints are equal one shared copy of them (pods of a
/// ReplicaSet normally all are), as the simulated cluster's pods share their template's. Every
/// pod keeps constraints equal to its own. Holds no constraints alive itself.
#[derive(Debug, Default)]
pub struct Sharing {
    /// (namespace, controller) → the constraints of the first pod seen.
    seen: HashMap<(String, String), Weak<Constraints>>,
    /// Size at which entries whose pods are all gone are dropped.
    prune_at: usize,
}

impl Sharing {
    pub fn share(&mut self, pod: &mut ClusterPod) {
        let controller = match &pod.owner {
            Owner::Controller(c) => c.clone(),
            Owner::DaemonSet(d) => format!("DaemonSet/{d}"),
            Owner::Mirror | Owner::None => return,
        };
        let key = (pod.namespace.clone(), controller);
        if let Some(seen) = self.seen.get(&key).and_then(Weak::upgrade) {
            if Arc::ptr_eq(&seen, &pod.spec.constraints) || *seen == *pod.spec.constraints {
                pod.spec.constraints = seen;
            }
            return;
        }
        self.seen.insert(key, Arc::downgrade(&pod.spec.constraints));
        if self.seen.len() > self.prune_at {
            self.seen.retain(|_, w| w.strong_count() > 0);
            self.prune_at = (2 * self.seen.len()).max(1024);
        }
    }
}

/// The snapshot of what the stores hold; each node's `pods_changed_at` is its creation time
/// until the caller, which keeps that history, fills it in.
pub fn snapshot_of(
    pods: &[Arc<StoredPod>],
    nodes: &[Arc<Node>],
    daemonsets: &[Arc<DaemonSet>],
    pdbs: &[Arc<DynamicObject>],
) -> Snapshot {
    let do_not_disrupt_until = pods
        .iter()
        .filter_map(|p| match p.do_not_disrupt {
            PodDoNotDisrupt::Until(until) => {
                let (namespace, name) = p.identity();
                Some((format!("{namespace}/{name}"), until))
            }
            _ => None,
        })
        .collect();
    let pdbs = pdbs
        .iter()
        .map(|o| {
            let ns = o.metadata.namespace.clone().unwrap_or_default();
            let name = o.metadata.name.clone().unwrap_or_default();
            objects::pdb(&ns, &name, &o.data["spec"], &o.data["status"])
        })
        .collect();
    Snapshot {
        pods: pods.iter().filter_map(|p| p.pod.clone()).collect(),
        nodes: nodes.iter().map(|n| objects::node(n)).collect(),
        daemonsets: daemonsets.iter().filter_map(|d| objects::daemonset(d)).collect(),
        pdbs,
        do_not_disrupt_until,
    }
}
