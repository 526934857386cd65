//! `capstan trace`: workload traces for `simulate` — recorded from a live cluster, or
//! synthesised from a pattern. Both write YAML that `simulate --trace` reads back.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::diff::USAGE;
use super::out::out;
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
        /// How long to record (e.g. 30m, 24h).
        #[arg(long, value_parser = super::parse_duration)]
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
            let opts = RecordOptions { duration, namespace, name };
            let recorded = super::runtime().block_on(async {
                let client = client(kubeconfig.as_deref()).await?;
                record::record(client, &opts).await.map_err(|e| e.to_string())
            });
            match recorded {
                Ok(trace) => emit(&trace, out.as_deref()),
                Err(e) => fail(e),
            }
        }
        TraceCommand::Synth { pattern, pods, hours, seed, out } => {
            match synth::synth(&SynthOptions { pattern, pods, hours, seed }) {
                Ok(trace) => emit(&trace, out.as_deref()),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(USAGE)
                }
            }
        }
    }
}

async fn client(kubeconfig: Option<&std::path::Path>) -> Result<kube::Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let kc =
                kube::config::Kubeconfig::read_from(path).map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::infer().await.map_err(|e| format!("no Kubernetes configuration found: {e}"))?,
    };
    kube::Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))
}

fn emit(trace: &Trace, path: Option<&std::path::Path>) -> ExitCode {
    let text = trace.to_yaml();
    match path {
        Some(p) => match std::fs::write(p, &text) {
            Ok(()) => {
                eprintln!("wrote {} ({} events)", p.display(), trace.spec.events.len());
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("writing {}: {e}", p.display())),
        },
        None => {
            out!("{text}");
            ExitCode::SUCCESS
        }
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(1)
}
