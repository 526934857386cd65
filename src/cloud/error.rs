//! Typed cloud errors: each variant drives a different reaction (retry, fall back, stop).

use thiserror::Error;

use super::offering::OfferingKey;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum CloudError {
    /// EC2 had no capacity for these offerings (or does not offer them); nothing was launched
    /// on them. The caller avoids them for a while and tries others.
    #[error("insufficient capacity for {}", list(.offerings))]
    InsufficientCapacity { offerings: Vec<OfferingKey> },
    /// The instance (or other object) does not exist; for deletes this means done.
    #[error("not found: {0}")]
    NotFound(String),
    /// EC2 asked us to slow down; retried with backoff.
    #[error("throttled by EC2: {0}")]
    Throttled(String),
    /// Credentials are missing, expired or lack permission; not retried.
    #[error("not authorised: {0}")]
    Unauthorized(String),
    /// The request cannot succeed as configured (no subnet matches, no AMI, unknown type…);
    /// the message says what to check. Not retried.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A [`super::dry_run::DryRun`] provider was asked to change something: nothing was done,
    /// and the caller records what would have been.
    #[error("dry run: {operation} {target} not carried out")]
    DryRun { operation: &'static str, target: String },
    /// Anything else EC2 or the network said.
    #[error("EC2 call failed: {0}")]
    Api(String),
}

fn list(offerings: &[OfferingKey]) -> String {
    offerings.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}
