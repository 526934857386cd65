//! Integration tests, one binary: each module is one concern.

mod bad_input;
mod common;
mod examples;
mod guardrails;
mod karpenter_docs;
mod overlay;
mod properties;
mod roundtrip;
mod sched;
mod translation;
