//! The `CloudProvider` contract: what the capacity loop needs from a cloud.
//!
//! Every implementation (EC2, the simulator, wrappers such as [`super::metered::Metered`] and
//! [`super::dry_run::DryRun`]) keeps these rules:
//!
//! - **`catalog`** returns the instance types the cluster may use, each with its offerings (zone ×
//!   capacity type) and their price per hour, as the cloud publishes them: it reads the cloud on
//!   every call and keeps no cache and no memory of capacity (the caller, the capacity loop,
//!   owns both: it refreshes the catalog when it chooses and marks what it learned from
//!   `InsufficientCapacity`). It never fails because one offering has no price.
//! - **`create`** launches exactly one instance for a [`NodeClaim`], choosing among its options
//!   (cheapest first for on-demand) and **never** one named in `avoid` (the offerings the caller
//!   knows to be out of capacity). It is **idempotent by claim name**: calling it again for a
//!   claim that already has an instance returns that instance and launches nothing. On
//!   success, [`Created::refused`] names the offerings the cloud refused on the way (out of
//!   capacity) so the caller can avoid them too. On `InsufficientCapacity` nothing was launched
//!   and the refused offerings are named as [`OfferingKey`]s (every option, when all were in
//!   `avoid` or the cloud refused the whole request).
//! - **`delete`** terminates an instance. Deleting an instance that is already gone (or
//!   terminating) succeeds; `NotFound` is never returned by `delete`.
//! - **`get`** returns one instance by id, `NotFound` when the cloud does not know it (or it was
//!   terminated long enough ago to be forgotten).
//! - **`list`** returns every non-terminated instance this cluster owns (tagged with its name),
//!   whatever launched it, so a restarted daemon re-derives its state from the cloud.
//!
//! Errors are classified from the cloud's error codes, never from message text:
//! `InsufficientCapacity` → avoid those offerings, try others; `Throttled` → retry later;
//! `NotFound` → as above; `Unauthorized` and `InvalidConfig` → not retried, surfaced to the user
//! with what to check; `DryRun` → nothing was done (a dry-run wrapper), record the intent;
//! `Api` → retried with backoff.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use super::interruption::Notice;
use super::{CloudError, OfferingKey};
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

/// What `create` launched, and what the cloud refused on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub instance: Instance,
    /// Offerings the cloud answered "no capacity" for before it found one; the caller avoids
    /// them like those of an `InsufficientCapacity` error.
    pub refused: Vec<OfferingKey>,
}

impl Created {
    /// A launch that met no refusal.
    pub fn at_once(instance: Instance) -> Created {
        Created { instance, refused: Vec::new() }
    }
}

/// What `tidy` removed: resources capstan created for this cluster and no longer uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tidied {
    pub launch_templates: Vec<String>,
    pub instance_profiles: Vec<String>,
}

impl Tidied {
    pub fn is_empty(&self) -> bool {
        self.launch_templates.is_empty() && self.instance_profiles.is_empty()
    }
}

/// Offerings `create` must not launch: the caller's set of those recently out of capacity.
pub type Avoid = BTreeSet<OfferingKey>;

/// What the capacity loop needs from a cloud. See the module documentation for the contract.
pub trait CloudProvider: Send + Sync {
    fn catalog(&self) -> impl Future<Output = Result<Catalog, CloudError>> + Send;
    fn create(&self, claim: &NodeClaim, avoid: &Avoid) -> impl Future<Output = Result<Created, CloudError>> + Send;
    fn delete(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn get(&self, id: &str) -> impl Future<Output = Result<Instance, CloudError>> + Send;
    fn list(&self) -> impl Future<Output = Result<Vec<Instance>, CloudError>> + Send;
    /// The tag key every instance of this cluster carries with the value `owned`
    /// (`kubernetes.io/cluster/<cluster>`), by which an instance `get` returns is told to be
    /// this cluster's; `None` when the cloud cannot tell.
    fn cluster_tag(&self) -> Option<String> {
        None
    }
    /// Interruption notices waiting in the queue (none when the cloud has no queue). A notice
    /// stays in the queue until `acknowledge`d, and is seen again later when it is not.
    fn notices(&self) -> impl Future<Output = Result<Vec<Notice>, CloudError>> + Send {
        async { Ok(Vec::new()) }
    }
    /// Deletes a notice from the queue, once it has been acted on (or cannot be read).
    fn acknowledge(&self, receipt: &str) -> impl Future<Output = Result<(), CloudError>> + Send {
        let _ = receipt;
        async { Ok(()) }
    }
    /// Deletes what capstan created for this cluster and no longer uses (launch templates,
    /// instance profiles), and says what it deleted.
    fn tidy(&self) -> impl Future<Output = Result<Tidied, CloudError>> + Send {
        async { Ok(Tidied::default()) }
    }
}

/// A shared reference acts as the provider it points to, so a decorator can wrap a borrowed one
/// (`DryRun::new(&cloud)`).
impl<P: CloudProvider> CloudProvider for &P {
    fn catalog(&self) -> impl Future<Output = Result<Catalog, CloudError>> + Send {
        (**self).catalog()
    }
    fn create(&self, claim: &NodeClaim, avoid: &Avoid) -> impl Future<Output = Result<Created, CloudError>> + Send {
        (**self).create(claim, avoid)
    }
    fn delete(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send {
        (**self).delete(id)
    }
    fn get(&self, id: &str) -> impl Future<Output = Result<Instance, CloudError>> + Send {
        (**self).get(id)
    }
    fn list(&self) -> impl Future<Output = Result<Vec<Instance>, CloudError>> + Send {
        (**self).list()
    }
    fn cluster_tag(&self) -> Option<String> {
        (**self).cluster_tag()
    }
    fn notices(&self) -> impl Future<Output = Result<Vec<Notice>, CloudError>> + Send {
        (**self).notices()
    }
    fn acknowledge(&self, receipt: &str) -> impl Future<Output = Result<(), CloudError>> + Send {
        (**self).acknowledge(receipt)
    }
    fn tidy(&self) -> impl Future<Output = Result<Tidied, CloudError>> + Send {
        (**self).tidy()
    }
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
