//! Integration tests, one binary: each module is one concern.

mod aws_catalog;
mod aws_cloud;
mod aws_resolve;
mod bad_input;
mod capacity;
mod cloud_sim;
mod common;
mod daemon;
mod daemon_config;
mod demo;
mod examples;
mod fault_proxy;
mod fleet;
mod fleet_status;
mod gitops;
mod guardrails;
mod karpenter_docs;
mod kops;
mod kube_e2e;
mod overlay;
mod properties;
mod rollout_e2e;
mod roundtrip;
mod sched;
mod state_store;
mod translation;
