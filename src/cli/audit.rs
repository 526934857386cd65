//! `capstan audit`: which commits changed a cluster's effective policy, field by field, and
//! (with a state store) the decisions each revision caused.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Output;
use super::out::out;
use super::output::OutputArg;
use crate::gitops::audit::{self, AuditOptions, Entry};
use crate::gitops::guardrail_history;
use crate::kops::{S3Options, Store, decisions};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The config repository (a folder in a Git repository).
    #[arg(default_value = ".")]
    pub repo: PathBuf,
    /// Only this cluster: its name in fleet.yaml (`dev`) or its kOps name (`dev.example.com`).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Only commits from this date on (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only changes to this object, e.g. NodePool/default.
    #[arg(long)]
    pub object: Option<String>,
    /// Join the decisions recorded under `<cluster>/capstan/decisions/` in this state store
    /// (`s3://bucket[/prefix]` or `file:///path`; default: the `KOPS_STATE_STORE` environment
    /// variable, else no decisions are joined).
    #[arg(long, env = "KOPS_STATE_STORE")]
    pub state_store: Option<String>,
    /// Instead of the history: each guardrail relaxation and exception in force at HEAD, with
    /// the commit that added it (sha, author, date).
    #[arg(long, conflicts_with_all = ["since", "object"])]
    pub guardrails: bool,
    #[command(flatten)]
    pub output: OutputArg,
}

fn parse_since(text: &str) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp())
        .map_err(|_| format!("--since `{text}`: write a date (2026-11-01) or an RFC 3339 time"))
}

pub fn run(args: &AuditArgs) -> ExitCode {
    let since = match args.since.as_deref().map(parse_since).transpose() {
        Ok(s) => s,
        Err(e) => return super::usage(e),
    };
    let cluster = args.cluster.as_deref().map(|c| kops_to_fleet_name(&args.repo, c));
    if args.guardrails {
        return guardrails(args, cluster.as_deref());
    }
    let options = AuditOptions { cluster, since, object: args.object.clone() };
    let mut entries = match audit::audit(&args.repo, &options) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(url) = &args.state_store {
        let joined = super::runtime().block_on(join_decisions(&args.repo, url, &mut entries));
        if let Err(e) = joined {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    match args.output.get() {
        Output::Text => out!("{}", audit::text(&entries)),
        json_or_yaml => json_or_yaml.print(&entries),
    }
    ExitCode::SUCCESS
}

/// `--guardrails`: the relaxations and exceptions in force, each with the commit that added it.
fn guardrails(args: &AuditArgs, cluster: Option<&str>) -> ExitCode {
    let added = match guardrail_history::added(&args.repo, cluster) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match args.output.get() {
        Output::Text => out!("{}", guardrail_history::text(&added)),
        json_or_yaml => json_or_yaml.print(&added),
    }
    ExitCode::SUCCESS
}

/// The fleet name of a cluster given by its kOps name in the checkout's fleet.yaml; any other
/// name as given, since the history may hold clusters the checkout no longer lists.
fn kops_to_fleet_name(repo: &std::path::Path, cluster: &str) -> String {
    crate::policy::Snapshot::from_dir_lenient(repo)
        .ok()
        .and_then(|s| super::cluster::resolve(&s, cluster).ok())
        .unwrap_or_else(|| cluster.to_string())
}

/// Attaches each recorded decision to the commit whose revision caused it.
async fn join_decisions(repo: &std::path::Path, url: &str, entries: &mut [Entry]) -> Result<(), String> {
    let store = Store::open(url, &S3Options::default()).await.map_err(|e| e.to_string())?;
    let snapshot = crate::policy::Snapshot::from_dir(repo).map_err(|e| e.to_string())?;
    let v = crate::policy::validate(&snapshot, None).map_err(|e| e.to_string())?;
    let mut all = Vec::new();
    for p in &v.policies {
        let (found, skipped) = decisions::read(&store, &p.kops_name).await.map_err(|e| e.to_string())?;
        if skipped > 0 {
            eprintln!("warning: {skipped} unreadable line(s) under {}", decisions::prefix(&p.kops_name));
        }
        all.extend(found);
    }
    for e in entries.iter_mut() {
        e.decisions = all.iter().filter(|d| d.caused_by(&e.sha)).cloned().collect();
    }
    Ok(())
}
