//! capstan: a node autoscaler for kOps clusters on AWS, run as a GitOps reconciler.
//!
//! One daemon per cluster syncs scaling policy from Git, reconciles kOps InstanceGroups in the
//! state store, and runs the capacity loop. Every decision carries the policy commit that
//! caused it.

// The one exception is registering libgit2's transports (`gitops::transport`).
#![deny(unsafe_code)]

pub mod app;
pub mod bench;
pub mod capacity;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod cluster;
pub mod digest;
pub mod disruption;
pub mod fleet;
pub mod gitops;
pub mod kops;
pub mod policy;
pub mod provisioning;
pub mod revision;
pub mod rules;
pub mod scheduling;
pub mod sim;
pub mod trace;
pub mod view;
pub mod whatif;
