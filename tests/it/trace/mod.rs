//! Workload traces: the format, `trace synth`, and the CI examples that run simulate.

mod ci;
mod examples;
mod synth;
