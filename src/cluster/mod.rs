//! The Kubernetes side of the capacity loop: the [`ClusterApi`] port, the snapshot it returns,
//! pod-spec conversion, and the simulated cluster used by `capstan demo`, `run` with
//! `cluster: sim`, and the component tests.

pub mod api;
pub mod convert;
pub mod kube;
pub mod marks;
pub mod model;
pub mod sim;
pub mod workload;

pub use api::{ClusterApi, ClusterError, Subject};
pub use model::{ClusterNode, ClusterPod, Owner, Pdb, Phase, Snapshot};
