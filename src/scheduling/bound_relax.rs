//! A relaxation of the packing [`Model`] with fewer groups, for the LP bounds.
//!
//! Workloads often repeat one shape under several selectors: a hostname spread per app, each
//! app with the same request sizes. Each such shared set is a group per request size with its
//! own per-node cap, so the column generation prices hundreds of groups that differ only in
//! which set they belong to. Merging sets alike into one set whose cap is the sum of theirs, and
//! the groups of one size into one group, keeps every packing of the model feasible (a node
//! within each set's cap is within the sum), so an LP over the merged model is still a lower
//! bound of the model's optimum; `min_nodes` keeps what each set forced on its own. It is loose
//! only as far as the merged sets' pods are uneven.

use std::collections::HashMap;

use super::bound_model::{Demand, Key, Model, Shared, ZoneRow};

/// Sets merge only when the largest has at most this many times the pods of the smallest.
const EVEN: f64 = 1.5;

impl Model {
    /// The model with alike shared sets merged: sets of the same cap whose groups are in no
    /// other set, capped by the set alone, of the same request sizes and kinds, and of about as
    /// many pods.
    pub fn merged(&self) -> Model {
        self.merged_with_map().0
    }

    /// [`Model::merged`], and the group each of this model's went into.
    pub fn merged_with_map(&self) -> (Model, Vec<usize>) {
        let n = self.groups.len();
        let mut member = vec![0usize; n];
        for s in &self.shared {
            for &g in &s.groups {
                member[g] += 1;
            }
        }
        let key = |g: usize| self.key(g);
        let mut classes: HashMap<(u32, Vec<Key>), Vec<usize>> = HashMap::new();
        for (si, s) in self.shared.iter().enumerate() {
            let alone = s.groups.iter().all(|&g| member[g] == 1 && self.groups[g].per_node >= s.per_node);
            if !alone || s.groups.is_empty() {
                continue;
            }
            let mut keys: Vec<Key> = s.groups.iter().map(|&g| key(g)).collect();
            keys.sort();
            keys.dedup();
            classes.entry((s.per_node, keys)).or_default().push(si);
        }
        // Within a class, sets of about as many pods: merging a large set with small ones would
        // let the LP put the large set's pods together as it never could.
        let pods = |si: usize| self.shared[si].groups.iter().map(|&g| self.groups[g].pods as f64).sum::<f64>();
        let mut merging: Vec<Vec<usize>> = Vec::new();
        for mut sets in classes.into_values() {
            sets.sort_by(|a, b| pods(*a).total_cmp(&pods(*b)).then(a.cmp(b)));
            let mut run: Vec<usize> = Vec::new();
            for si in sets {
                if run.first().is_some_and(|&first| pods(si) > EVEN * pods(first)) {
                    merging.push(std::mem::take(&mut run));
                }
                run.push(si);
            }
            merging.push(run);
        }
        merging.retain(|sets| sets.len() > 1);
        merging.sort();
        let mut target: Vec<Option<usize>> = vec![None; n];
        let mut groups: Vec<Demand> = Vec::new();
        let mut shared: Vec<Shared> = Vec::new();
        let mut merged_set = vec![false; self.shared.len()];
        for sets in &merging {
            let cap = sets.iter().map(|&si| self.shared[si].per_node).fold(0u32, u32::saturating_add);
            let mut by_key: HashMap<Key, usize> = HashMap::new();
            let mut members = Vec::new();
            for &si in sets {
                merged_set[si] = true;
                for &g in &self.shared[si].groups {
                    let d = &self.groups[g];
                    let t = *by_key.entry(key(g)).or_insert_with(|| {
                        groups.push(Demand { pods: 0, requests: d.requests.clone(), per_node: 0 });
                        members.push(groups.len() - 1);
                        groups.len() - 1
                    });
                    groups[t].pods += d.pods;
                    groups[t].per_node = groups[t].per_node.saturating_add(d.per_node).min(cap);
                    target[g] = Some(t);
                }
            }
            shared.push(Shared { groups: members, per_node: cap });
        }
        for (t, d) in target.iter_mut().zip(&self.groups) {
            if t.is_none() {
                *t = Some(groups.len());
                groups.push(d.clone());
            }
        }
        let target: Vec<usize> = target.into_iter().map(|t| t.expect("every group mapped")).collect();
        for s in self.shared.iter().zip(&merged_set).filter(|(_, m)| !**m).map(|(s, _)| s) {
            shared.push(Shared { groups: s.groups.iter().map(|&g| target[g]).collect(), per_node: s.per_node });
        }
        let kinds = self
            .kinds
            .iter()
            .map(|k| {
                let mut kind = k.clone();
                kind.holds = vec![false; groups.len()];
                for (g, &t) in target.iter().enumerate() {
                    kind.holds[t] |= k.holds[g];
                }
                kind
            })
            .collect();
        let zoned = self
            .zoned
            .iter()
            .map(|r| {
                let mut groups: Vec<usize> = r.groups.iter().map(|&g| target[g]).collect();
                groups.sort_unstable();
                groups.dedup();
                ZoneRow { groups, ..r.clone() }
            })
            .collect();
        let m = Model {
            dims: self.dims.clone(),
            groups,
            kinds,
            shared,
            zoned,
            min_nodes: self.min_nodes,
            left_out: self.left_out,
        };
        (m, target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::bound_model::Kind;

    fn demand(cpu: i64, pods: u32, per_node: u32) -> Demand {
        Demand { pods, requests: vec![cpu], per_node }
    }

    #[test]
    fn alike_sets_merge_into_one_with_their_caps_summed() {
        let m = Model {
            dims: vec!["cpu".into()],
            // Two spreads of one pod per node, each with a 1-core and a 2-core size; one
            // anti-affinity set of another shape; one free group.
            groups: vec![
                demand(1000, 3, 1),
                demand(2000, 1, 1),
                demand(1000, 2, 1),
                demand(2000, 4, 1),
                demand(3000, 2, 1),
                demand(500, 9, u32::MAX),
            ],
            kinds: vec![Kind { name: "a".into(), alloc: vec![8000], price: 1.0, holds: vec![true; 6], zone: 0 }],
            shared: vec![
                Shared { groups: vec![0, 1], per_node: 1 },
                Shared { groups: vec![2, 3], per_node: 1 },
                Shared { groups: vec![4], per_node: 1 },
            ],
            zoned: Vec::new(),
            min_nodes: 5.0,
            left_out: 0,
        };
        let r = m.merged();
        assert_eq!(r.groups.len(), 4);
        assert_eq!(r.groups[0], demand(1000, 5, 2));
        assert_eq!(r.groups[1], demand(2000, 5, 2));
        assert_eq!(r.shared[0], Shared { groups: vec![0, 1], per_node: 2 });
        assert_eq!(r.groups[2], demand(3000, 2, 1));
        assert_eq!(r.groups[3], demand(500, 9, u32::MAX));
        assert_eq!(r.pods(), m.pods());
        assert_eq!(r.min_nodes, 5.0);
        assert_eq!(r.kinds[0].holds, vec![true; 4]);
        // Every node of the model is a node of the relaxation.
        assert!(m.fits(0, &[1, 0, 0, 1, 1, 4]));
        assert!(r.fits(0, &[1, 1, 1, 4]));
    }

    #[test]
    fn sets_of_other_sizes_or_sharing_groups_stay_apart() {
        let m = Model {
            dims: vec!["cpu".into()],
            groups: vec![demand(1000, 3, 1), demand(2000, 1, 1), demand(1000, 2, 1)],
            kinds: vec![Kind { name: "a".into(), alloc: vec![8000], price: 1.0, holds: vec![true; 3], zone: 0 }],
            shared: vec![
                Shared { groups: vec![0], per_node: 1 },
                Shared { groups: vec![1], per_node: 1 },
                Shared { groups: vec![2, 1], per_node: 1 },
            ],
            zoned: Vec::new(),
            min_nodes: 3.0,
            left_out: 0,
        };
        assert_eq!(m.merged(), m);
    }
}
