use std::collections::HashMap;

use super::{Options, Quality, run};

use crate::scheduling::resources::Resources;

fn small(seed: u64) -> Options {
    Options { nodes: 12, pods_per_node: 6, seed, templates: 3, max_passes: 200, exact: true }
}

fn check(q: &Quality) {
    assert!(q.converged, "no convergence in {} passes", q.passes.len());
    assert_eq!(q.unplaced, 0);
    assert!(q.passes.iter().all(|p| p.savings_per_hour > 0.0 && p.extra_launches == 0), "{:?}", q.passes);
    let summed: f64 = q.passes.iter().map(|p| p.savings_per_hour).sum();
    assert!((summed - q.found_savings).abs() < 1e-3, "passes saved {summed}, cluster cost fell {}", q.found_savings);
    let best = q.best_savings.expect("a bound or the optimum");
    assert!(q.found_savings <= best + 1e-6, "found {} beyond the best possible {best}", q.found_savings);
}

#[test]
fn passes_converge_and_never_beat_the_best_repack() {
    let mut exact = 0;
    for seed in 1..=3 {
        let q = run(&small(seed));
        check(&q);
        assert!(!q.passes.is_empty(), "seed {seed}: the synthetic cluster always has something to consolidate");
        let bound = q.bound.expect("the configuration bound");
        match q.optimum {
            Some(o) => {
                exact += 1;
                assert!(bound <= o + 1e-6, "bound {bound} above the optimum {o}");
                let repack = q.scheduler_repack.expect("the scheduler places every pod");
                assert!(o <= repack + 1e-6, "optimum {o} above an achievable repack {repack}");
                assert!(!q.ratio_is_lower_bound);
            }
            None => assert!(q.ratio_is_lower_bound),
        }
    }
    assert!(exact > 0, "the exact search answered on none of the small clusters");
}

#[test]
fn every_pod_ends_on_a_node_that_holds_it() {
    let (snapshot, q) = super::replay(&small(7));
    check(&q);
    let mut used: HashMap<&str, Resources> = HashMap::new();
    for p in &snapshot.pods {
        let node = p.node.as_deref().expect("every pod bound");
        assert!(snapshot.node(node).is_some(), "pod {} on a removed node {node}", p.key());
        *used.entry(node).or_default() += &p.spec.requests;
    }
    for n in &snapshot.nodes {
        if let Some(u) = used.get(n.name.as_str()) {
            assert!(u.fits(&n.allocatable), "node {} overcommitted", n.name);
        }
    }
    assert_eq!(snapshot.nodes.len(), q.nodes_after);
}
