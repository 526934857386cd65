//! The command line: parse arguments, call the library, print, and map outcomes to exit codes,
//! one convention for every command ([`exit`]): 0 clean or nothing to change, 1 an error or
//! findings, 2 changes pending or in progress, 3 usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::policy::{self, Snapshot, Validation};

mod audit;
mod bench;
mod cluster;
mod demo;
mod diff;
mod duration;
mod exit;
mod fleet;
mod nodes;
mod out;
mod output;
mod run;
mod simulate;
mod state;
mod trace;
mod version;

pub use output::Output;

#[derive(Debug, Parser)]
#[command(
    name = "capstan",
    version = version::LINE,
    about = "Node autoscaler for kOps clusters on AWS, run as a GitOps reconciler",
    after_help = "Exit codes: 0 success or nothing to change, 1 an error or findings, 2 changes pending or in progress, 3 usage."
)]
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
    /// Exit 0 clean, 1 errors, 3 usage.
    Validate {
        /// The config repository (a folder).
        #[arg(default_value = ".")]
        repo: PathBuf,
        /// Check one cluster only: its name in fleet.yaml (`dev`) or its kOps name (`dev.example.com`).
        #[arg(long)]
        cluster: Option<String>,
        #[command(flatten)]
        output: output::OutputArg,
    },
    /// Print a cluster's effective NodePools and EC2NodeClasses (translated IGs included).
    /// Exit 0, 1 when the repository has errors, 3 usage.
    Render {
        /// The config repository (a folder).
        #[arg(default_value = ".")]
        repo: PathBuf,
        /// The cluster: its name in fleet.yaml (`dev`) or its kOps name (`dev.example.com`).
        #[arg(long)]
        cluster: String,
        /// Output format: the YAML documents (`text` is the same), or JSON: a `List` with the
        /// documents as `items`.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Yaml)]
        output: Output,
    },
    /// Show what reconcile would change in the kOps state store, terraform-style. Exit 0 when
    /// nothing would change, 2 when something would, 1 on error, 3 usage.
    Plan {
        #[command(flatten)]
        store: state::StoreArgs,
    },
    /// Apply the repository's InstanceGroups to the kOps state store with conditional writes.
    /// Exit 0 applied or nothing to do, 1 conflict or error, 3 usage.
    Reconcile {
        #[command(flatten)]
        store: state::StoreArgs,
        /// One pass, then exit (0 applied or nothing to do, 1 conflict or error).
        #[arg(long)]
        once: bool,
        /// Time between passes without --once: a Go duration such as 500ms, 30s, 1m30s or 2h
        /// (units ns, us, ms, s, m, h), from 100ms to 24h.
        #[arg(long, default_value = "30s", value_parser = duration::interval)]
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
    /// The JSON Schemas of every document kind: printed as one JSON object keyed by file name
    /// (`nodepool.schema.json`…), or written as files with --out.
    Schema {
        /// Write one file per kind into this folder (`policies/schema` in this repository)
        /// instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only this kind's schema, printed as is (e.g. NodePool, EC2NodeClass, Fleet).
        #[arg(long, conflicts_with = "out")]
        kind: Option<String>,
    },
    /// Print capstan's version, the commit it was built from, the build date and the rustc
    /// version (`capstan --version` prints the same line).
    Version {
        /// One JSON object instead of the line.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `capstan completion bash > /etc/bash_completion.d/capstan`,
    /// `capstan completion zsh > "${fpath[1]}/_capstan"`, or
    /// `capstan completion fish > ~/.config/fish/completions/capstan.fish`.
    Completion {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
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
        /// AWS region to read (default: the AWS chain's).
        #[arg(long)]
        region: Option<String>,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
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
        Command::Validate { repo, cluster, output } => validate(&repo, cluster.as_deref(), output.get()),
        Command::Render { repo, cluster, output } => render(&repo, &cluster, output),
        Command::Schema { out, kind } => schema(out.as_deref(), kind.as_deref()),
        Command::Version { json } => version::print(json),
        Command::Completion { shell } => completion(shell),
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

/// clap's own exit code for bad arguments is 2, which means "changes" or "in progress" here;
/// every command's usage code is 3.
fn parse_error(e: &clap::Error) -> ExitCode {
    // Printing to a closed pipe is not worth a panic.
    let _ = e.print();
    if !e.use_stderr() {
        return ExitCode::SUCCESS; // --help, --version
    }
    ExitCode::from(exit::USAGE)
}

pub(crate) use exit::usage;

/// `capstan completion SHELL`: the script for that shell on standard output.
fn completion(shell: clap_complete::Shell) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "capstan", &mut script);
    out::out!("{}", String::from_utf8_lossy(&script));
    ExitCode::SUCCESS
}

/// Reads the repository for validation: a folder below the root that cannot be read is left to
/// `validate` to judge (another cluster's folder is only a warning).
fn read_repo(repo: &Path) -> Result<Snapshot, ExitCode> {
    Snapshot::from_dir_lenient(repo)
        .map_err(|e| usage(format!("cannot read config repository {}: {e}", repo.display())))
}

/// The repository validated for `cluster` (its fleet or kOps name; an unknown one is a usage
/// error), or for every cluster.
pub(crate) fn load(repo: &Path, cluster: Option<&str>) -> Result<Validation, ExitCode> {
    let snapshot = read_repo(repo)?;
    let cluster = cluster.map(|c| cluster::resolve(&snapshot, c)).transpose().map_err(usage)?;
    policy::validate(&snapshot, cluster.as_deref()).map_err(usage)
}

fn validate(repo: &Path, cluster: Option<&str>, format: Output) -> ExitCode {
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
    let waivers: Vec<_> = v
        .waivers
        .iter()
        .cloned()
        .map(|mut w| {
            w.file = repo.join(&w.file).display().to_string();
            w
        })
        .collect();
    let of_kind = |k| waivers.iter().filter(|w| w.kind == k).collect::<Vec<_>>();
    match format {
        Output::Json | Output::Yaml => {
            let out = serde_json::json!({
                "errors": v.diagnostics.errors(),
                "warnings": v.diagnostics.warnings(),
                "clusters": clusters,
                "diagnostics": diags,
                "relaxations": of_kind(policy::guardrail_waivers::WaiverKind::Relaxation),
                "exceptions": of_kind(policy::guardrail_waivers::WaiverKind::Exception),
            });
            format.print(&out);
        }
        Output::Text => {
            for d in &diags {
                out::outln!("{d}");
            }
            if !waivers.is_empty() {
                out::outln!("guardrails loosened on record:");
            }
            for w in &waivers {
                out::outln!("{w}");
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

fn render(repo: &Path, cluster: &str, output: Output) -> ExitCode {
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
    let text = match policy::render::render(policy) {
        Ok(text) => text,
        Err(e) => return exit::fail(format!("cannot render: {e}")),
    };
    match output {
        Output::Yaml | Output::Text => out::out!("{text}"),
        Output::Json => match output::yaml_list(&text) {
            Ok(list) => output.print(&list),
            Err(e) => return exit::fail(format!("cannot render as JSON: {e}")),
        },
    }
    ExitCode::SUCCESS
}

/// Without `--out`, the schemas on standard output: one JSON object keyed by file name, or the
/// one `--kind` asks for.
fn schema(out: Option<&Path>, kind: Option<&str>) -> ExitCode {
    let all = policy::schema::all();
    let Some(out) = out else {
        if let Some(kind) = kind {
            let file = format!("{}.schema.json", kind.to_ascii_lowercase());
            return match all.iter().find(|(name, _)| *name == file) {
                Some((_, text)) => {
                    out::out!("{text}");
                    ExitCode::SUCCESS
                }
                None => {
                    let kinds: Vec<&str> = all.iter().filter_map(|(n, _)| n.strip_suffix(".schema.json")).collect();
                    usage(format!("--kind `{kind}`: no such kind; known: {}", kinds.join(", ")))
                }
            };
        }
        let mut doc = serde_json::Map::new();
        for (name, text) in all {
            doc.insert(name, serde_json::from_str(&text).expect("schemas are JSON"));
        }
        out::outln!("{}", serde_json::to_string_pretty(&doc).expect("schemas serialise"));
        return ExitCode::SUCCESS;
    };
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("error: cannot create {}: {e}", out.display());
        return ExitCode::from(1);
    }
    for (name, text) in all {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument and command below `cmd` without a help text, as `capstan bench gitops --repo`.
    fn without_help(cmd: &clap::Command, path: &str, found: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                found.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                found.push(format!("{path} (the command)"));
            }
            without_help(sub, &path, found);
        }
    }

    #[test]
    fn every_command_and_flag_has_help() {
        let mut found = Vec::new();
        without_help(&Cli::command(), "capstan", &mut found);
        assert!(found.is_empty(), "no help text:\n{}", found.join("\n"));
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn output_flags_share_one_name_and_keep_the_old_ones() {
        for args in [
            &["capstan", "validate", "-o", "yaml"][..],
            &["capstan", "validate", "--format", "json"],
            &["capstan", "plan", "--cluster", "dev", "--output", "json"],
            &["capstan", "fleet", "status", "--format", "json"],
            &["capstan", "audit", "-o", "yaml"],
            &["capstan", "diff", "--base", "HEAD", "-o", "markdown"],
            &["capstan", "diff", "--base", "HEAD", "--format", "json"],
            &["capstan", "demo", "--json"],
            &["capstan", "demo", "-o", "json"],
            &["capstan", "nodes", "--json"],
            &["capstan", "render", "--cluster", "dev", "-o", "json"],
        ] {
            if let Err(e) = Cli::try_parse_from(args) {
                panic!("{args:?}: {e}");
            }
        }
    }
}
