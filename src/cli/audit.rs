//! `capstan audit`: which commits changed a cluster's effective policy, field by field, and
//! (with a state store) the decisions each revision caused.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::Format;
use crate::gitops::audit::{self, AuditOptions, Entry};
use crate::kops::{S3Options, StateStore, Store};

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
        Format::Json => println!("{}", serde_json::to_string_pretty(&entries).expect("entries serialise")),
        Format::Text => print!("{}", audit::text(&entries)),
    }
    ExitCode::SUCCESS
}

/// Attaches each decision (a JSON line with a `revision` naming a commit) to its commit.
async fn join_decisions(repo: &std::path::Path, url: &str, entries: &mut [Entry]) -> Result<(), String> {
    let store = Store::open(url, &S3Options::default()).await.map_err(|e| e.to_string())?;
    let snapshot = crate::policy::Snapshot::from_dir(repo).map_err(|e| e.to_string())?;
    let v = crate::policy::validate(&snapshot, None).map_err(|e| e.to_string())?;
    let mut decisions: Vec<Value> = Vec::new();
    for p in &v.policies {
        let prefix = format!("{}/capstan/decisions/", p.kops_name);
        for key in store.list(&prefix).await.map_err(|e| e.to_string())? {
            let Some(o) = store.get(&key).await.map_err(|e| e.to_string())? else { continue };
            let text = String::from_utf8_lossy(&o.bytes).into_owned();
            decisions.extend(text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()));
        }
    }
    for e in entries.iter_mut() {
        let sha = format!("sha1:{}", e.sha);
        e.decisions =
            decisions.iter().filter(|d| d["revision"].as_str().is_some_and(|r| r.ends_with(&sha))).cloned().collect();
    }
    Ok(())
}
