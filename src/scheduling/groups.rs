//! Pods with the same constraints and requests are interchangeable, so the scheduler works on
//! groups of them: 100,000 pods of a few dozen shapes are a few hundred groups.

use std::collections::HashMap;
use std::sync::Arc;

use super::pod::{Constraints, Pod, Selector, WhenUnsatisfiable};
use super::requirements::Requirements;
use super::resources::Resources;

/// A per-node exclusion: at most so many pods of a kind on one node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExclKey {
    /// Hostname anti-affinity: pods with the term avoid nodes with pods matching the selector.
    Anti { selector: Selector, namespaces: Vec<String> },
    /// Hostname topology spread: pods matching the selector, counted per node.
    Spread { selector: Selector },
    /// A host port.
    Port(u16, String),
}

impl ExclKey {
    /// Whether a pod with these constraints is counted by the key.
    pub fn matches(&self, c: &Constraints) -> bool {
        match self {
            ExclKey::Anti { selector, namespaces } => namespaces.contains(&c.namespace) && selector.matches(&c.labels),
            ExclKey::Spread { selector } => selector.matches(&c.labels),
            ExclKey::Port(p, proto) => c.host_ports.iter().any(|(q, r)| q == p && r == proto),
        }
    }
}

/// How a group relates to an exclusion key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    pub key: usize,
    /// The group's pods carry the anti-affinity term (and so avoid matching pods).
    pub term: bool,
    /// The group's pods match the key's selector (and so count).
    pub counts: bool,
    /// Most matching pods per node for a spread constraint the group carries.
    pub cap: Option<u32>,
}

/// Pods sharing constraints and requests.
#[derive(Debug, Clone)]
pub struct Group {
    pub constraints: Arc<Constraints>,
    pub requests: Resources,
    /// Pods still to place (indices into the input), in input order.
    pub pods: Vec<usize>,
    /// Node requirements, one alternative per required-affinity term, for each relaxation
    /// level (level 0 honours every preferred term).
    pub levels: Vec<Vec<Requirements>>,
    /// Extra requirements from topology decisions (a pinned zone).
    pub pinned: Requirements,
    pub roles: Vec<Role>,
    /// Required hostname pod affinity to its own pods: all on one node.
    pub colocate: bool,
}

impl Group {
    pub fn alternatives(&self, level: usize) -> Vec<Requirements> {
        let alts = &self.levels[level.min(self.levels.len() - 1)];
        alts.iter().map(|a| a.intersect(&self.pinned)).collect()
    }

    /// Splits off `pods` into a new group with `extra` requirements.
    pub fn split(&mut self, pods: Vec<usize>, extra: &Requirements) -> Group {
        self.pods.retain(|p| !pods.contains(p));
        let mut g = self.clone();
        g.pods = pods;
        g.pinned = g.pinned.intersect(extra);
        g
    }
}

/// Builds the relaxation levels of node requirements for a pod's constraints. As Karpenter
/// does, the heaviest preferred node-affinity term is first treated as required; each
/// relaxation drops it and tries the next lighter one; the last level has none.
pub fn levels(c: &Constraints) -> Vec<Vec<Requirements>> {
    let selector = Requirements::from_labels(&c.node_selector);
    let terms: Vec<Requirements> = if c.required_affinity.is_empty() {
        vec![selector.clone()]
    } else {
        c.required_affinity.iter().map(|t| t.intersect(&selector)).collect()
    };
    let mut out: Vec<Vec<Requirements>> =
        c.preferred_affinity.iter().map(|(_, p)| terms.iter().map(|t| t.intersect(p)).collect()).collect();
    out.push(terms);
    out
}

/// Groups pods by constraints and requests; largest requests (cpu, then memory) first.
pub fn group(pods: &[Pod]) -> Vec<Group> {
    let mut canon: HashMap<Arc<Constraints>, usize> = HashMap::new();
    let mut by_ptr: HashMap<*const Constraints, usize> = HashMap::new();
    let mut constraints: Vec<Arc<Constraints>> = Vec::new();
    let mut index: HashMap<(usize, Resources), usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for (i, p) in pods.iter().enumerate() {
        let ptr = Arc::as_ptr(&p.constraints);
        let cid = *by_ptr.entry(ptr).or_insert_with(|| {
            *canon.entry(p.constraints.clone()).or_insert_with(|| {
                constraints.push(p.constraints.clone());
                constraints.len() - 1
            })
        });
        let gid = *index.entry((cid, p.requests.clone())).or_insert_with(|| {
            let c = constraints[cid].clone();
            groups.push(Group {
                levels: levels(&c),
                constraints: c,
                requests: p.requests.clone(),
                pods: Vec::new(),
                pinned: Requirements::new(),
                roles: Vec::new(),
                colocate: false,
            });
            groups.len() - 1
        });
        groups[gid].pods.push(i);
    }
    groups.sort_by_key(|g| std::cmp::Reverse((g.requests.cpu, g.requests.memory)));
    groups
}

/// Registers the per-node exclusion keys of every group and each group's roles.
pub fn exclusion_keys(groups: &mut [Group], hostname: &str) -> Vec<ExclKey> {
    let mut keys: Vec<ExclKey> = Vec::new();
    let key_of = |k: ExclKey, keys: &mut Vec<ExclKey>| -> usize {
        match keys.iter().position(|x| *x == k) {
            Some(i) => i,
            None => {
                keys.push(k);
                keys.len() - 1
            }
        }
    };
    let mut own: Vec<Vec<(usize, bool, Option<u32>)>> = Vec::new();
    for g in groups.iter() {
        let c = &g.constraints;
        let mut roles = Vec::new();
        for t in c.pod_anti_affinity.iter().filter(|t| t.topology_key == hostname) {
            let namespaces = if t.namespaces.is_empty() { vec![c.namespace.clone()] } else { t.namespaces.clone() };
            roles.push((key_of(ExclKey::Anti { selector: t.selector.clone(), namespaces }, &mut keys), true, None));
        }
        for s in c
            .spread
            .iter()
            .filter(|s| s.topology_key == hostname && s.when_unsatisfiable == WhenUnsatisfiable::DoNotSchedule)
        {
            roles.push((key_of(ExclKey::Spread { selector: s.selector.clone() }, &mut keys), false, Some(s.max_skew)));
        }
        for (port, proto) in &c.host_ports {
            roles.push((key_of(ExclKey::Port(*port, proto.clone()), &mut keys), false, Some(1)));
        }
        own.push(roles);
    }
    for (g, own_roles) in groups.iter_mut().zip(own) {
        let mut roles: Vec<Role> = Vec::new();
        for (k, key) in keys.iter().enumerate() {
            let counts = key.matches(&g.constraints);
            let term = own_roles.iter().any(|(i, t, _)| *i == k && *t);
            let cap = own_roles.iter().filter(|(i, _, _)| *i == k).find_map(|(_, _, c)| *c);
            if counts || term || cap.is_some() {
                roles.push(Role { key: k, term, counts, cap });
            }
        }
        g.roles = roles;
    }
    keys
}

/// Per-node counts for exclusion keys: pods matching each key, and pods carrying its term.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExclCounts {
    matching: Vec<u32>,
    terms: Vec<u32>,
}

impl ExclCounts {
    pub fn new(keys: usize) -> ExclCounts {
        ExclCounts { matching: vec![0; keys], terms: vec![0; keys] }
    }

    /// Counts for pods already on a node.
    pub fn of_pods<'a>(keys: &[ExclKey], pods: impl Iterator<Item = &'a Constraints>, hostname: &str) -> ExclCounts {
        let mut out = ExclCounts::new(keys.len());
        for c in pods {
            for (k, key) in keys.iter().enumerate() {
                if key.matches(c) {
                    out.matching[k] += 1;
                }
                if let ExclKey::Anti { selector, .. } = key
                    && c.pod_anti_affinity.iter().any(|t| t.topology_key == hostname && t.selector == *selector)
                {
                    out.terms[k] += 1;
                }
            }
        }
        out
    }

    /// How many more pods of a group with `roles` the node can take (u32::MAX: no limit).
    pub fn room(&self, roles: &[Role]) -> u32 {
        let mut room = u32::MAX;
        for r in roles {
            let m = self.matching[r.key];
            if r.term && m > 0 {
                return 0;
            }
            if r.counts && self.terms[r.key] > 0 {
                return 0;
            }
            if r.term && r.counts {
                room = room.min(1);
            }
            if let Some(cap) = r.cap {
                room = room.min(cap.saturating_sub(m));
            }
        }
        room
    }

    /// Undoes [`ExclCounts::add`].
    pub fn remove(&mut self, roles: &[Role], n: u32) {
        for r in roles {
            if r.counts {
                self.matching[r.key] -= n;
            }
            if r.term {
                self.terms[r.key] -= n;
            }
        }
    }

    pub fn add(&mut self, roles: &[Role], n: u32) {
        for r in roles {
            if r.counts {
                self.matching[r.key] += n;
            }
            if r.term {
                self.terms[r.key] += n;
            }
        }
    }
}
