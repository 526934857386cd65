//! `capstan demo`: the proof of concept on the simulated world, printed as a timeline.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::sim::demo::{self, Entry, Options, Summary};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The config repository (default: the example fleet).
    #[arg(long)]
    repo: Option<PathBuf>,
    #[arg(long, default_value = "dev")]
    cluster: String,
    /// Kubernetes YAML with the Deployment to scale (default: the example `inflate`).
    #[arg(long)]
    workload: Option<PathBuf>,
    #[arg(long, default_value = "inflate")]
    deployment: String,
    #[arg(long, default_value_t = 16)]
    replicas: u32,
    /// Folder for the `file://` state store (default: a new temporary folder).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// JSON lines (`t`, `event`, `message`, `detail`) instead of text.
    #[arg(long)]
    json: bool,
}

/// `examples/…` from the working directory, else from the source tree capstan was built from.
fn example(rel: &str) -> PathBuf {
    let here = PathBuf::from(rel);
    if here.exists() { here } else { PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel) }
}

fn clock(t: f64) -> String {
    let s = t.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn human(secs: Option<f64>) -> String {
    match secs {
        Some(s) if s >= 60.0 => format!("{}m {:02}s", (s / 60.0).floor() as u64, (s % 60.0).round() as u64),
        Some(s) => format!("{s:.0}s"),
        None => "—".into(),
    }
}

fn print_text(entries: &[Entry]) {
    for e in entries {
        println!("[{}] {:<20} {}", clock(e.t), e.event, e.message);
    }
}

fn print_summary(s: &Summary, replicas: u32) {
    println!();
    println!("Summary (simulated time; policy {})", s.revision);
    println!("  node Ready after scale-up:    {}", human(s.seconds_to_ready));
    println!("  {replicas}/{replicas} pods Running after:      {}", human(s.seconds_to_running));
    println!("  nodes gone after scale to 0:  {}", human(s.seconds_to_scale_down));
    println!("  nodes launched:               {} ({})", s.nodes_launched, s.instance_types.join(", "));
    println!("  cost of the run:              ${:.4}", s.cost_usd);
    println!("  decision log:                 {}", s.decisions_at);
}

pub fn run(args: DemoArgs) -> ExitCode {
    let state_dir = args.state_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("capstan-demo-{}-{}", std::process::id(), chrono::Utc::now().timestamp()))
    });
    let opts = Options {
        repo: args.repo.clone().unwrap_or_else(|| example("examples/fleet")),
        cluster: args.cluster.clone(),
        workload: args.workload.clone().unwrap_or_else(|| example("examples/workloads/inflate.yaml")),
        deployment: args.deployment.clone(),
        replicas: args.replicas,
        state_dir,
    };
    if !args.json {
        println!(
            "capstan demo: cluster {} from {}, simulated EC2 and Kubernetes, state store file://{}",
            opts.cluster,
            opts.repo.display(),
            opts.state_dir.display()
        );
    }
    let result = super::runtime().block_on(demo::run(&opts));
    let (entries, outcome) = match result {
        Ok((entries, summary)) => (entries, Ok(summary)),
        Err((e, entries)) => (entries, Err(e)),
    };
    if args.json {
        for e in &entries {
            println!("{}", serde_json::to_string(e).expect("entries serialise"));
        }
    } else {
        print_text(&entries);
    }
    match outcome {
        Ok(summary) => {
            if args.json {
                let line = serde_json::json!({"t": entries.last().map_or(0.0, |e| e.t), "event": "summary", "detail": summary});
                println!("{line}");
            } else {
                print_summary(&summary, args.replicas);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
