//! The scheduling engine: pending pods, nodes and policy in, a [`Plan`] out. Pure: no I/O, no
//! async, no clock; the same input gives the same plan.
//!
//! ```text
//! Input { pods, nodes, daemonsets, pools, catalog, limits }
//!   └─ solve ─► groups ─► topology (zones) ─► existing & in-flight nodes ─► new capacity
//!                                                      (pack: cost-optimal │ ffd: baseline)
//! ```

pub mod allocatable;
pub mod bound;
pub mod bound_assign;
pub mod bound_columns;
mod bound_cone;
mod bound_dp;
mod bound_grid;
pub mod bound_knapsack;
pub mod bound_master;
pub mod bound_mip;
pub mod bound_model;
mod bound_relax;
#[cfg(test)]
mod bound_tests;
pub mod bound_zoned;
#[cfg(test)]
mod bound_zoned_tests;
pub mod builtin;
pub mod catalog;
pub mod exact;
pub mod ffd;
pub mod groups;
pub mod input;
pub mod lp;
pub mod mix;
pub mod node;
pub mod overlay;
pub mod pack;
mod pack_commit;
mod pack_fill;
mod pack_price;
mod pack_round;
mod pack_swap;
mod pack_whole;
mod pack_zoned;
pub mod plan;
pub mod pod;
pub mod pool;
pub mod requirements;
pub mod reservation;
pub mod reserved;
pub mod resources;
pub mod solve;
pub mod topology;
pub mod view;
pub mod zone_cost;

pub use input::{Input, Strategy};
pub use plan::Plan;
pub use solve::solve;
