//! `capstan demo`: the proof of concept on the simulated world, printed as a timeline and, with
//! `--html`, written as a page of charts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::Output;
use super::out::{file_out, out, outln};
use crate::sim::demo::story::clock;
use crate::sim::demo::{self, Entry, Options, Summary};
use crate::sim::fleet;
use crate::whatif::html::timeline;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DemoArgs {
    #[command(subcommand)]
    story: Option<Story>,
    /// The config repository (default: the example fleet).
    #[arg(long)]
    repo: Option<PathBuf>,
    /// The cluster of the repository to run (its name in fleet.yaml).
    #[arg(long, default_value = "dev")]
    cluster: String,
    /// Kubernetes YAML with the Deployment to scale (default: the example `inflate`).
    #[arg(long)]
    workload: Option<PathBuf>,
    /// The Deployment of the workload file to scale up and down.
    #[arg(long, default_value = "inflate")]
    deployment: String,
    /// Replicas to scale the Deployment to before scaling it back to 0.
    #[arg(long, default_value_t = 16)]
    replicas: u32,
    /// Keep the `file://` state store in this folder (default: a temporary folder, removed at
    /// the end).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Output format: a text timeline; json lines (`t`, `event`, `message`, `detail`) ending
    /// with a `summary` line; or yaml, one document per line of the JSON.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    output: Output,
    /// The same as `-o json` (the older flag).
    #[arg(long, hide = true)]
    json: bool,
    /// Also write the story to FILE as one self-contained HTML page: each node's life, pending
    /// and running pods and the cost per hour over time, the decisions marked, the timeline.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Story {
    /// The fleet rollout story: three simulated clusters (dev, staging, prod) follow one Git
    /// repository; a good commit rolls out wave by wave after each soak, a bad one halts at dev,
    /// which rolls back, and the later waves never take it.
    Fleet(FleetArgs),
}

#[derive(Debug, Args)]
struct FleetArgs {
    /// The config repository to start from (default: the example fleet).
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Kubernetes YAML with the `inflate` Deployment (default: the example).
    #[arg(long)]
    workload: Option<PathBuf>,
    /// Keep the Git repository, mirrors and state stores in this folder (default: a temporary
    /// folder, removed at the end).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Output format: a text timeline; json lines (`t`, `event`, `message`, `detail`) ending
    /// with a `summary` line; or yaml, one document per line of the JSON.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    output: Output,
    /// The same as `-o json` (the older flag).
    #[arg(long, hide = true)]
    json: bool,
}

/// The demo's state folder: a temporary one is removed when this is dropped, whether the story
/// completed, failed or panicked; one the user gave is kept, and said where.
struct StateDir {
    path: PathBuf,
    temporary: bool,
}

impl StateDir {
    fn new(given: Option<PathBuf>, prefix: &str) -> StateDir {
        match given {
            Some(path) => StateDir { path, temporary: false },
            None => {
                let name = format!("{prefix}-{}-{}", std::process::id(), chrono::Utc::now().timestamp());
                StateDir { path: std::env::temp_dir().join(name), temporary: true }
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        } else {
            eprintln!("capstan demo: state kept in {}", self.path.display());
        }
    }
}

/// One line of the story: a JSON line, or a YAML document.
fn print_line(output: Output, line: &impl serde::Serialize) {
    match output {
        Output::Yaml => out!("---\n{}", serde_yaml::to_string(line).expect("entries serialise")),
        _ => outln!("{}", serde_json::to_string(line).expect("entries serialise")),
    }
}

/// `examples/…` from the working directory, else from the source tree capstan was built from.
fn example(rel: &str) -> PathBuf {
    let here = PathBuf::from(rel);
    if here.exists() { here } else { PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel) }
}

fn print_text(entries: &[Entry]) {
    for e in entries {
        outln!("[{}] {:<20} {}", clock(e.t), e.event, e.message);
    }
}

fn print_summary(s: &Summary, replicas: u32) {
    outln!();
    outln!("Summary (simulated time; policy {})", s.revision);
    for (label, value) in s.rows(replicas) {
        outln!("  {:<30}{value}", format!("{label}:"));
    }
}

pub fn run(args: DemoArgs) -> ExitCode {
    if let Some(Story::Fleet(f)) = args.story {
        return run_fleet(f);
    }
    let html = match file_out(args.html.as_deref()) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let output = args.output.or_json(args.json);
    let dir = StateDir::new(args.state_dir.clone(), "capstan-demo");
    let state_dir = dir.path().to_path_buf();
    let opts = Options {
        repo: args.repo.clone().unwrap_or_else(|| example("examples/fleet")),
        cluster: args.cluster.clone(),
        workload: args.workload.clone().unwrap_or_else(|| example("examples/workloads/inflate.yaml")),
        deployment: args.deployment.clone(),
        replicas: args.replicas,
        state_dir,
    };
    if output == Output::Text {
        outln!(
            "capstan demo: cluster {} from {}, simulated EC2 and Kubernetes, state store file://{}",
            opts.cluster,
            opts.repo.display(),
            opts.state_dir.display()
        );
    }
    let story = super::runtime().block_on(demo::run(&opts));
    drop(dir);
    let entries = &story.entries;
    if output == Output::Text {
        print_text(entries);
    } else {
        for e in entries {
            print_line(output, e);
        }
    }
    if let Some(file) = html {
        let path = file.path().display().to_string();
        if let Err(e) = file.commit(&timeline::page(&story)) {
            eprintln!("error: writing {path}: {e}");
            return ExitCode::from(1);
        }
        eprintln!("wrote {path}");
    }
    match &story.outcome {
        Ok(summary) => {
            if output == Output::Text {
                print_summary(summary, args.replicas);
            } else {
                let line = serde_json::json!({"t": entries.last().map_or(0.0, |e| e.t), "event": "summary", "detail": summary});
                print_line(output, &line);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_fleet(args: FleetArgs) -> ExitCode {
    let output = args.output.or_json(args.json);
    let dir = StateDir::new(args.state_dir.clone(), "capstan-demo-fleet");
    let opts = fleet::Options {
        repo: args.repo.clone().unwrap_or_else(|| example("examples/fleet")),
        workload: args.workload.clone().unwrap_or_else(|| example("examples/workloads/inflate.yaml")),
        state_dir: dir.path().to_path_buf(),
    };
    if output == Output::Text {
        outln!(
            "capstan demo fleet: dev (wave 0), staging (wave 1) and prod (wave 2) on simulated EC2 and Kubernetes, each with its own state store, following one Git repository"
        );
    }
    let result = super::runtime().block_on(fleet::run(&opts));
    drop(dir);
    let (entries, outcome) = match result {
        Ok((entries, rows)) => (entries, Ok(rows)),
        Err((e, entries)) => (entries, Err(e)),
    };
    if output == Output::Text {
        print_text(&shorten(&entries));
    } else {
        for e in &entries {
            print_line(output, e);
        }
    }
    match outcome {
        Ok(rows) => {
            if output == Output::Text {
                print_rows(&rows);
            } else {
                let line = serde_json::json!({"t": entries.last().map_or(0.0, |e| e.t), "event": "summary", "detail": {"clusters": rows}});
                print_line(output, &line);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn print_rows(rows: &[fleet::Row]) {
    let short = |r: &Option<String>| {
        r.as_deref().map_or("—".to_string(), |r| r.split("sha1:").nth(1).unwrap_or(r).chars().take(12).collect())
    };
    outln!();
    outln!("{:<8} {:>4}  {:<12}  {:<15}  {:<12}  halted", "cluster", "wave", "in force", "last-known-good", "state");
    for r in rows {
        let halted: Vec<String> = r.halted.iter().map(|h| short(&Some(h.clone()))).collect();
        outln!(
            "{:<8} {:>4}  {:<12}  {:<15}  {:<12}  {}",
            r.cluster,
            r.wave,
            short(&r.in_force),
            short(&r.last_known_good),
            r.state,
            if halted.is_empty() { "—".to_string() } else { halted.join(", ") }
        );
    }
}

/// Revisions shown as `main@sha1:<12 hex>` in the text timeline.
fn shorten(entries: &[Entry]) -> Vec<Entry> {
    entries
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let mut out = String::new();
            let mut rest = e.message.as_str();
            while let Some(i) = rest.find("sha1:") {
                let (head, tail) = rest.split_at(i + 5);
                out.push_str(head);
                let hex = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
                out.push_str(&tail[..hex.min(12)]);
                rest = &tail[hex..];
            }
            out.push_str(rest);
            e.message = out;
            e
        })
        .collect()
}
