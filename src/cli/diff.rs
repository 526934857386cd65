//! `capstan diff`: what a change to the config repository does to each cluster's effective
//! policy, between two revisions Git resolves (`origin/main`, a sha, `HEAD~1`). Made for pull
//! requests: `--format markdown` starts with a marker a bot can find to update its comment.
//!
//! Exit codes: 0 no change, 2 changes, 1 an error (head does not load, no Git repository), 3 usage.

use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use git2::Repository;
use serde::Serialize;

use super::out::out;
use crate::gitops::audit::open;
use crate::gitops::diff::{self, ClusterDiff, Loaded, show};
use crate::gitops::source::snapshot_at;

/// The first line of the markdown output.
pub const MARKER: &str = "<!-- capstan-diff -->";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Lines for a terminal.
    Text,
    /// A pull-request comment, starting with a marker a bot can find.
    Markdown,
    /// JSON, for scripts.
    Json,
    /// YAML, the same fields as JSON.
    Yaml,
}

/// The repository, the two revisions compared and the cluster: shared by `diff` and `simulate`.
#[derive(Debug, Args)]
pub struct Revisions {
    /// The config repository (a folder in a Git repository).
    #[arg(default_value = ".")]
    pub repo: PathBuf,
    /// The revision compared against: a branch, `origin/main`, a sha, `HEAD~1`…
    #[arg(long)]
    pub base: String,
    /// The revision with the change.
    #[arg(long, default_value = "HEAD")]
    pub head: String,
    /// Only this cluster: its name in fleet.yaml (`dev`) or its kOps name (`dev.example.com`).
    #[arg(long)]
    pub cluster: Option<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub revs: Revisions,
    /// Output format: text, markdown (a pull-request comment), json or yaml.
    #[arg(short = 'o', long = "output", alias = "format", value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

/// One side of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// As given on the command line.
    pub rev: String,
    /// The commit it resolved to.
    pub sha: String,
    /// `file:line:col: message` of its first error, when it does not load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The JSON output: `base` and `head` sides, then each changed cluster with its objects
/// (`object`, `action`, `fields[]` of `path`/`before`/`after`) and `consequences[]`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub base: Side,
    pub head: Side,
    pub clusters: Vec<ClusterDiff>,
}

pub fn run(all: &DiffArgs) -> ExitCode {
    let args = &all.revs;
    let (repo, rel) = match open(&args.repo) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let resolve = |flag: &str, rev: &str| -> Result<(String, Loaded), ExitCode> {
        let commit = commit_of(&repo, flag, rev)?;
        let loaded = read(&repo, commit.id(), &rel, args.cluster.as_deref())?;
        Ok((commit.id().to_string(), loaded))
    };
    let ((base_sha, base), (head_sha, head)) = match (resolve("base", &args.base), resolve("head", &args.head)) {
        (Ok(b), Ok(h)) => (b, h),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let error = |l: &Loaded| match l {
        Loaded::Failed(e) => Some(e.clone()),
        Loaded::Clusters(_) => None,
    };
    let clusters = match (&base, &head) {
        (Loaded::Clusters(b), Loaded::Clusters(h)) => diff::clusters(b, h),
        _ => Vec::new(),
    };
    let report = Report {
        base: Side { rev: args.base.clone(), sha: base_sha, error: error(&base) },
        head: Side { rev: args.head.clone(), sha: head_sha, error: error(&head) },
        clusters,
    };
    match all.format {
        DiffFormat::Json => out!("{}\n", serde_json::to_string_pretty(&report).expect("report serialises")),
        DiffFormat::Yaml => out!("{}", serde_yaml::to_string(&report).expect("report serialises")),
        DiffFormat::Text => out!("{}", text(&report)),
        DiffFormat::Markdown => out!("{}", markdown(&report)),
    }
    if report.head.error.is_some() {
        ExitCode::from(super::exit::FAILED)
    } else if report.clusters.is_empty() && report.base.error.is_none() {
        ExitCode::SUCCESS
    } else {
        // Changes, or a head that loads where the base did not.
        ExitCode::from(super::exit::CHANGES)
    }
}

/// One revision of the config repository, loaded.
fn read(repo: &Repository, commit: git2::Oid, rel: &str, cluster: Option<&str>) -> Result<Loaded, ExitCode> {
    let snapshot = snapshot_at(repo, commit, rel).map_err(|e| fail(e.to_string()))?;
    let cluster = cluster.map(|c| super::cluster::resolve(&snapshot, c)).transpose().map_err(usage)?;
    diff::load(&snapshot, cluster.as_deref()).map_err(usage)
}

/// The commit `rev` (given as `--flag`) resolves to; a usage error when it resolves to none.
pub(super) fn commit_of<'r>(repo: &'r Repository, flag: &str, rev: &str) -> Result<git2::Commit<'r>, ExitCode> {
    repo.revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| usage(format!("--{flag} `{rev}` is not a revision of this repository: {}", e.message())))
}

pub(super) use super::exit::{fail, usage};

fn short(side: &Side) -> String {
    format!("{} ({})", side.rev, &side.sha[..12.min(side.sha.len())])
}

/// One line per field: `NodePool/default spec.limits.cpu: 100 → 50`.
fn rows(c: &ClusterDiff) -> Vec<(String, &'static str, String, String)> {
    let mut out = Vec::new();
    for o in &c.objects {
        if o.fields.is_empty() {
            out.push((o.object.clone(), o.action, String::new(), String::new()));
        }
        for f in &o.fields {
            out.push((
                o.object.clone(),
                o.action,
                f.path.to_string(),
                format!("{} → {}", show(&f.before), show(&f.after)),
            ));
        }
    }
    out
}

fn errors(report: &Report, out: &mut String) {
    for (name, side) in [("base", &report.base), ("head", &report.head)] {
        if let Some(e) = &side.error {
            let _ = writeln!(out, "{name} {} did not load: {e}", short(side));
        }
    }
}

/// The report as text.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} → {}", short(&report.base), short(&report.head));
    errors(report, &mut out);
    for c in &report.clusters {
        let _ = writeln!(out, "cluster {}", c.cluster);
        for (object, action, field, change) in rows(c) {
            match action {
                "changed" => {
                    let _ = writeln!(out, "  {object} {field}: {change}");
                }
                _ => {
                    let _ = writeln!(out, "  {object} {action}");
                }
            }
        }
        for line in &c.consequences {
            let _ = writeln!(out, "  → {line}");
        }
    }
    if report.clusters.is_empty() && report.base.error.is_none() && report.head.error.is_none() {
        out.push_str("no change to any cluster's effective policy\n");
    }
    out
}

/// Escapes a cell of a markdown table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report as a pull-request comment: the marker, then a heading and a table per cluster.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{MARKER}");
    let _ = writeln!(out, "### capstan diff `{}` → `{}`\n", short(&report.base), short(&report.head));
    let mut errs = String::new();
    errors(report, &mut errs);
    for line in errs.lines() {
        let _ = writeln!(out, "> **{}**\n", cell(line));
    }
    if report.clusters.is_empty() && errs.is_empty() {
        out.push_str("No change to any cluster's effective policy.\n");
    }
    for c in &report.clusters {
        let _ = writeln!(out, "#### cluster `{}`\n", c.cluster);
        out.push_str("| object | change | field | base → head |\n|---|---|---|---|\n");
        for (object, action, field, change) in rows(c) {
            let _ = writeln!(out, "| `{}` | {action} | `{}` | {} |", cell(&object), cell(&field), cell(&change));
        }
        if !c.consequences.is_empty() {
            out.push('\n');
            for line in &c.consequences {
                let _ = writeln!(out, "- {}", cell(line));
            }
        }
        out.push('\n');
    }
    out
}
