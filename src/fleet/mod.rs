//! Fleet rollout: a policy revision moves through the clusters wave by wave. Each daemon
//! decides for its own cluster with a pure gate over what it reads of the previous wave's
//! status in their state stores; nothing else is shared.
//!
//! ```text
//! follower (accepted tip) ──► driver ──read──► previous wave's <kops>/capstan/status.json
//!                               │ gate (soak, health, halt, approval, pause)
//!                               ├──► revision in force ──► capacity loop, state-store reconcile
//!                               └──write──► own status.json (record, heartbeat), decision log
//! ```

pub mod digest;
pub mod driver;
pub mod gate;
pub mod health;
pub mod metrics;
pub mod peers;
pub mod record;
pub mod revisions;
