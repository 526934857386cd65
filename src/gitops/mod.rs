//! Git → policy: follow a config repository, judge each new revision (signature, validation for
//! this cluster), and keep the last good one in force.
//!
//! ```text
//! triggers (poll, webhook, file watch) ─► ConfigSource::fetch ─► gate (signed? valid?) ─► in force
//!                                                                  └─ rejected: recorded, last-known-good stays
//! ```

pub mod audit;
pub mod auth;
pub mod creds;
pub mod diff;
pub mod follow;
pub mod guardrail_history;
pub mod metrics;
pub mod signature;
pub mod source;
pub mod transport;
pub mod url;
pub mod watch;
pub mod webhook;

pub use crate::revision::Revision;
pub use follow::{Follower, GitStatus};
pub use source::{ConfigSource, Fetched, GitSource, Reference, SourceConfig};
pub use url::RepoUrl;

/// Why a fetch failed. Messages name what to check and never carry credentials: the URL is a
/// [`RepoUrl`], which prints redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("cannot fetch {url}: {message}; check the repository URL and that this host can reach it")]
    Url { url: RepoUrl, message: String },
    #[error("authentication to {url} failed: {message}")]
    Auth { url: RepoUrl, message: String },
    #[error("{url}: {message}")]
    Reference { url: RepoUrl, message: String },
    #[error(
        "history was rewritten: {to} does not descend from {from}, the last revision seen; refused (set repository.allowRewrite to accept force-pushes)"
    )]
    NotFastForward { from: String, to: String },
    #[error("git: {0}")]
    Git(String),
}
