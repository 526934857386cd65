//! The kOps state store: objects with versions, written only with compare-and-swap so that a
//! concurrent `kops edit ig` is never lost; and the reconcile of a cluster's InstanceGroups.
//!
//! ```text
//! repository IGs ─desired_document─┐
//! store ─read─► ClusterState ──────┼─► plan (pure: diff, ownership) ─► apply (If-Match, rebase
//!                                  │                                    on 412, backups)
//!                                  └─────────────────────────────────► status, last-applied
//! ```

pub mod any;
pub mod apply;
pub mod decisions;
pub mod diff;
pub mod emit;
pub mod folder;
pub mod lock;
pub mod object;
pub mod plan;
pub mod prices;
pub mod read;
pub mod reconcile;
pub mod s3;
pub mod show;
pub mod store;
pub mod userdata;

pub use any::Store;
pub use read::Cache;
pub use reconcile::{ReconcileError, Report, Target, plan_cluster, reconcile_once};
pub use s3::S3Options;
pub use store::{StateStore, StoreError};
