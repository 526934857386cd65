//! The cloud side: instance catalog and launches. The AWS implementation talks to EC2; the
//! simulator implements the same contract on a virtual clock. Decorators (`Metered`, `DryRun`)
//! wrap any implementation.

pub mod aws;
pub mod dry_run;
pub mod error;
pub mod interruption;
pub mod metered;
pub mod offering;
pub mod prices;
pub mod provider;
pub mod sim;
pub mod sim_reservations;
pub mod unavailable;

pub use error::CloudError;
pub use offering::OfferingKey;
