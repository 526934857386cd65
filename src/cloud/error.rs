//! Typed cloud errors: each variant drives a different reaction (retry, fall back, stop).

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum CloudError {
    /// EC2 had no capacity for these offerings (instance type, zone, capacity type); try
    /// others. The offerings are marked unavailable for a while.
    #[error("insufficient capacity for {}", .offerings.join(", "))]
    InsufficientCapacity { offerings: Vec<String> },
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
    /// Anything else EC2 or the network said.
    #[error("EC2 call failed: {0}")]
    Api(String),
}
