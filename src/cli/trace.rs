//! `capstan trace`: workload traces for `simulate` — recorded from a live cluster, or
//! synthesised from a pattern. Both write YAML that `simulate --trace` reads back.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::exit::{USAGE, fail};
use super::out::{FileOut, file_out, out};
use crate::trace::Trace;
use crate::trace::record::{self, RecordOptions};
use crate::trace::synth::{self, Pattern, SynthOptions};

#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Watch a live cluster and record its workloads and their changes.
    Record {
        /// Kubeconfig to use (default: KUBECONFIG, ~/.kube/config, or in-cluster).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Only this namespace (default: all).
        #[arg(long)]
        namespace: Option<String>,
        /// How long to record: a Go duration such as 90s, 30m or 24h (units ns, us, ms, s, m,
        /// h), from 1s to 744h.
        #[arg(long, value_parser = super::duration::record)]
        duration: std::time::Duration,
        /// The trace's name.
        #[arg(long, default_value = "recorded")]
        name: String,
        /// Write the trace here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a realistic synthetic trace.
    Synth {
        /// The shape of the load over the day.
        #[arg(long, value_enum)]
        pattern: Pattern,
        /// Pods at the busiest moment.
        #[arg(long)]
        pods: u32,
        /// Length in hours.
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// Seed of the random variation; the same seed gives the same trace.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the trace here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(what: TraceCommand) -> ExitCode {
    match what {
        TraceCommand::Record { kubeconfig, namespace, duration, name, out } => {
            // Found out now, not after hours of recording.
            let file = match file_out(out.as_deref()) {
                Ok(f) => f,
                Err(code) => return code,
            };
            let opts = RecordOptions { duration, namespace, name };
            let recorded = super::runtime().block_on(async {
                let client = crate::cluster::kube::connect::client(kubeconfig.as_deref()).await?;
                record::record(client, &opts).await.map_err(|e| e.to_string())
            });
            match recorded {
                Ok(trace) => emit(&trace, file),
                Err(e) => fail(e),
            }
        }
        TraceCommand::Synth { pattern, pods, hours, seed, out } => {
            let file = match file_out(out.as_deref()) {
                Ok(f) => f,
                Err(code) => return code,
            };
            match synth::synth(&SynthOptions { pattern, pods, hours, seed }) {
                Ok(trace) => emit(&trace, file),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(USAGE)
                }
            }
        }
    }
}

fn emit(trace: &Trace, file: Option<FileOut>) -> ExitCode {
    let text = trace.to_yaml();
    match file {
        Some(f) => {
            let path = f.path().display().to_string();
            match f.commit(&text) {
                Ok(()) => {
                    eprintln!("wrote {path} ({} events)", trace.spec.events.len());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("writing {path}: {e}")),
            }
        }
        None => {
            out!("{text}");
            ExitCode::SUCCESS
        }
    }
}
