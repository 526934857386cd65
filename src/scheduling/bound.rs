//! Lower bounds of the price of new capacity for a set of pending pods: no packing, by any
//! strategy, can cost less. The benchmark divides a plan's cost by them.
//!
//! ```text
//! resource LP (this file)  ≤  assignment LP (bound_assign)  ≤  configuration LP (bound_columns)
//!                          ≤  optimum of the model (exact)   ≤  any packing's cost
//! ```
//!
//! The resource LP buys cpu, memory and pods as divisible quantities on any type, even types
//! that cannot hold one pod of the mix; the others work on the shared [`Model`]. Where zone
//! spreads apply, the configuration LP of the zoned model (`bound_zoned`) is at least the
//! zone-free one's, a bound for plans that keep each spread even over every pod it counts.

use super::groups;
use super::input::Input;
use super::lp::{self, Column, DIMS};
use super::resources::GIB;
use super::view;

pub use super::bound_model::Model;

/// The bound, in USD per hour; `None` when no instance type is usable.
pub fn lower_bound(input: &Input) -> Option<f64> {
    let groups = groups::group(&input.pods);
    let mut demand = [0.0; DIMS];
    for g in &groups {
        let n = g.pods.len() as f64;
        demand[0] += n * g.requests.cpu as f64 / 1000.0;
        demand[1] += n * g.requests.memory as f64 / GIB as f64;
        demand[2] += n * g.requests.pods as f64;
    }
    demand[3] = Model::of(input).min_nodes;
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
