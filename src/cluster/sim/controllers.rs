//! The simulated cluster's controllers: DaemonSet, Deployment and StatefulSet (replicas), and
//! Job. Each runs once per tick over the cluster's state.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::{State, Wait, key};
use crate::cluster::model::{ClusterPod, DISRUPTED_TAINT, NOT_READY_TAINT, Owner, Phase};
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
        eviction: Default::default(),
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
    if s.daemonsets.is_empty() {
        return;
    }
    // Which node lacks which DaemonSet's pod, found without copying the nodes.
    let missing: Vec<(usize, String)> = {
        let have: HashSet<(&str, &str, &str)> = s
            .pods
            .values()
            .filter_map(|p| match (&p.owner, &p.node) {
                (Owner::DaemonSet(d), Some(n)) => Some((p.namespace.as_str(), d.as_str(), n.as_str())),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for (i, ds) in s.daemonsets.iter().enumerate() {
            for n in s.nodes.values() {
                let fits = untolerated(&n.taints, &ds.template.constraints.tolerations)
                    .is_none_or(|t| t.key == NOT_READY_TAINT || t.key == DISRUPTED_TAINT);
                if fits && !have.contains(&(ds.namespace.as_str(), ds.name.as_str(), n.name.as_str())) {
                    out.push((i, n.name.clone()));
                }
            }
        }
        out
    };
    for (i, node) in missing {
        let ds = s.daemonsets[i].clone();
        let name = format!("{}-{node}", ds.name);
        let k = key(&ds.namespace, &name);
        if s.pods.contains_key(&k) {
            continue;
        }
        let mut p = new_pod(s, &ds.namespace, name, Owner::DaemonSet(ds.name.clone()), &ds.template, now);
        p.node = Some(node);
        p.phase = Phase::Running;
        s.pods.insert(k, p);
    }
}

/// How many pods each controller (`namespace`, `Kind/name`) has, in one pass over the pods.
fn counts(s: &State) -> HashMap<(&str, &str), u32> {
    let mut out = HashMap::new();
    for p in s.pods.values() {
        if let Owner::Controller(c) = &p.owner {
            *out.entry((p.namespace.as_str(), c.as_str())).or_default() += 1;
        }
    }
    out
}

/// The pods of one controller: whether bound, when created, key.
fn pods_of(s: &State, namespace: &str, owner: &Owner) -> Vec<(bool, Duration, String)> {
    s.pods
        .values()
        .filter(|p| p.namespace == namespace && p.owner == *owner)
        .map(|p| (p.node.is_some(), p.created_at, p.key()))
        .collect()
}

/// Deployments and StatefulSets: as many pods as replicas.
pub(super) fn replicas(s: &mut State, now: Duration) {
    let specs: Vec<DeploymentSpec> = s.deployments.values().cloned().collect();
    let have: Vec<u32> = {
        let counts = counts(s);
        specs
            .iter()
            .map(|d| {
                let owner = format!("{}/{}", d.kind.label(), d.name);
                counts.get(&(d.namespace.as_str(), owner.as_str())).copied().unwrap_or(0)
            })
            .collect()
    };
    for (d, have) in specs.iter().zip(have) {
        match d.kind {
            ReplicaKind::Deployment => deployment(s, d, have, now),
            // Settled sets (as many pods as replicas) need no look at their pods.
            ReplicaKind::StatefulSet { .. }
                if have == d.replicas && (d.replicas == 0 || s.pods.contains_key(&last_ordinal(d))) => {}
            ReplicaKind::StatefulSet { ordered } => stateful_set(s, d, ordered, now),
        }
    }
}

/// The key of the set's highest ordinal pod.
fn last_ordinal(d: &DeploymentSpec) -> String {
    key(&d.namespace, &format!("{}-{}", d.name, d.replicas.saturating_sub(1)))
}

fn owner_of(d: &DeploymentSpec) -> Owner {
    Owner::Controller(format!("{}/{}", d.kind.label(), d.name))
}

fn deployment(s: &mut State, d: &DeploymentSpec, have: u32, now: Duration) {
    let owner = owner_of(d);
    if have > d.replicas {
        let mut mine = pods_of(s, &d.namespace, &owner);
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
    if s.jobs.is_empty() {
        return;
    }
    // Pods that ran their runtime succeed: only running Job pods have a start time.
    let finished: Vec<(String, String)> = s
        .started
        .iter()
        .filter_map(|(pod, at)| {
            let p = s.pods.get(pod)?;
            let Owner::Controller(c) = &p.owner else { return None };
            let job = key(&p.namespace, c.strip_prefix("Job/")?);
            let runtime = s.jobs.get(&job)?.runtime;
            (now >= at.saturating_add(runtime)).then(|| (pod.clone(), job))
        })
        .collect();
    for (pod, job) in finished {
        remove_pod(s, &pod, now);
        *s.succeeded.entry(job).or_default() += 1;
    }
    let specs: Vec<JobSpec> = s.jobs.values().cloned().collect();
    let active: Vec<u32> = {
        let counts = counts(s);
        specs
            .iter()
            .map(|j| {
                let owner = format!("Job/{}", j.name);
                counts.get(&(j.namespace.as_str(), owner.as_str())).copied().unwrap_or(0)
            })
            .collect()
    };
    for (j, active) in specs.iter().zip(active) {
        let k = key(&j.namespace, &j.name);
        let owner = Owner::Controller(format!("Job/{}", j.name));
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
