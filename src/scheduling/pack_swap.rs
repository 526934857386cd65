//! Pods the LP moves into places its columns make for other groups. The LP over a packing's
//! columns may cover a group's demand with room made for a group whose pods are at least as
//! large and held no more widely ([`bound_master::swaps`]), as column generation's master does
//! when it finds the columns. Rounding follows those moves as far as they go: a node's places
//! for `h`, once `h`'s own pods are placed, take pods of `g` only as many as the LP moved into
//! `h`'s places.
//!
//! [`bound_master::swaps`]: super::bound_master::swaps

use std::collections::BTreeMap;

/// Pods moved in one node: into the places of group `.0`, from group `.1`, `.2` of them.
pub(super) type Moved = (usize, usize, u32);

/// Per group: the groups whose pods may take its places, and how many more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Swaps {
    into: Vec<Vec<(usize, u32)>>,
}

impl Swaps {
    /// No moves among `groups` groups.
    pub fn none(groups: usize) -> Swaps {
        Swaps { into: vec![Vec::new(); groups] }
    }

    /// The LP's moves `(g, h, pods)`: pods of `g` in places made for `h`, rounded to whole
    /// pods.
    pub fn of(groups: usize, moves: &[(usize, usize, f64)]) -> Swaps {
        let mut s = Swaps::none(groups);
        for (g, h, pods) in direct(moves) {
            let n = (pods + 1e-6).round() as u32;
            if n > 0 {
                s.into[h].push((g, n));
            }
        }
        s
    }

    /// The groups whose pods may still take places made for `h`, and how many.
    pub fn takers(&self, h: usize) -> &[(usize, u32)] {
        &self.into[h]
    }

    /// Counts off the moves a committed node made.
    pub fn take(&mut self, used: &[Moved]) {
        for &(h, g, n) in used {
            if let Some(e) = self.into[h].iter_mut().find(|e| e.0 == g) {
                e.1 = e.1.saturating_sub(n);
            }
        }
    }
}

/// The moves with chains taken out: where pods of `g` go into places of `i` and pods of `i`
/// into places of `h`, as much of it as both carry moves `g` straight into `h`'s places
/// (replacing is transitive), so no group both gives and takes places and rounding need not
/// follow the chain in order.
fn direct(moves: &[(usize, usize, f64)]) -> Vec<(usize, usize, f64)> {
    let mut flow: BTreeMap<(usize, usize), f64> =
        moves.iter().filter(|m| m.2 > 1e-9).map(|&(g, h, a)| ((g, h), a)).collect();
    // Each step empties an edge; a bound keeps a malformed input from looping.
    for _ in 0..moves.len() * moves.len() + 1 {
        let onward = |i: usize| flow.range((i, 0)..=(i, usize::MAX)).next().map(|(&(_, h), _)| h);
        let through = flow.keys().find_map(|&(g, i)| onward(i).map(|h| (g, i, h)));
        let Some((g, i, h)) = through else { break };
        let a = flow[&(g, i)].min(flow[&(i, h)]);
        for edge in [(g, i), (i, h)] {
            let left = flow[&edge] - a;
            if left > 1e-9 {
                flow.insert(edge, left);
            } else {
                flow.remove(&edge);
            }
        }
        if g != h {
            *flow.entry((g, h)).or_insert(0.0) += a;
        }
    }
    flow.into_iter().map(|((g, h), a)| (g, h, a)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_round_to_whole_pods_and_count_down_as_nodes_use_them() {
        let mut s = Swaps::of(4, &[(0, 2, 2.6), (1, 2, 0.2), (1, 3, 1.0)]);
        assert_eq!(s.takers(2), &[(0, 3)]);
        assert_eq!(s.takers(3), &[(1, 1)]);
        assert!(s.takers(1).is_empty());
        s.take(&[(2, 0, 2), (3, 1, 5)]);
        assert_eq!(s.takers(2), &[(0, 1)]);
        assert_eq!(s.takers(3), &[(1, 0)]);
    }

    #[test]
    fn a_chain_of_moves_goes_straight_to_its_end() {
        // 3 pods of 0 into places of 1, 2 of 1 into places of 2: 2 of 0 go straight into 2's
        // places, 1 into 1's, and 1 gives none.
        let s = Swaps::of(3, &[(0, 1, 3.0), (1, 2, 2.0)]);
        assert_eq!(s.takers(2), &[(0, 2)]);
        assert_eq!(s.takers(1), &[(0, 1)]);
        assert!(s.takers(0).is_empty());
    }
}
