//! `DryRun<P>`: any provider, with its changes left undone. Reads (`catalog`, `get`, `list`) go
//! to the wrapped provider; `create` and `delete` do nothing and answer
//! [`CloudError::DryRun`] naming what would have been done, which the caller records as a
//! decision. [`Acting`] picks, once per policy, whether the loop acts through the provider or
//! through `DryRun` over it, so no call site branches on the dry-run setting.

use super::CloudError;
use super::interruption::Notice;
use super::provider::{Avoid, CloudProvider, Created, Instance, NodeClaim, Tidied};
use crate::scheduling::catalog::Catalog;

/// Wraps a provider and carries out none of its changes.
#[derive(Debug, Clone)]
pub struct DryRun<P> {
    inner: P,
}

impl<P> DryRun<P> {
    pub fn new(inner: P) -> DryRun<P> {
        DryRun { inner }
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<P: CloudProvider> CloudProvider for DryRun<P> {
    async fn catalog(&self) -> Result<Catalog, CloudError> {
        self.inner.catalog().await
    }

    async fn create(&self, claim: &NodeClaim, _avoid: &Avoid) -> Result<Created, CloudError> {
        Err(CloudError::DryRun { operation: "create", target: format!("NodeClaim/{}", claim.name) })
    }

    async fn delete(&self, id: &str) -> Result<(), CloudError> {
        Err(CloudError::DryRun { operation: "delete", target: format!("instance/{id}") })
    }

    async fn get(&self, id: &str) -> Result<Instance, CloudError> {
        self.inner.get(id).await
    }

    fn cluster_tag(&self) -> Option<String> {
        self.inner.cluster_tag()
    }

    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        self.inner.list().await
    }

    /// Notices are read, and deleted once handled, as without dry run: they are the cloud's
    /// news, not a change capstan makes, and left in the queue they would come back forever.
    async fn notices(&self) -> Result<Vec<Notice>, CloudError> {
        self.inner.notices().await
    }

    async fn acknowledge(&self, receipt: &str) -> Result<(), CloudError> {
        self.inner.acknowledge(receipt).await
    }

    /// Nothing is deleted in a dry run.
    async fn tidy(&self) -> Result<Tidied, CloudError> {
        Ok(Tidied::default())
    }
}

/// The provider a policy acts through: the cloud itself, or [`DryRun`] over it.
#[derive(Debug, Clone)]
pub enum Acting<P> {
    Live(P),
    DryRun(DryRun<P>),
}

impl<P> Acting<P> {
    /// `DryRun` over `inner` when the policy says `dryRun: true`.
    pub fn per_policy(inner: P, dry_run: bool) -> Acting<P> {
        if dry_run { Acting::DryRun(DryRun::new(inner)) } else { Acting::Live(inner) }
    }
}

impl<P: CloudProvider> CloudProvider for Acting<P> {
    async fn catalog(&self) -> Result<Catalog, CloudError> {
        match self {
            Acting::Live(p) => p.catalog().await,
            Acting::DryRun(p) => p.catalog().await,
        }
    }

    async fn create(&self, claim: &NodeClaim, avoid: &Avoid) -> Result<Created, CloudError> {
        match self {
            Acting::Live(p) => p.create(claim, avoid).await,
            Acting::DryRun(p) => p.create(claim, avoid).await,
        }
    }

    async fn delete(&self, id: &str) -> Result<(), CloudError> {
        match self {
            Acting::Live(p) => p.delete(id).await,
            Acting::DryRun(p) => p.delete(id).await,
        }
    }

    fn cluster_tag(&self) -> Option<String> {
        match self {
            Acting::Live(p) => p.cluster_tag(),
            Acting::DryRun(p) => p.cluster_tag(),
        }
    }

    async fn get(&self, id: &str) -> Result<Instance, CloudError> {
        match self {
            Acting::Live(p) => p.get(id).await,
            Acting::DryRun(p) => p.get(id).await,
        }
    }

    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        match self {
            Acting::Live(p) => p.list().await,
            Acting::DryRun(p) => p.list().await,
        }
    }

    async fn notices(&self) -> Result<Vec<Notice>, CloudError> {
        match self {
            Acting::Live(p) => p.notices().await,
            Acting::DryRun(p) => p.notices().await,
        }
    }

    async fn acknowledge(&self, receipt: &str) -> Result<(), CloudError> {
        match self {
            Acting::Live(p) => p.acknowledge(receipt).await,
            Acting::DryRun(p) => p.acknowledge(receipt).await,
        }
    }

    async fn tidy(&self) -> Result<Tidied, CloudError> {
        match self {
            Acting::Live(p) => p.tidy().await,
            Acting::DryRun(p) => p.tidy().await,
        }
    }
}
