//! Workload traces: the format, `trace synth`, and the CI examples that run simulate.

mod ci;
mod cli;
mod examples;
mod hostile;
mod synth;
