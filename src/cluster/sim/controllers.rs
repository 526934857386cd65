//! The simulated cluster's controllers: DaemonSet, Deployment and StatefulSet (replicas), and
//! Job. Each runs once per tick over the cluster's state.

use std::collections::HashMap;
use std::time::Duration;

use super::{State, Wait, key};
use crate::cluster::model::{ClusterNode, ClusterPod, DISRUPTED_TAINT, NOT_READY_TAINT, Owner, Phase};
use crate::cluster::workload::{DeploymentSpec, JobSpec, ReplicaKind};
use crate::scheduling::pod::{Pod, untolerated};

pub(super) fn new_pod(
    s: &mut State,
    namespace: &str,
    name: String,
    owner: Owner,
    template: &Pod,
    now: Duration,
) -> ClusterPod {
    s.seq += 1;
    let mut spec = template.clone();
    spec.name = key(namespace, &name);
    ClusterPod {
        namespace: namespace.to_string(),
        name,
        owner,
        node: None,
        phase: Phase::Pending,
        unschedulable: false,
        spec,
        do_not_disrupt: false,
        created_at: now,
    }
}

/// Removes a pod as its controller or a deletion does; a pod that never had a node ends its
/// wait unbound.
pub(super) fn remove_pod(s: &mut State, pod: &str, now: Duration) {
    let Some(p) = s.pods.remove(pod) else { return };
    s.started.remove(pod);
    match &p.node {
        Some(n) => {
            if let Some(n) = s.nodes.get_mut(n) {
                n.pods_changed_at = now;
            }
        }
        None if !p.is_node_bound() => s.waits.push(Wait { created: p.created_at, bound: None }),
        None => {}
    }
}

pub(super) fn daemonsets(s: &mut State, now: Duration) {
    let sets = s.daemonsets.clone();
    let nodes: Vec<ClusterNode> = s.nodes.values().cloned().collect();
    for ds in &sets {
        for n in &nodes {
            let name = format!("{}-{}", ds.name, n.name);
            let k = key(&ds.namespace, &name);
            let fits = untolerated(&n.taints, &ds.template.constraints.tolerations)
                .is_none_or(|t| t.key == NOT_READY_TAINT || t.key == DISRUPTED_TAINT);
            if !fits || s.pods.contains_key(&k) {
                continue;
            }
            let mut p = new_pod(s, &ds.namespace, name, Owner::DaemonSet(ds.name.clone()), &ds.template, now);
            p.node = Some(n.name.clone());
            p.phase = Phase::Running;
            s.pods.insert(k, p);
        }
    }
}

/// Each controller's pods (keyed `namespace/Kind/name`): whether bound, when created, key.
type Owned = HashMap<String, Vec<(bool, Duration, String)>>;

/// The pods of every controller, gathered in one pass over the pods.
fn owned(s: &State) -> Owned {
    let mut out = Owned::new();
    for p in s.pods.values() {
        if let Owner::Controller(c) = &p.owner {
            out.entry(format!("{}/{c}", p.namespace)).or_default().push((p.node.is_some(), p.created_at, p.key()));
        }
    }
    out
}

/// Deployments and StatefulSets: as many pods as replicas.
pub(super) fn replicas(s: &mut State, now: Duration) {
    let specs: Vec<DeploymentSpec> = s.deployments.values().cloned().collect();
    let mut owned = owned(s);
    for d in &specs {
        let mine = owned.remove(&format!("{}/{}/{}", d.namespace, d.kind.label(), d.name)).unwrap_or_default();
        match d.kind {
            ReplicaKind::Deployment => deployment(s, d, mine, now),
            ReplicaKind::StatefulSet { ordered } => stateful_set(s, d, ordered, now),
        }
    }
}

fn owner_of(d: &DeploymentSpec) -> Owner {
    Owner::Controller(format!("{}/{}", d.kind.label(), d.name))
}

fn deployment(s: &mut State, d: &DeploymentSpec, mut mine: Vec<(bool, Duration, String)>, now: Duration) {
    let owner = owner_of(d);
    let have = mine.len() as u32;
    if have > d.replicas {
        // Scale down removes unscheduled pods first, then the newest.
        mine.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        for (_, _, k) in mine.into_iter().take((have - d.replicas) as usize) {
            remove_pod(s, &k, now);
        }
    }
    for _ in have..d.replicas {
        let name = format!("{}-{:05x}", d.name, s.seq);
        let mut p = new_pod(s, &d.namespace, name, owner.clone(), &d.template, now);
        p.do_not_disrupt = d.do_not_disrupt;
        s.pods.insert(p.key(), p);
    }
}

/// Pods `name-0` … `name-(replicas-1)`; ordered: the next is created once all before it run.
fn stateful_set(s: &mut State, d: &DeploymentSpec, ordered: bool, now: Duration) {
    let owner = owner_of(d);
    let extra: Vec<String> = s
        .pods
        .values()
        .filter(|p| p.namespace == d.namespace && p.owner == owner)
        .filter(|p| ordinal(&p.name, &d.name).is_none_or(|i| i >= d.replicas))
        .map(|p| p.key())
        .collect();
    for k in extra {
        remove_pod(s, &k, now);
    }
    for i in 0..d.replicas {
        let name = format!("{}-{i}", d.name);
        match s.pods.get(&key(&d.namespace, &name)) {
            Some(p) if ordered && p.phase != Phase::Running => return,
            Some(_) => continue,
            None => {
                let mut p = new_pod(s, &d.namespace, name, owner.clone(), &d.template, now);
                p.do_not_disrupt = d.do_not_disrupt;
                s.pods.insert(p.key(), p);
                if ordered {
                    return;
                }
            }
        }
    }
}

fn ordinal(pod: &str, set: &str) -> Option<u32> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

/// Jobs: pods that ran their runtime succeed and go; new ones start while fewer than
/// `parallelism` run and completions are still owed.
pub(super) fn jobs(s: &mut State, now: Duration) {
    let specs: Vec<JobSpec> = s.jobs.values().cloned().collect();
    let mut owned = if specs.is_empty() { Owned::new() } else { owned(s) };
    for j in &specs {
        let k = key(&j.namespace, &j.name);
        let owner = Owner::Controller(format!("Job/{}", j.name));
        let mine: Vec<String> = owned
            .remove(&format!("{}/Job/{}", j.namespace, j.name))
            .unwrap_or_default()
            .into_iter()
            .map(|(_, _, k)| k)
            .collect();
        let mut active = mine.len() as u32;
        for p in mine {
            if s.started.get(&p).is_some_and(|t| now >= t.saturating_add(j.runtime)) {
                remove_pod(s, &p, now);
                *s.succeeded.entry(k.clone()).or_default() += 1;
                active -= 1;
            }
        }
        let done = s.succeeded.get(&k).copied().unwrap_or(0);
        let owed = j.completions.saturating_sub(done + active);
        for _ in 0..owed.min(j.parallelism.saturating_sub(active)) {
            let name = format!("{}-{:05x}", j.name, s.seq);
            let mut p = new_pod(s, &j.namespace, name, owner.clone(), &j.template, now);
            p.do_not_disrupt = j.do_not_disrupt;
            s.pods.insert(p.key(), p);
        }
    }
}
