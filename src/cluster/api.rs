//! The `ClusterApi` contract: what the capacity loop reads from and does to Kubernetes.
//!
//! - **`snapshot`** reads pods, nodes, DaemonSets and PodDisruptionBudgets as they are now.
//! - **`register`** merges labels, taints and annotations into a node that has just registered.
//!   Idempotent: keys already present with the same value are left alone. The same write removes
//!   the taint [`super::marks::UNREGISTERED_TAINT`] (any effect), which kOps bakes into its nodes.
//! - **`mark_for_disruption`** cordons the node (`spec.unschedulable`), taints it
//!   [`super::marks::DISRUPTED_TAINT`] and writes its [`DisruptionMarks`] (reason, revision,
//!   replacement claims) in **one** write: either all of it lands or none of it does, so there
//!   is no state in which a node is cordoned without its replacements recorded. An `Err` means
//!   nothing was written (the caller does not drain, and decides again later). Idempotent.
//!   `NotFound`: the node is gone.
//! - **`uncordon`** undoes `mark_for_disruption` in one write: schedulable again, the taint and
//!   every `capstan.io/disruption-*` annotation removed. Idempotent.
//! - **`evict`** asks for a pod's eviction through the Eviction API. `Blocked` means a
//!   PodDisruptionBudget refused it now (HTTP 429): retry later. A pod already gone is success.
//! - **`delete_node`** removes the Node object; a node already gone is success.
//! - **`event`** records a Kubernetes Event on a pod, a node or capstan's Lease; best effort.

use std::future::Future;

use thiserror::Error;

use super::marks::DisruptionMarks;
use super::model::Snapshot;
use crate::policy::meta::{Labels, Taint};

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ClusterError {
    /// A PodDisruptionBudget does not allow the eviction now; retried on a later pass.
    #[error("eviction blocked: {0}")]
    Blocked(String),
    /// The object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Anything else the API server said; retried.
    #[error("Kubernetes API call failed: {0}")]
    Api(String),
}

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Pod {
        namespace: String,
        name: String,
    },
    Node(String),
    /// capstan's own leader Lease: events about the cluster as a whole (rollout steps).
    Lease {
        namespace: String,
        name: String,
    },
}

/// What the capacity loop needs from Kubernetes. See the module documentation for the contract.
pub trait ClusterApi: Send + Sync {
    fn snapshot(&self) -> impl Future<Output = Result<Snapshot, ClusterError>> + Send;
    fn register(
        &self,
        node: &str,
        labels: &Labels,
        taints: &[Taint],
        annotations: &Labels,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;
    fn mark_for_disruption(
        &self,
        node: &str,
        marks: &DisruptionMarks,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;
    fn uncordon(&self, node: &str) -> impl Future<Output = Result<(), ClusterError>> + Send;
    fn evict(&self, namespace: &str, pod: &str) -> impl Future<Output = Result<(), ClusterError>> + Send;
    fn delete_node(&self, node: &str) -> impl Future<Output = Result<(), ClusterError>> + Send;
    fn event(&self, subject: &Subject, reason: &str, message: &str) -> impl Future<Output = ()> + Send;
}
