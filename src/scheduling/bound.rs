//! The LP lower bound of the price of new capacity for a set of pending pods: no packing, by
//! any strategy, can cost less. The benchmark divides a plan's cost by it.

use super::catalog::HOSTNAME;
use super::groups;
use super::lp::{self, Column, DIMS};
use super::pack::min_nodes;
use super::resources::GIB;
use super::solve::Input;
use super::view;

/// The bound, in USD per hour; `None` when no instance type is usable.
pub fn lower_bound(input: &Input) -> Option<f64> {
    let mut groups = groups::group(&input.pods);
    let keys = groups::exclusion_keys(&mut groups, HOSTNAME);
    let order: Vec<usize> = (0..groups.len()).collect();
    let rem: Vec<u32> = groups.iter().map(|g| g.pods.len() as u32).collect();
    let mut demand = [0.0; DIMS];
    for g in &groups {
        let n = g.pods.len() as f64;
        demand[0] += n * g.requests.cpu as f64 / 1000.0;
        demand[1] += n * g.requests.memory as f64 / GIB as f64;
        demand[2] += n * g.requests.pods as f64;
    }
    demand[3] = min_nodes(keys.len(), &groups, &order, &rem);
    let mut columns = Vec::new();
    for pool in &input.pools {
        let v = view::pool_view(pool, input.catalog, &input.daemonsets);
        for pt in &v.types {
            let Some(o) = input.catalog.types[pt.t].cheapest(&pool.requirements, &pool.node_class) else { continue };
            let a = &pt.alloc;
            columns.push(Column {
                offers: [a.cpu as f64 / 1000.0, a.memory as f64 / GIB as f64, a.pods as f64, 1.0],
                price: o.price,
            });
        }
    }
    lp::relax(&columns, demand).map(|r| r.bound)
}
