//! Zone-level topology, decided before packing: topology spread over zones (and capacity
//! types), zonal pod affinity and zonal anti-affinity become a pinned domain per pod.
//!
//! Hostname-level rules are per-node exclusions (see `groups`).

use std::collections::BTreeMap;

use super::catalog::{CAPACITY_TYPE, ZONE};
use super::groups::Group;
use super::node::Node;
use super::pod::{Constraints, Selector, WhenUnsatisfiable};
use super::requirements::{Requirements, ValueSet};
use super::zone_cost::{self, ZoneOffers};

/// Where each domain's pods stand, and which domains a pod may use.
pub struct Domains<'a> {
    pub nodes: &'a [Node],
    /// Every zone the catalog and pools offer, sorted.
    pub zones: Vec<String>,
    /// Per zone (as `zones`): the allocatable and price of each type a pool may launch there,
    /// for the choices [`zone_cost`] makes; empty when unknown.
    pub offers: ZoneOffers,
}

fn pin(key: &str, value: &str) -> Requirements {
    let mut r = Requirements::new();
    r.add(key, ValueSet::one(value));
    r
}

impl Domains<'_> {
    fn values(&self, key: &str) -> Vec<String> {
        if key == ZONE { self.zones.clone() } else { vec!["on-demand".to_string(), "spot".to_string()] }
    }

    /// Existing pods matching `selector` (in `namespace`) per domain of `key`.
    fn existing(&self, key: &str, selector: &Selector, namespace: &str) -> BTreeMap<String, u32> {
        let mut counts = BTreeMap::new();
        for n in self.nodes {
            let Some(domain) = n.label(key) else { continue };
            let c = n.pods.iter().filter(|p| p.namespace == namespace && selector.matches(&p.labels)).count() as u32;
            *counts.entry(domain.to_string()).or_insert(0) += c;
        }
        counts
    }

    /// Domains of `key` a group's pods may use under its first requirement alternative.
    fn eligible(&self, key: &str, g: &Group) -> Vec<String> {
        eligible(&self.values(key), key, g)
    }
}

/// The `values` of `key` a group's pods may use under its first requirement alternative.
fn eligible(values: &[String], key: &str, g: &Group) -> Vec<String> {
    let alts = g.alternatives(0);
    values.iter().filter(|d| alts.iter().any(|a| a.get(key).is_none_or(|s| s.has(d)))).cloned().collect()
}

/// The namespace of a spread over `key` with `selector` (its first carrier's) and the groups
/// with pods it counts: those carrying it, and those in that namespace whose labels the
/// selector matches, which count wherever they land and so are spread with the others.
fn counted(groups: &[Group], key: &str, selector: &Selector) -> Option<(String, Vec<usize>)> {
    let carries = |c: &Constraints| c.spread.iter().any(|s| s.topology_key == key && s.selector == *selector);
    let first = groups.iter().position(|g| carries(&g.constraints))?;
    let namespace = groups[first].constraints.namespace.clone();
    let counts = |c: &Constraints| carries(c) || (c.namespace == namespace && selector.matches(&c.labels));
    let members = (0..groups.len()).filter(|&i| counts(&groups[i].constraints) && !groups[i].pods.is_empty()).collect();
    Some((namespace, members))
}

/// A zone spread [`pin_domains`] balances over every zone: the groups whose pods it counts
/// and the largest max skew of the pods carrying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSpread {
    pub counted: Vec<usize>,
    pub max_skew: u32,
}

/// The DoNotSchedule zone spreads of `groups` whose counted pods may all use every one of
/// `zones` and that share no group with another: [`pin_domains`] gives each zone the same share of
/// them, to within one pod, so any plan of the packer keeps every zone's count at least
/// `⌈(n − (zones − 1)·max_skew) ÷ zones⌉`, as any plan within the skew must.
pub fn zone_spreads(groups: &[Group], zones: &[String]) -> Vec<ZoneSpread> {
    let mut out: Vec<(Selector, ZoneSpread)> = Vec::new();
    for s in groups.iter().flat_map(|g| &g.constraints.spread) {
        if s.topology_key != ZONE || s.when_unsatisfiable != WhenUnsatisfiable::DoNotSchedule {
            continue;
        }
        if let Some((_, z)) = out.iter_mut().find(|(sel, _)| *sel == s.selector) {
            z.max_skew = z.max_skew.max(s.max_skew);
            continue;
        }
        let Some((_, counted)) = counted(groups, ZONE, &s.selector) else { continue };
        if counted.iter().all(|&gi| eligible(zones, ZONE, &groups[gi]).len() == zones.len()) {
            out.push((s.selector.clone(), ZoneSpread { counted, max_skew: s.max_skew.max(1) }));
        }
    }
    // A group two spreads count is pinned by the first, and the second then fills around it.
    let shares = |a: &ZoneSpread, b: &ZoneSpread| a.counted.iter().any(|g| b.counted.contains(g));
    let alone: Vec<bool> =
        (0..out.len()).map(|i| (0..out.len()).all(|j| i == j || !shares(&out[i].1, &out[j].1))).collect();
    out.into_iter().zip(alone).filter(|(_, a)| *a).map(|((_, z), _)| z).collect()
}

/// The outcome for pods that no domain can take.
pub struct Rejected {
    pub pods: Vec<usize>,
    pub reason: String,
}

/// Pins pods with zone or capacity-type spread (DoNotSchedule), zonal affinity and zonal
/// anti-affinity to a domain each. Returns the groups (split as needed) and rejected pods.
pub fn pin_domains(groups: Vec<Group>, domains: &Domains) -> (Vec<Group>, Vec<Rejected>) {
    let mut rejected = Vec::new();
    let mut out = Vec::new();
    // Spread: water-fill per (key, selector), across every group carrying the constraint.
    let mut spread_keys: Vec<(String, Selector, u32)> = Vec::new();
    for g in &groups {
        for s in &g.constraints.spread {
            let domain_key = s.topology_key == ZONE || s.topology_key == CAPACITY_TYPE;
            if domain_key && s.when_unsatisfiable == WhenUnsatisfiable::DoNotSchedule {
                let k = (s.topology_key.clone(), s.selector.clone(), s.max_skew);
                if !spread_keys.contains(&k) {
                    spread_keys.push(k);
                }
            }
        }
    }
    let mut groups = groups;
    for (key, selector, _skew) in &spread_keys {
        let Some((namespace, members)) = counted(&groups, key, selector) else { continue };
        let mut counts = domains.existing(key, selector, &namespace);
        let mut splits: Vec<(usize, String, Vec<usize>)> = Vec::new();
        let all = domains.values(key);
        let open = key == ZONE && members.iter().all(|&gi| eligible(&all, key, &groups[gi]) == all);
        let costed = members.iter().map(|&gi| (&groups[gi].requests, groups[gi].pods.as_slice())).collect::<Vec<_>>();
        // Zones of different prices: the same counts, each kind of pod where it loses least.
        let by_cost = open.then(|| zone_cost::spread(&all, &domains.offers, &counts, &costed)).flatten();
        let water_fill = by_cost.is_none();
        splits.extend(by_cost.into_iter().flatten().map(|(m, z, pods)| (members[m], z, pods)));
        for &gi in members.iter().filter(|_| water_fill) {
            let eligible = domains.eligible(key, &groups[gi]);
            if eligible.is_empty() {
                rejected.push(Rejected {
                    pods: groups[gi].pods.clone(),
                    reason: format!("topology spread on {key}: no eligible domain"),
                });
                groups[gi].pods.clear();
                continue;
            }
            let mut per: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for &p in &groups[gi].pods {
                let d = eligible
                    .iter()
                    .min_by_key(|d| (counts.get(*d).copied().unwrap_or(0), (*d).clone()))
                    .unwrap()
                    .clone();
                *counts.entry(d.clone()).or_insert(0) += 1;
                per.entry(d).or_default().push(p);
            }
            for (d, pods) in per {
                splits.push((gi, d, pods));
            }
        }
        // Each group's pinned parts take its place, so the groups stay largest first: placed
        // later, a pinned pod would find the node launched for it taken by smaller pods.
        let mut parts: Vec<Vec<Group>> = vec![Vec::new(); groups.len()];
        for (gi, d, pods) in splits {
            let g = groups[gi].split(pods, &pin(key, &d));
            parts[gi].push(g);
        }
        groups = groups
            .into_iter()
            .zip(parts)
            .flat_map(|(g, parts)| std::iter::once(g).chain(parts))
            .filter(|g| !g.pods.is_empty())
            .collect();
    }
    // Zonal affinity and anti-affinity.
    let mut affinity_zone: BTreeMap<String, String> = BTreeMap::new();
    let mut anti_taken: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut next_zone = 0usize;
    for mut g in groups {
        let c = g.constraints.clone();
        if let Some(t) = c.pod_affinity.iter().find(|t| t.topology_key == ZONE) {
            let ns = t.namespaces.first().cloned().unwrap_or_else(|| c.namespace.clone());
            let existing = domains.existing(ZONE, &t.selector, &ns);
            let key = format!("{:?}/{ns}", t.selector);
            let chosen = existing.iter().filter(|(_, n)| **n > 0).max_by_key(|(_, n)| **n).map(|(z, _)| z.clone());
            let eligible = domains.eligible(ZONE, &g);
            let zone = match (chosen, affinity_zone.get(&key)) {
                (Some(z), _) => Some(z),
                (None, Some(z)) => Some(z.clone()),
                (None, None) if t.selector.matches(&c.labels) && !eligible.is_empty() => {
                    // The cheapest zones for its pods, taken in turn among equals.
                    let cheapest = zone_cost::cheapest(&domains.zones, &domains.offers, &eligible, &g.requests);
                    let z = cheapest[next_zone % cheapest.len()].clone();
                    next_zone += 1;
                    Some(z)
                }
                _ => None,
            };
            match zone {
                Some(z) => {
                    affinity_zone.insert(key, z.clone());
                    g.pinned = g.pinned.intersect(&pin(ZONE, &z));
                }
                None => {
                    rejected.push(Rejected {
                        pods: std::mem::take(&mut g.pods),
                        reason: "pod affinity on zone: no pod matches the selector".to_string(),
                    });
                    continue;
                }
            }
        }
        if let Some(t) = c.pod_anti_affinity.iter().find(|t| t.topology_key == ZONE) {
            let ns = t.namespaces.first().cloned().unwrap_or_else(|| c.namespace.clone());
            let taken = domains.existing(ZONE, &t.selector, &ns);
            let key = format!("{:?}/{ns}", t.selector);
            let used = anti_taken.entry(key).or_default();
            let free: Vec<String> = domains
                .eligible(ZONE, &g)
                .into_iter()
                .filter(|z| taken.get(z).copied().unwrap_or(0) == 0 && !used.contains(z))
                .collect();
            let self_match = t.selector.matches(&c.labels);
            if self_match {
                let pods = std::mem::take(&mut g.pods);
                let n = pods.len().min(free.len());
                used.extend(free[..n].iter().cloned());
                for (p, z) in pods[..n].iter().zip(&free) {
                    let mut one = g.clone();
                    one.pods = vec![*p];
                    one.pinned = one.pinned.intersect(&pin(ZONE, z));
                    out.push(one);
                }
                if pods.len() > n {
                    rejected.push(Rejected {
                        pods: pods[n..].to_vec(),
                        reason: format!("pod anti-affinity on zone: only {} zone(s) free of matching pods", free.len()),
                    });
                }
                continue;
            }
            let mut allowed = Requirements::new();
            allowed.add(ZONE, ValueSet::of(false, free.iter().map(String::as_str)));
            g.pinned = g.pinned.intersect(&allowed);
        }
        out.push(g);
    }
    (out, rejected)
}

/// After packing: where a pinned domain could not get capacity (limits, shortages), the pods
/// placed in other domains may now break their spread. Kubernetes would leave such pods
/// pending rather than skew, so they are taken back out of the plan with the reason.
pub fn enforce_spread(plan: &mut super::plan::Plan, input: &super::input::Input, zones: &[String]) {
    use super::plan::Unschedulable;
    let mut keys: Vec<(String, Selector, u32, String)> = Vec::new();
    for p in &input.pods {
        for s in &p.constraints.spread {
            let domain_key = s.topology_key == ZONE || s.topology_key == CAPACITY_TYPE;
            if domain_key && s.when_unsatisfiable == WhenUnsatisfiable::DoNotSchedule {
                let k = (s.topology_key.clone(), s.selector.clone(), s.max_skew, p.constraints.namespace.clone());
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
    }
    if keys.is_empty() {
        return;
    }
    let by_name: std::collections::HashMap<&str, &super::pod::Pod> =
        input.pods.iter().map(|p| (p.name.as_str(), p)).collect();
    for (key, selector, skew, ns) in keys {
        let carries = |c: &Constraints| c.spread.iter().any(|s| s.topology_key == key && s.selector == selector);
        let domains = Domains { nodes: &input.nodes, zones: zones.to_vec(), offers: Vec::new() };
        let first = input.pods.iter().find(|p| carries(&p.constraints)).expect("a carrier");
        let alts = super::groups::levels(&first.constraints).pop().unwrap_or_default();
        let eligible: Vec<String> = domains
            .values(&key)
            .into_iter()
            .filter(|d| alts.iter().any(|a| a.get(&key).is_none_or(|s| s.has(d))))
            .collect();
        let mut counts = domains.existing(&key, &selector, &ns);
        let domain_of_claim =
            |c: &super::plan::NewClaim| if key == ZONE { c.zone.clone() } else { c.capacity_type.label().to_string() };
        for b in &plan.bindings {
            let node = input.nodes.iter().find(|n| n.name == b.node);
            if let (Some(d), Some(p)) = (node.and_then(|n| n.label(&key)), by_name.get(b.pod.as_str()))
                && p.namespace() == ns
                && selector.matches(p.labels())
            {
                *counts.entry(d.to_string()).or_insert(0) += 1;
            }
        }
        for c in &plan.claims {
            let n = c
                .pods
                .iter()
                .filter(|p| {
                    by_name.get(p.as_str()).is_some_and(|p| p.namespace() == ns && selector.matches(p.labels()))
                })
                .count() as u32;
            *counts.entry(domain_of_claim(c)).or_insert(0) += n;
        }
        loop {
            let count = |d: &String| counts.get(d).copied().unwrap_or(0);
            let (Some(min), Some(max)) =
                (eligible.iter().map(count).min(), eligible.iter().max_by_key(|d| count(d)).cloned())
            else {
                break;
            };
            if count(&max) <= min + skew {
                break;
            }
            // Take back the newest carrier placed in the fullest domain.
            let found = plan.claims.iter().enumerate().rev().find_map(|(ci, c)| {
                (domain_of_claim(c) == max).then(|| {
                    c.pods
                        .iter()
                        .rposition(|p| by_name.get(p.as_str()).is_some_and(|p| carries(&p.constraints)))
                        .map(|pi| (ci, pi))
                })?
            });
            let Some((ci, pi)) = found else { break };
            let name = plan.claims[ci].pods.remove(pi);
            let pod = by_name[name.as_str()];
            plan.claims[ci].requests -= &pod.requests;
            *counts.entry(max.clone()).or_insert(0) -= 1;
            plan.unschedulable.push(Unschedulable { pod: name, reason: format!("topology spread on {key}: another {key} could not get capacity for its share, so this pod would exceed max skew {skew}") });
        }
    }
    plan.claims.retain(|c| !c.pods.is_empty());
}
