//! `capstan audit`: which commits changed a cluster's effective policy, field by field, and
//! (with a state store) the decisions each revision caused.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Format;
use super::out::{out, outln};
use crate::gitops::audit::{self, AuditOptions, Entry};
use crate::kops::{S3Options, Store, decisions};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The config repository (a folder in a Git repository).
    #[arg(default_value = ".")]
    pub repo: PathBuf,
    #[arg(long)]
    pub cluster: Option<String>,
    /// Only commits from this date on (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only changes to this object, e.g. NodePool/default.
    #[arg(long)]
    pub object: Option<String>,
    /// Join the decisions recorded under `<cluster>/capstan/decisions/` in this state store.
    #[arg(long)]
    pub state_store: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
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
    let options = AuditOptions { cluster: args.cluster.clone(), since, object: args.object.clone() };
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
    match args.format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&entries).expect("entries serialise")),
        Format::Text => out!("{}", audit::text(&entries)),
    }
    ExitCode::SUCCESS
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
