//! The `CloudProvider` contract: what the capacity loop needs from a cloud.
//!
//! Every implementation (EC2, the simulator, wrappers such as [`super::metered::Metered`])
//! keeps these rules:
//!
//! - **`catalog`** returns the instance types the cluster may use, each with its offerings (zone ×
//!   capacity type) and their price per hour; offerings known to be out of capacity are marked
//!   unavailable. It may be cached; it never fails because one offering has no price.
//! - **`create`** launches exactly one instance for a [`NodeClaim`], choosing among its options
//!   (cheapest first for on-demand). It is **idempotent by claim name**: calling it again for a
//!   claim that already has an instance returns that instance and launches nothing. On
//!   `InsufficientCapacity` nothing was launched and the failed offerings are named.
//! - **`delete`** terminates an instance. Deleting an instance that is already gone (or
//!   terminating) succeeds; `NotFound` is never returned by `delete`.
//! - **`get`** returns one instance by id, `NotFound` when the cloud does not know it (or it was
//!   terminated long enough ago to be forgotten).
//! - **`list`** returns every non-terminated instance this cluster owns (tagged with its name),
//!   whatever launched it, so a restarted daemon re-derives its state from the cloud.
//!
//! Errors: `InsufficientCapacity` → try other offerings; `Throttled` → retry later; `NotFound`
//! → as above; `Unauthorized` and `InvalidConfig` → not retried, surfaced to the user with
//! what to check; `Api` → retried with backoff.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use super::CloudError;
use crate::scheduling::catalog::{CapacityType, Catalog};
use crate::scheduling::plan::LaunchOption;

/// A node to launch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeClaim {
    /// Unique and stable: the idempotency key of `create`.
    pub name: String,
    pub node_pool: String,
    pub node_class: String,
    /// Ranked launch options, at most 60.
    pub options: Vec<LaunchOption>,
    /// The policy revision that decided the launch (`main@sha1:…`), tagged on the instance.
    pub policy_revision: String,
    /// Further tags for the instance (the NodePool's drift digest).
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
}

/// A launched instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instance {
    pub id: String,
    /// The NodeClaim that launched it.
    pub claim: String,
    pub node_pool: String,
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: CapacityType,
    pub price: f64,
    pub state: InstanceState,
    /// Time of launch, on the provider's clock (time since the epoch).
    pub launched_at: Duration,
    pub tags: BTreeMap<String, String>,
}

impl Instance {
    /// The Kubernetes providerID of the node this instance becomes.
    pub fn provider_id(&self) -> String {
        format!("aws:///{}/{}", self.zone, self.id)
    }
}

/// What the capacity loop needs from a cloud. See the module documentation for the contract.
pub trait CloudProvider: Send + Sync {
    fn catalog(&self) -> impl Future<Output = Result<Catalog, CloudError>> + Send;
    fn create(&self, claim: &NodeClaim) -> impl Future<Output = Result<Instance, CloudError>> + Send;
    fn delete(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn get(&self, id: &str) -> impl Future<Output = Result<Instance, CloudError>> + Send;
    fn list(&self) -> impl Future<Output = Result<Vec<Instance>, CloudError>> + Send;
}

/// Tag keys every instance carries.
pub mod tags {
    pub const NODE_POOL: &str = "karpenter.sh/nodepool";
    pub const NODE_CLAIM: &str = "capstan.io/nodeclaim";
    pub const POLICY_REVISION: &str = "capstan.io/policy-revision";

    /// `kubernetes.io/cluster/<cluster>: owned`.
    pub fn cluster(cluster: &str) -> String {
        format!("kubernetes.io/cluster/{cluster}")
    }
}
