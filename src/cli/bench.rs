//! `capstan bench …`: measurements run from the command line, printing what they measured.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use super::out::outln;
use crate::kops::{self, S3Options, Store};

/// The synthetic cluster of the consolidation and board benchmarks.
#[derive(Debug, Args)]
pub struct Synthetic {
    /// Nodes of the synthetic cluster.
    #[arg(long, default_value_t = 5000)]
    nodes: usize,
    /// Average pods per node (150,000 pods for 5,000 nodes).
    #[arg(long, default_value_t = 30)]
    pods_per_node: usize,
    /// Seed of the random cluster; the same seed gives the same cluster.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Commit → revision validated and in force, through the file watch or a signed webhook,
    /// on a copy of a config repository in a fresh Git repository.
    Gitops {
        /// The config repository copied into the fresh Git repository.
        #[arg(long, default_value = "examples/fleet")]
        repo: PathBuf,
        /// The cluster whose revision is followed.
        #[arg(long, default_value = "dev")]
        cluster: String,
        /// Commits made and measured.
        #[arg(long, default_value_t = 20)]
        commits: usize,
        /// How the daemon learns of a commit: the file watch, or a signed webhook.
        #[arg(long, value_enum, default_value_t = crate::bench::gitops::Trigger::Watch)]
        trigger: crate::bench::gitops::Trigger,
        /// One JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Plan and apply InstanceGroups of many clusters against a state store (creates, a pass
    /// with nothing to do, updates). Writes under fresh `bench-*` cluster names.
    StateStore {
        /// Clusters written, each under a fresh `bench-*` name.
        #[arg(long, default_value_t = 50)]
        clusters: usize,
        /// InstanceGroups in all, spread over the clusters.
        #[arg(long, default_value_t = 1000)]
        igs: usize,
        /// The state store to write to (`s3://bucket[/prefix]` or `file:///path`), always given:
        /// the benchmark writes `bench-*` clusters there and leaves them.
        #[arg(long)]
        state_store: String,
        #[command(flatten)]
        s3: super::state::S3Args,
        /// The S3 region (default: the AWS chain's).
        #[arg(long)]
        region: Option<String>,
        /// One JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One wave gate decision: the rollout records of many clusters of the previous wave are
    /// written to a state store (fresh `bench-*` names), then read and judged.
    Fleet {
        /// Clusters in the previous wave.
        #[arg(long, default_value_t = 500)]
        clusters: usize,
        /// The state store every cluster's record goes to (`s3://bucket` or `file:///path`),
        /// always given: the benchmark writes `bench-*` records there and leaves them.
        #[arg(long)]
        state_store: String,
        #[command(flatten)]
        s3: super::state::S3Args,
        /// The S3 region (default: the AWS chain's).
        #[arg(long)]
        region: Option<String>,
        /// One JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// `/healthz` latency on the daemon's two-worker runtime while large disruption decisions
    /// run on it (offloaded as the capacity loop does, or `--inline` for comparison).
    Healthz {
        /// Nodes of the synthetic cluster each decision runs over.
        #[arg(long, default_value_t = 5000)]
        nodes: usize,
        /// Decisions in a row.
        #[arg(long, default_value_t = 5)]
        decisions: usize,
        /// Decision tasks at once (2 keeps both workers busy).
        #[arg(long, default_value_t = 2)]
        parallel: usize,
        /// Run the decisions inline on the worker instead of offloading them.
        #[arg(long)]
        inline: bool,
        /// One JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The status board of a large synthetic cluster (the consolidation benchmark's), built and
    /// serialized as the daemon does when the cluster changes.
    Board {
        #[command(flatten)]
        cluster: Synthetic,
        /// Builds in a row; the fastest is reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Also write the page's JSON document (`GET /status/board`'s body) to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// One JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One full disruption decision over a large synthetic cluster.
    Consolidation {
        #[command(flatten)]
        cluster: Synthetic,
        /// Decisions pass after pass, each applied to the cluster (budgets 100 %), until one
        /// finds nothing; the savings compared with the best repack of all pods.
        #[arg(long)]
        passes: bool,
        /// Most passes with --passes.
        #[arg(long, default_value_t = 1000)]
        max_passes: usize,
        /// Deployment templates of the cluster (fewer: fewer pod shapes).
        #[arg(long, default_value_t = crate::bench::consolidation::TEMPLATES)]
        templates: usize,
        /// With --passes, also search for the exact optimal repack (small clusters only).
        #[arg(long)]
        exact: bool,
        /// One JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Resident memory of what the daemon holds for a large cluster: the reflector stores
    /// (realistic objects, kept as the daemon keeps them) or the simulated cluster, and one
    /// snapshot. Run one backend per process.
    Memory {
        #[command(flatten)]
        cluster: Synthetic,
        /// Where the cluster is held.
        #[arg(long, value_enum, default_value_t = crate::bench::memory::Backend::Kube)]
        backend: crate::bench::memory::Backend,
        /// Store whole objects, to see what trimming saves (`kube` only).
        #[arg(long, conflicts_with = "trim_only")]
        no_trim: bool,
        /// Store pods trimmed but not converted, for comparison (`kube` only).
        #[arg(long)]
        trim_only: bool,
        /// One JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Pending pod → CreateFleet request, with the daemon's simulated-backend driver on the wall
    /// clock and a repository's policy.
    Provisioning {
        /// The config repository whose policy the driver uses.
        #[arg(long, default_value = "examples/fleet")]
        repo: PathBuf,
        /// The cluster of the repository: its name in fleet.yaml or its kOps name.
        #[arg(long, default_value = "dev")]
        cluster: String,
        /// Kubernetes YAML with the Deployment whose pods go pending.
        #[arg(long, default_value = "examples/workloads/inflate.yaml")]
        workload: PathBuf,
        /// The Deployment of the workload file.
        #[arg(long, default_value = "inflate")]
        deployment: String,
        /// Pending pods → CreateFleet rounds measured.
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        /// One JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A synthetic diurnal trace replayed twice (base and head, as `simulate` does) under a
    /// repository's policy on one thread.
    Simulate {
        /// The config repository whose policy is replayed.
        #[arg(long, default_value = "examples/fleet")]
        repo: PathBuf,
        /// The cluster of the repository.
        #[arg(long, default_value = "dev")]
        cluster: String,
        /// Pods at the busiest hour.
        #[arg(long, default_value_t = 2000)]
        pods: u32,
        /// Length of the trace in hours.
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// One JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Solve pending pods against an instance catalog, cost-optimal and Karpenter-style.
    Scheduling {
        /// Pending pods to place.
        #[arg(long, default_value_t = 1000)]
        pods: usize,
        /// A catalog JSON file (`capstan catalog export`), or `karpenter-synthetic` for the
        /// 400 types of Karpenter's scheduling benchmark (type i: i vCPU, 2i GiB, 10i pods, a
        /// made-up price proportional to size); the built-in curated catalog otherwise.
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// The pods' shapes: Karpenter's benchmark mix, or a generic one.
        #[arg(long, value_enum, default_value_t = MixArg::Karpenter)]
        mix: MixArg,
        /// Seed of the random pods; the same seed gives the same pods.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also search for the cheapest packing of the bounds' model (small instances only;
        /// printed as n/a past the search's limits).
        #[arg(long)]
        exact: bool,
        /// Also bound the zoned model, where zone spreads put a share of their pods in every
        /// zone (minutes at 10,000 pods on the full catalog).
        #[arg(long)]
        zoned: bool,
        /// One JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MixArg {
    /// The pod sizes of Karpenter's scheduling benchmark.
    Karpenter,
    /// Pods with requests only.
    Generic,
}

pub fn run(what: BenchCommand) -> ExitCode {
    match what {
        BenchCommand::StateStore { clusters, igs, state_store, s3, region, json } => {
            let s3 = s3.options(region);
            bench_state_store(&state_store, &s3, clusters, igs, json)
        }
        BenchCommand::Fleet { clusters, state_store, s3, region, json } => {
            let s3 = s3.options(region);
            match super::runtime().block_on(crate::bench::fleet::run(&state_store, &s3, clusters)) {
                Ok(r) if json => outln!("{}", serde_json::to_string(&r).expect("json")),
                Ok(r) => outln!(
                    "{} clusters in the previous wave: gate decision {:.1} ms (read {:.1} ms, decide {:.1} ms), gate {}; records written in {:.0} ms",
                    r.clusters,
                    r.gate_ms,
                    r.read_ms,
                    r.decide_ms,
                    if r.opened { "opened" } else { "held" },
                    r.write_ms
                ),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        BenchCommand::Healthz { nodes, decisions, parallel, inline, json } => {
            match crate::bench::healthz::run(nodes, decisions, parallel, !inline) {
                Ok(r) if json => outln!("{}", serde_json::to_string(&r).expect("json")),
                Ok(r) => outln!(
                    "{} nodes, {} × {} decisions of {:.1} ms ({}): /healthz p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} requests",
                    r.nodes,
                    r.parallel,
                    r.decisions,
                    r.decide_ms,
                    if r.offloaded { "offloaded" } else { "inline" },
                    r.p50_ms,
                    r.p99_ms,
                    r.max_ms,
                    r.requests
                ),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        BenchCommand::Gitops { repo, cluster, commits, trigger, json } => {
            match super::runtime().block_on(crate::bench::gitops::run(&repo, &cluster, commits, trigger)) {
                Ok(r) if json => outln!("{}", serde_json::to_string(&r).expect("json")),
                Ok(r) => outln!(
                    "{} commits, {:?}: commit → in force median {:.0} ms, p90 {:.0} ms, max {:.0} ms",
                    r.commits,
                    r.trigger,
                    r.median_ms,
                    r.p90_ms,
                    r.max_ms
                ),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        BenchCommand::Provisioning { repo, cluster, workload, deployment, rounds, json } => {
            provisioning(&repo, &cluster, &workload, &deployment, rounds, json)
        }
        BenchCommand::Simulate { repo, cluster, pods, hours, json } => {
            match crate::bench::simulate::run(&repo, &cluster, pods, hours) {
                Ok(r) if json => outln!("{}", serde_json::to_string(&r).expect("json")),
                Ok(r) => outln!(
                    "{} pods, {} h, {} events: replays {:.2} s and {:.2} s, {:.2} s in all ({} launches, ${:.2} per replay)",
                    r.pods,
                    r.hours,
                    r.events,
                    r.replay_seconds[0],
                    r.replay_seconds[1],
                    r.total_seconds,
                    r.launches,
                    r.cost_usd
                ),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        BenchCommand::Board { cluster: c, rounds, out, json } => {
            let (r, body) = crate::bench::board::run(c.nodes, c.pods_per_node, c.seed, rounds);
            if let Some(path) = out
                && let Err(e) = std::fs::write(&path, body)
            {
                eprintln!("capstan bench: writing {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            if json {
                outln!("{}", serde_json::to_string(&r).expect("json"));
            } else {
                outln!(
                    "{} nodes, {} pods: board built in {:.1} ms, serialized in {:.1} ms, {:.1} MB (pods {})",
                    r.nodes,
                    r.pods,
                    r.build_ms,
                    r.serialize_ms,
                    r.bytes as f64 / 1e6,
                    if r.pods_listed { "listed" } else { "counted by owner" }
                );
            }
            ExitCode::SUCCESS
        }
        BenchCommand::Consolidation { cluster: c, passes: true, max_passes, templates, exact, json } => {
            use crate::bench::consolidation_quality::{Options, run, text};
            let o =
                Options { nodes: c.nodes, pods_per_node: c.pods_per_node, seed: c.seed, templates, max_passes, exact };
            let q = run(&o);
            outln!("{}", if json { serde_json::to_string(&q).expect("json") } else { text(&q) });
            ExitCode::SUCCESS
        }
        BenchCommand::Consolidation { cluster: c, templates, json, .. } => {
            let r = crate::bench::consolidation::run_of(c.nodes, c.pods_per_node, c.seed, templates);
            if json {
                outln!("{}", serde_json::to_string(&r).expect("json"));
            } else {
                outln!(
                    "{} nodes, {} pods: decided in {:.1} ms; {} node(s) removed ({}), {} replacement(s), saving ${:.4}/h",
                    r.nodes,
                    r.pods,
                    r.decide_ms,
                    r.nodes_removed,
                    r.reason.as_deref().unwrap_or("nothing to do"),
                    r.replacements,
                    r.savings_per_hour
                );
            }
            ExitCode::SUCCESS
        }
        BenchCommand::Memory { cluster: c, backend, no_trim, trim_only, json } => {
            use crate::bench::memory::Kept;
            let kept = if no_trim {
                Kept::Full
            } else if trim_only {
                Kept::Trimmed
            } else {
                Kept::Converted
            };
            let r = crate::bench::memory::run(c.nodes, c.pods_per_node, c.seed, backend, kept);
            if json {
                outln!("{}", serde_json::to_string(&r).expect("json"));
            } else {
                outln!("{}", r.summary());
            }
            ExitCode::SUCCESS
        }
        BenchCommand::Scheduling { pods, catalog, mix, seed, exact, zoned, json } => {
            let extras = crate::bench::Extras { exact, zoned };
            scheduling(pods, catalog.as_deref(), mix, seed, extras, json)
        }
    }
}

/// The `--catalog` value naming Karpenter's synthetic benchmark catalog.
const KARPENTER_SYNTHETIC: &str = "karpenter-synthetic";

fn scheduling(
    pods: usize,
    catalog: Option<&Path>,
    mix: MixArg,
    seed: u64,
    extras: crate::bench::Extras,
    json: bool,
) -> ExitCode {
    let catalog = match catalog {
        None => crate::scheduling::builtin::catalog(),
        Some(name) if name == Path::new(KARPENTER_SYNTHETIC) => crate::bench::synthetic::karpenter_catalog(),
        Some(path) => match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(c) => c,
            Err(e) => return super::usage(format!("cannot read catalog {}: {e}", path.display())),
        },
    };
    let which = match mix {
        MixArg::Karpenter => crate::scheduling::mix::Mix::Karpenter,
        MixArg::Generic => crate::scheduling::mix::Mix::Generic,
    };
    let r = crate::bench::scheduling(&catalog, pods, which, seed, extras);
    if json {
        outln!("{}", serde_json::to_string(&r).expect("json"));
    } else {
        outln!("{} pods, {} instance types", r.pods, r.instance_types);
        outln!(
            "  cost-optimal: {:.1} ms ({:.0} pods/s), {} nodes, ${:.4}/h, {:.4}× the LP bound ${:.4}/h, {} unschedulable",
            r.solve_ms,
            r.pods_per_sec,
            r.nodes,
            r.cost_per_hour,
            r.cost_ratio,
            r.lower_bound_per_hour,
            r.unschedulable
        );
        outln!(
            "  karpenter-style FFD: {:.1} ms, {} nodes, ${:.4}/h, {:.4}× the bound, {} unschedulable",
            r.ffd_solve_ms,
            r.ffd_nodes,
            r.ffd_cost_per_hour,
            r.ffd_ratio,
            r.ffd_unschedulable
        );
        print_bounds(&r, extras);
        let mb = |m: Option<f64>| m.map_or("n/a".to_string(), |m| format!("{m:.1} MB"));
        outln!(
            "  peak RSS: cost-optimal {}, karpenter-style FFD {}, bounds {}",
            mb(r.solve_peak_rss_mb),
            mb(r.ffd_peak_rss_mb),
            mb(r.bounds_peak_rss_mb)
        );
    }
    ExitCode::SUCCESS
}

/// The tighter bounds and, when asked, the optimum, each with the cost-optimal plan's ratio.
fn print_bounds(r: &crate::bench::SchedulingResult, extras: crate::bench::Extras) {
    let money = |b: Option<f64>| b.map_or("n/a (too large)".to_string(), |b| format!("${b:.4}/h"));
    let times = |x: Option<f64>| x.map_or(String::new(), |x| format!(", cost ÷ bound {x:.4}"));
    let assignment_ratio = r.assignment_bound_per_hour.filter(|b| *b > 0.0).map(|b| r.cost_per_hour / b);
    outln!("  assignment LP bound: {}{}", money(r.assignment_bound_per_hour), times(assignment_ratio));
    outln!(
        "  configuration LP bound: {}{}{} ({:.1} ms for both bounds)",
        money(r.configuration_bound_per_hour),
        times(r.configuration_ratio),
        match (r.configuration_proven, r.configuration_master_per_hour) {
            (false, Some(m)) =>
                format!("; column generation stopped early, Farley bound; the LP optimum is at most ${m:.4}/h"),
            (false, None) => "; column generation stopped early, Farley bound".to_string(),
            (true, _) => String::new(),
        },
        r.bounds_ms
    );
    if let Some(b) = r.zoned_bound_per_hour {
        let early = match (r.zoned_proven, r.zoned_master_per_hour) {
            (false, Some(m)) => format!("; stopped early, Farley bound; the LP optimum is at most ${m:.4}/h"),
            _ => String::new(),
        };
        outln!(
            "  zoned configuration LP bound: ${b:.4}/h{}{early} (each zone spread's share in every zone: a bound for plans that keep every spread even over the pods it counts)",
            times(r.zoned_ratio)
        );
    } else if extras.zoned {
        outln!("  zoned configuration LP bound: n/a (no zone spread applies)");
    }
    outln!("  tightest: {}{}", money(Some(r.best_bound_per_hour)), times(r.best_ratio));
    if r.left_out > 0 {
        outln!("  {} pods no instance type can hold are left out of these bounds", r.left_out);
    }
    if extras.exact {
        let ratio = r.optimum_ratio.map_or(String::new(), |x| format!(", cost ÷ optimum {x:.4}"));
        outln!("  optimum of the bounds' model: {}{ratio}", money(r.optimum_per_hour));
    }
}

fn bench_state_store(url: &str, s3: &S3Options, clusters: usize, igs: usize, json: bool) -> ExitCode {
    super::runtime().block_on(async {
        let store = match Store::open(url, s3).await {
            Ok(s) => s,
            Err(e) => return super::usage(e),
        };
        if let Store::S3(s) = &store {
            let (bucket, _) = kops::s3::parse_url(url).expect("opened above");
            // Made if missing; an existing bucket answers with an error that is fine here.
            let _ = s.client().create_bucket().bucket(bucket).send().await;
        }
        match crate::bench::state_store::run(&store, clusters, igs).await {
            Ok(r) if json => outln!("{}", serde_json::to_string(&r).expect("json")),
            Ok(r) => outln!(
                "{} InstanceGroups in {} clusters on {url}: create {:.0} ms, no-op pass {:.0} ms (cold {:.0} ms), update {:.0} ms",
                r.instance_groups, r.clusters, r.create_ms, r.noop_ms, r.cold_noop_ms, r.update_ms
            ),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
        ExitCode::SUCCESS
    })
}

fn provisioning(repo: &Path, cluster: &str, workload: &Path, deployment: &str, rounds: usize, json: bool) -> ExitCode {
    let v = match super::load(repo, Some(cluster)) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if v.diagnostics.has_errors() {
        return super::usage(format!("{} has errors; run capstan validate", repo.display()));
    }
    let text = match std::fs::read_to_string(workload) {
        Ok(t) => t,
        Err(e) => return super::usage(format!("cannot read {}: {e}", workload.display())),
    };
    let rules = std::sync::Arc::new(crate::rules::Rules::from_policy(&v.policies[0], "bench@sha1:local".into()));
    match super::runtime().block_on(crate::bench::provisioning::run(rules, &text, deployment, rounds)) {
        Ok(r) if json => outln!("{}", serde_json::to_string(&r).expect("json")),
        Ok(r) => outln!(
            "{} rounds, batch idle {:.0} ms, tick {:.0} ms: pending → CreateFleet median {:.1} ms, p90 {:.1} ms, max {:.1} ms (max {:.1} ms over the idle time)",
            r.rounds,
            r.batch_idle_ms,
            r.tick_ms,
            r.median_ms,
            r.p90_ms,
            r.max_ms,
            r.max_over_idle_ms
        ),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
