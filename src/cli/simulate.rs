//! `capstan simulate`: a workload trace replayed under the base and the head revision's
//! effective policy, side by side, for every cluster (or one), as text, a pull-request comment
//! (markdown), JSON or a self-contained HTML report. The outcome guardrails of
//! `guardrails.yaml` (`spec.simulation`, the stricter of both revisions) fail the run.
//!
//! Exit codes: 0 within the guardrails, 1 a guardrail broken or an error, 3 usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use git2::Repository;

use super::diff::{Revisions, commit_of, fail, usage};
use super::out::{file_out, out};
use crate::gitops::audit::open;
use crate::gitops::source::snapshot_at;
use crate::policy::capstan::SimulationGuardrails;
use crate::policy::guardrails::stricter_outcomes;
use crate::policy::{self, EffectivePolicy};
use crate::revision::Revision;
use crate::trace::{self, Trace};
use crate::whatif::{self, ClusterOutcome, Report, Side, TraceInfo, guard, replay};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimulateFormat {
    /// Tables for a terminal.
    Text,
    /// A pull-request comment.
    Markdown,
    /// JSON, for scripts.
    Json,
    /// YAML, the same fields as JSON.
    Yaml,
    /// A self-contained HTML report with charts.
    Html,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub revs: Revisions,
    /// The workload trace to replay (see `capstan trace`).
    #[arg(long)]
    pub trace: PathBuf,
    /// Output format: text, markdown (a pull-request comment), json, yaml or html (a
    /// self-contained page).
    #[arg(short = 'o', long = "output", alias = "format", value_enum, default_value_t = SimulateFormat::Text)]
    pub format: SimulateFormat,
    /// Write the report here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// One revision, loaded: its clusters' policies and its outcome guardrails.
struct Loaded {
    side: Side,
    revision: Revision,
    policies: Vec<EffectivePolicy>,
    rules: Option<SimulationGuardrails>,
}

pub fn run(args: &SimulateArgs) -> ExitCode {
    let trace = match trace::load(&args.trace) {
        Ok(t) => t,
        Err(d) => return fail(d),
    };
    let out_file = match file_out(args.out.as_deref()) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let (repo, rel) = match open(&args.revs.repo) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let (base, head) = match (
        load(&repo, &rel, "base", &args.revs.base, args.revs.cluster.as_deref()),
        load(&repo, &rel, "head", &args.revs.head, args.revs.cluster.as_deref()),
    ) {
        (Ok(b), Ok(h)) => (b, h),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let rules = stricter_outcomes(base.rules.clone(), head.rules.clone()).unwrap_or_default();
    let seconds = trace.spec.duration.duration().as_secs();
    let mut clusters = Vec::new();
    for h in &head.policies {
        let Some(b) = base.policies.iter().find(|b| b.cluster == h.cluster) else {
            eprintln!("note: cluster {} is not in the base revision; not simulated", h.cluster);
            continue;
        };
        let runs = super::runtime().block_on(async {
            let mut progress = progress(&trace);
            let base_run =
                timed(&h.cluster, "base", replay::replay_with(b, base.revision.clone(), &trace, &mut progress)).await?;
            let head_run =
                timed(&h.cluster, "head", replay::replay_with(h, head.revision.clone(), &trace, &mut progress)).await?;
            Ok::<_, replay::ReplayError>((base_run, head_run))
        });
        let (base_run, head_run) = match runs {
            Ok(r) => r,
            Err(e) => return fail(format!("{}: {e}", args.trace.display())),
        };
        let breaches = guard::check(&rules, &base_run, &head_run, seconds);
        clusters.push(ClusterOutcome { cluster: h.cluster.clone(), base: base_run, head: head_run, breaches });
    }
    let report = Report { trace: info(&trace), base: base.side, head: head.side, clusters };
    let text = match args.format {
        SimulateFormat::Text => whatif::text::text(&report),
        SimulateFormat::Markdown => whatif::markdown::markdown(&report),
        SimulateFormat::Json => format!("{}\n", serde_json::to_string_pretty(&report).expect("report serialises")),
        SimulateFormat::Yaml => serde_yaml::to_string(&report).expect("report serialises"),
        SimulateFormat::Html => whatif::html::html(&report),
    };
    match out_file {
        Some(file) => {
            let path = file.path().display().to_string();
            if let Err(e) = file.commit(&text) {
                return fail(format!("writing {path}: {e}"));
            }
            eprintln!("wrote {path}");
        }
        None => out!("{text}"),
    }
    let broken: Vec<String> = report.breaches().map(|(c, b)| format!("{c}: {}: {}", b.rule, b.message)).collect();
    if broken.is_empty() {
        return ExitCode::SUCCESS;
    }
    for b in &broken {
        eprintln!("guardrail broken: {b}");
    }
    ExitCode::from(1)
}

/// How often a long replay says how far it is.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Says every few seconds how far a long replay is, on standard error.
fn progress(trace: &Trace) -> impl FnMut(Duration) {
    let total = hours_minutes(trace.spec.duration.duration());
    let mut said = Instant::now();
    move |at: Duration| {
        if said.elapsed() >= PROGRESS_EVERY {
            said = Instant::now();
            eprintln!("  {} of {total} replayed", hours_minutes(at));
        }
    }
}

/// `19h46m`, `5m`: a time on the trace, to the minute.
fn hours_minutes(d: Duration) -> String {
    let minutes = d.as_secs() / 60;
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, m) => format!("{h}h{m:02}m"),
    }
}

/// Replays one side, saying on standard error what runs and how long it took.
async fn timed<F>(cluster: &str, side: &str, replay: F) -> Result<whatif::Run, replay::ReplayError>
where
    F: std::future::Future<Output = Result<whatif::Run, replay::ReplayError>>,
{
    let started = Instant::now();
    eprintln!("simulating {cluster} under the {side} revision…");
    let run = replay.await?;
    eprintln!("  {cluster} {side}: done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(run)
}

fn load(repo: &Repository, rel: &str, flag: &str, rev: &str, cluster: Option<&str>) -> Result<Loaded, ExitCode> {
    let commit = commit_of(repo, flag, rev)?;
    let sha = commit.id().to_string();
    let snapshot = snapshot_at(repo, commit.id(), rel).map_err(|e| fail(e.to_string()))?;
    let cluster = cluster.map(|c| super::cluster::resolve(&snapshot, c)).transpose().map_err(usage)?;
    let v = policy::validate(&snapshot, cluster.as_deref()).map_err(usage)?;
    if let Some(d) = v.diagnostics.sorted().into_iter().find(|d| d.is_error()) {
        return Err(fail(format!("the {flag} revision {rev} does not load, so it cannot be simulated:\n{d}")));
    }
    let policies = v.policies.into_iter().filter(|p| !p.cluster.is_empty()).collect();
    Ok(Loaded {
        revision: Revision::commit(rev, sha.clone()),
        side: Side { rev: rev.to_string(), sha },
        policies,
        rules: v.guardrails.simulation,
    })
}

/// What the report says of the trace.
fn info(trace: &Trace) -> TraceInfo {
    TraceInfo {
        name: trace.metadata.name.clone(),
        seconds: trace.spec.duration.duration().as_secs(),
        events: trace.spec.events.len(),
        peak_pods: trace.peak_pods(),
    }
}
