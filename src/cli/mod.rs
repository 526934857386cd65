//! The command line: parse arguments, call the library, print, and map outcomes to exit codes
//! (0 clean, 1 findings or failure, 2 usage; `fleet status` uses 2 for "in progress" and `diff`
//! 2 for "changes", and both 3 for usage).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::policy::{self, Snapshot, Validation};

mod audit;
mod bench;
mod demo;
mod diff;
mod fleet;
mod nodes;
mod out;
mod run;
mod simulate;
mod state;
mod trace;

#[derive(Debug, Parser)]
#[command(name = "capstan", version, about = "Node autoscaler for kOps clusters on AWS, run as a GitOps reconciler")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay the kOps + Karpenter proof of concept on simulated EC2 and Kubernetes: scale
    /// `inflate` 0 → 16 → 0 under the example policy and print the timeline.
    Demo(demo::DemoArgs),
    /// The daemon: follow the config repository, reconcile the kOps state store and run the
    /// capacity loop; serves /metrics, /healthz, /readyz and /status.
    Run(run::RunArgs),
    /// The running daemon's nodes in the terminal: requests against allocatable per node, grouped
    /// by NodePool and zone, with the cost and the pending pods. Exit 0 shown, 1 unreachable, 3 usage.
    Nodes(nodes::NodesArgs),
    /// Check a config repository: syntax, schema, references, the kOps translation and guardrails.
    Validate {
        /// The config repository (a folder).
        #[arg(default_value = ".")]
        repo: PathBuf,
        /// Check one cluster only.
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print a cluster's effective NodePools and EC2NodeClasses (translated IGs included).
    Render {
        #[arg(default_value = ".")]
        repo: PathBuf,
        #[arg(long)]
        cluster: String,
    },
    /// Show what reconcile would change in the kOps state store, terraform-style. Exit 0 when
    /// nothing would change, 2 when something would, 1 on error.
    Plan {
        #[command(flatten)]
        store: state::StoreArgs,
    },
    /// Apply the repository's InstanceGroups to the kOps state store with conditional writes.
    Reconcile {
        #[command(flatten)]
        store: state::StoreArgs,
        /// One pass, then exit (0 applied or nothing to do, 1 conflict or error).
        #[arg(long)]
        once: bool,
        /// Time between passes without --once (Go duration, e.g. 30s).
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        interval: std::time::Duration,
    },
    /// The commits that changed a cluster's effective policy, with their field-level changes.
    Audit(audit::AuditArgs),
    /// Each cluster's effective policy change between two revisions, field by field, with what
    /// follows (drift, tighter limits). Exit 0 no change, 2 changes, 1 error, 3 usage.
    Diff(diff::DiffArgs),
    /// Replay a workload trace under the base and the head revision and compare cost, nodes,
    /// pending time and disruptions. Exit 0 within the outcome guardrails, 1 broken or error, 3 usage.
    Simulate(simulate::SimulateArgs),
    /// Workload traces for simulate: record one from a live cluster, or synthesise one.
    Trace {
        #[command(subcommand)]
        what: trace::TraceCommand,
    },
    /// Measure the scheduler or other parts; prints what it measured.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
    /// Fleet rollout across the clusters of fleet.yaml.
    Fleet {
        #[command(subcommand)]
        what: fleet::FleetCommand,
    },
    /// Instance catalogs.
    Catalog {
        #[command(subcommand)]
        what: CatalogCommand,
    },
    /// Write the JSON Schemas of every document kind.
    Schema {
        /// Folder to write into.
        #[arg(long, default_value = "policies/schema")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Read every instance type and offering from EC2, price them, and write a catalog file.
    Export {
        /// CSV of on-demand prices: instance_type,usd_per_hour.
        #[arg(long)]
        prices: PathBuf,
        /// EC2 endpoint (default: the AWS chain's).
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long)]
        region: Option<String>,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_error(&e),
    };
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Run(args) => run::run(args),
        Command::Nodes(args) => nodes::run(&args),
        Command::Validate { repo, cluster, format } => validate(&repo, cluster.as_deref(), format),
        Command::Render { repo, cluster } => render(&repo, &cluster),
        Command::Schema { out } => schema(&out),
        Command::Plan { store } => state::plan(&store),
        Command::Audit(args) => audit::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Trace { what } => trace::run(what),
        Command::Reconcile { store, once, interval } => state::reconcile(&store, once, interval),
        Command::Catalog { what: CatalogCommand::Export { prices, endpoint, region, out } } => {
            catalog_export(&prices, endpoint, region, out.as_deref())
        }
        Command::Bench { what } => bench::run(what),
        Command::Fleet { what } => fleet::run(what),
    }
}

/// clap's exit code for bad arguments is 2, which `fleet` commands use for "in progress" and
/// `diff` for "changes"; theirs is 3.
fn parse_error(e: &clap::Error) -> ExitCode {
    // Printing to a closed pipe is not worth a panic.
    let _ = e.print();
    if !e.use_stderr() {
        return ExitCode::SUCCESS; // --help, --version
    }
    match std::env::args().nth(1).as_deref() {
        Some("fleet") => ExitCode::from(fleet::USAGE),
        Some("diff" | "simulate" | "trace" | "nodes") => ExitCode::from(diff::USAGE),
        _ => ExitCode::from(2),
    }
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    policy::duration::GoDuration::parse(text)
        .map(|d| d.duration())
        .ok_or_else(|| format!("`{text}` is not a duration such as 30s, 5m or 1h"))
}

/// Exit code for a usage problem.
pub(crate) fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Reads the repository for validation: a folder below the root that cannot be read is left to
/// `validate` to judge (another cluster's folder is only a warning).
fn read_repo(repo: &Path) -> Result<Snapshot, ExitCode> {
    Snapshot::from_dir_lenient(repo)
        .map_err(|e| usage(format!("cannot read config repository {}: {e}", repo.display())))
}

pub(crate) fn load(repo: &Path, cluster: Option<&str>) -> Result<Validation, ExitCode> {
    policy::validate(&read_repo(repo)?, cluster).map_err(usage)
}

fn validate(repo: &Path, cluster: Option<&str>, format: Format) -> ExitCode {
    let v = match load(repo, cluster) {
        Ok(v) => v,
        Err(code) => return code,
    };
    // Paths relative to where the command runs, so editors and terminals can jump to them.
    let diags: Vec<_> = v
        .diagnostics
        .sorted()
        .into_iter()
        .map(|mut d| {
            d.file = repo.join(&d.file).display().to_string();
            d
        })
        .collect();
    let clusters: Vec<&str> = v.policies.iter().map(|p| p.cluster.as_str()).collect();
    match format {
        Format::Json => {
            let out = serde_json::json!({
                "errors": v.diagnostics.errors(),
                "warnings": v.diagnostics.warnings(),
                "clusters": clusters,
                "diagnostics": diags,
            });
            out::outln!("{}", serde_json::to_string_pretty(&out).expect("json"));
        }
        Format::Text => {
            for d in &diags {
                out::outln!("{d}");
            }
            out::outln!(
                "{}: {} error(s), {} warning(s); clusters checked: {}",
                repo.display(),
                v.diagnostics.errors(),
                v.diagnostics.warnings(),
                clusters.join(", ")
            );
        }
    }
    if v.diagnostics.has_errors() { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn render(repo: &Path, cluster: &str) -> ExitCode {
    let v = match load(repo, Some(cluster)) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if v.diagnostics.has_errors() {
        for d in v.diagnostics.sorted().iter().filter(|d| d.is_error()) {
            eprintln!("{d}");
        }
        eprintln!("error: the repository has {} error(s); fix them before rendering", v.diagnostics.errors());
        return ExitCode::from(1);
    }
    let policy = &v.policies[0];
    match policy::render::render(policy) {
        Ok(text) => {
            out::out!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot render: {e}");
            ExitCode::from(1)
        }
    }
}

fn schema(out: &Path) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("error: cannot create {}: {e}", out.display());
        return ExitCode::from(1);
    }
    for (name, text) in policy::schema::all() {
        let path = out.join(&name);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
        out::outln!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

fn catalog_export(prices: &Path, url: Option<String>, region: Option<String>, out: Option<&Path>) -> ExitCode {
    let prices = match crate::cloud::prices::read(prices) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let endpoint = crate::cloud::aws::Endpoint { url, region };
    let result = runtime().block_on(async {
        let client = crate::cloud::aws::ec2(&endpoint).await;
        crate::cloud::aws::catalog::fetch(&client, &prices).await
    });
    let (catalog, report) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let text = serde_json::to_string(&catalog).expect("catalog serialises");
    match out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
        }
        None => out::outln!("{text}"),
    }
    eprintln!(
        "catalog: {} instance types described, {} exported; {} without a price, {} skipped (no 64-bit architecture or no offering)",
        report.described,
        report.exported,
        report.unpriced.len(),
        report.skipped.len()
    );
    ExitCode::SUCCESS
}
