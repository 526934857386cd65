//! What a zone costs the pods that go to it: the least a node of its own there costs per pod.
//! Pods free to pick a zone (zonal self-affinity) take a cheap one. A zone spread fixes how
//! many pods each zone gets, not which: its largest pods go where capacity costs least, its
//! smallest to the zones that offer little or dear capacity.

use std::collections::BTreeMap;

use super::resources::{Resources, fit_count};

/// Per zone: the allocatable and price of each type a pool may launch there.
pub type ZoneOffers = Vec<Vec<(Resources, f64)>>;

/// The least a node of its own with one of `offers` costs per pod of `requests`; infinite when
/// none holds one.
pub fn per_pod(offers: &[(Resources, f64)], requests: &Resources) -> f64 {
    offers.iter().fold(f64::INFINITY, |best, (alloc, price)| match fit_count(alloc, requests) {
        0 => best,
        n => best.min(price / n as f64),
    })
}

/// The zones of `eligible` (names, of `zones`) where pods of `requests` cost least per pod;
/// all of them when no zone is known to hold one.
pub fn cheapest(zones: &[String], offers: &ZoneOffers, eligible: &[String], requests: &Resources) -> Vec<String> {
    let cost = |z: &String| {
        zones.iter().position(|x| x == z).and_then(|i| offers.get(i)).map_or(f64::INFINITY, |o| per_pod(o, requests))
    };
    let costs: Vec<f64> = eligible.iter().map(cost).collect();
    let least = costs.iter().copied().fold(f64::INFINITY, f64::min);
    eligible
        .iter()
        .zip(&costs)
        .filter(|(_, c)| !least.is_finite() || **c <= least * (1.0 + 1e-9))
        .map(|(z, _)| z.clone())
        .collect()
}

/// A spread's pods by zone, as `(member, zone, pods)`: each zone gets as many as the
/// water-fill over `counts` (the matching pods already there) gives it, smallest count first
/// and ties by name, and the largest pods go to the zones where the members cost least.
/// `members` are `(requests, pods)` open to every zone of `zones`. `None` when the zones cost
/// the same, or some zone holds none of the members' pods.
pub fn spread(
    zones: &[String],
    offers: &ZoneOffers,
    counts: &BTreeMap<String, u32>,
    members: &[(&Resources, &[usize])],
) -> Option<Vec<(usize, String, Vec<usize>)>> {
    if offers.len() != zones.len() || zones.is_empty() {
        return None;
    }
    let cost: Vec<Vec<f64>> = members.iter().map(|(r, _)| offers.iter().map(|o| per_pod(o, r)).collect()).collect();
    let zone_cost: Vec<f64> = (0..zones.len()).map(|z| cost.iter().map(|c| c[z]).sum()).collect();
    let least = zone_cost.iter().copied().fold(f64::INFINITY, f64::min);
    let most = zone_cost.iter().copied().fold(0.0, f64::max);
    if !most.is_finite() || most <= least * (1.0 + 1e-9) {
        return None;
    }
    let mut count: Vec<u32> = zones.iter().map(|z| counts.get(z).copied().unwrap_or(0)).collect();
    let mut quota = vec![0usize; zones.len()];
    let total: usize = members.iter().map(|(_, pods)| pods.len()).sum();
    for _ in 0..total {
        let z = (0..zones.len()).min_by_key(|&z| (count[z], &zones[z])).expect("zones");
        count[z] += 1;
        quota[z] += 1;
    }
    let mut by_cost: Vec<usize> = (0..zones.len()).collect();
    by_cost.sort_by(|a, b| zone_cost[*a].total_cmp(&zone_cost[*b]).then(zones[*a].cmp(&zones[*b])));
    let mut pods: Vec<(f64, usize, usize)> = members
        .iter()
        .enumerate()
        .flat_map(|(m, (_, pods))| {
            let size = cost[m].iter().copied().fold(f64::INFINITY, f64::min);
            pods.iter().map(move |&p| (size, m, p))
        })
        .collect();
    pods.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut parts: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    let mut order = by_cost.into_iter();
    let mut z = order.next().expect("zones");
    for (_, m, p) in pods {
        while quota[z] == 0 {
            z = order.next().expect("as many places as pods");
        }
        quota[z] -= 1;
        parts.entry((m, z)).or_default().push(p);
    }
    Some(parts.into_iter().map(|((m, z), pods)| (m, zones[z].clone(), pods)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::resources::GIB;

    fn node(cpu: i64, price: f64) -> (Resources, f64) {
        (Resources { cpu: cpu * 1000, memory: 64 * GIB, pods: 110, ..Resources::default() }, price)
    }

    #[test]
    fn the_largest_pods_go_where_capacity_is_cheap_and_the_counts_stay_even() {
        let zones: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let offers = vec![vec![node(4, 0.2)], vec![node(4, 0.1)], vec![node(4, 0.4)]];
        let big = Resources { cpu: 2000, pods: 1, ..Resources::default() };
        let small = Resources { cpu: 100, pods: 1, ..Resources::default() };
        let (big_pods, small_pods) = ([0, 1, 2], [3, 4, 5, 6]);
        let mut counts = BTreeMap::new();
        counts.insert("a".to_string(), 1);
        let out = spread(&zones, &offers, &counts, &[(&big, &big_pods), (&small, &small_pods)]).unwrap();
        let mut per_zone = BTreeMap::new();
        for (m, z, pods) in &out {
            let e = per_zone.entry(z.clone()).or_insert((0, 0));
            if *m == 0 { e.0 += pods.len() } else { e.1 += pods.len() }
        }
        // Seven pods over counts (1, 0, 0): a gets 2, b 3 and c 2, as the water-fill gives
        // them; b, the cheapest, takes the three large ones, and c, the dearest, small ones.
        assert_eq!(per_zone["a"], (0, 2));
        assert_eq!(per_zone["b"], (3, 0));
        assert_eq!(per_zone["c"], (0, 2));
        let mut all: Vec<usize> = out.iter().flat_map(|(_, _, p)| p.clone()).collect();
        all.sort();
        assert_eq!(all, (0..7).collect::<Vec<_>>());
        let same = vec![vec![node(4, 0.1)]; 3];
        assert!(spread(&zones, &same, &counts, &[(&big, &big_pods)]).is_none(), "equal prices: as before");
        let none_in_c = vec![vec![node(4, 0.1)], vec![node(4, 0.1)], vec![node(1, 0.1)]];
        assert!(spread(&zones, &none_in_c, &counts, &[(&big, &big_pods)]).is_none(), "a zone holds none");
    }
}
