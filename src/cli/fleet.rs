//! `capstan fleet status`: where every cluster of the fleet stands in the rollout, read from the
//! record each cluster's daemon writes in its own state store.
//!
//! ```text
//! REPO/fleet.yaml ─► Fleet entries ─peers::read_all─► Peer per cluster ─► rows ─► table or JSON
//!                                                                          └─► verdict ─► exit code
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::Output;
use super::out::out;
use super::output::OutputArg;
use super::state::S3Args;
use crate::fleet::gate::Peer;
use crate::fleet::peers::{self, Stores};
use crate::fleet::record::{Halted, Held, Phase, Record};
use crate::kops::object;
use crate::policy::capstan::FleetSpec;
use crate::policy::{Snapshot, load};

/// Exit code of `fleet status` when it cannot run: bad arguments, or a config repository or
/// fleet.yaml that cannot be read. Not 2, which means "in progress".
pub const USAGE: u8 = super::exit::USAGE;

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Where each cluster stands in the rollout, read from its state store (exit codes: 0
    /// converged, 1 halted, 2 in progress, 3 usage or read error).
    ///
    /// One row per cluster, by wave then name: the revision in force, the last-known-good, the
    /// state (the rollout phase, `missing` when the cluster has written no record, `unreadable`
    /// when its record cannot be read) and why.
    ///
    /// Exit codes: 0 when the fleet has converged (every cluster healthy on the same commit); 1
    /// when any cluster is halted or rolled back; 2 while a rollout is in progress (anything
    /// else, missing and unreadable records included); 3 on a usage or read error: bad
    /// arguments, or a config repository or fleet.yaml that cannot be read.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The config repository (a folder) whose fleet.yaml lists the clusters.
    #[arg(default_value = ".")]
    pub repo: PathBuf,
    #[command(flatten)]
    pub output: OutputArg,
    /// `s3://bucket[/prefix]` or `file:///path` to read every cluster's record from; default:
    /// each cluster's `stateStore` in fleet.yaml (`KOPS_STATE_STORE` is not read: a fleet's
    /// clusters may keep their records in different buckets).
    #[arg(long)]
    pub state_store: Option<String>,
    #[command(flatten)]
    pub s3: S3Args,
}

pub fn run(what: FleetCommand) -> ExitCode {
    match what {
        FleetCommand::Status(args) => status(&args),
    }
}

fn status(args: &StatusArgs) -> ExitCode {
    let fleet = match read_fleet(&args.repo) {
        Ok(f) => f,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(USAGE);
        }
    };
    let fleet = with_store(fleet, args.state_store.as_deref());
    let names: Vec<String> = fleet.clusters.iter().map(|c| c.name.clone()).collect();
    // The region of each store comes from its Fleet entry.
    let stores = Arc::new(Stores::new(args.s3.options(None)));
    let peers = super::runtime().block_on(peers::read_all(&stores, &fleet, &names));
    let rows = rows(&fleet, peers);
    let verdict = verdict(&rows);
    match args.output.get() {
        Output::Text => out!("{}", table(&rows, verdict)),
        json_or_yaml => json_or_yaml.print(&json(&rows, verdict)),
    }
    ExitCode::from(verdict.code())
}

/// The Fleet of the repository, or why it cannot be had (ready to print): errors in fleet.yaml
/// count, errors in other files do not (the records say what the daemons run, whatever this
/// checkout holds).
fn read_fleet(repo: &Path) -> Result<FleetSpec, String> {
    let snapshot = Snapshot::from_dir(repo)
        .map_err(|e| format!("error: cannot read config repository {}: {e}", repo.display()))?;
    let loaded = load::load(&snapshot);
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && d.file.starts_with("fleet.y"))
        .map(|d| {
            let mut d = d.clone();
            d.file = repo.join(&d.file).display().to_string();
            d.to_string()
        })
        .collect();
    match loaded.fleet {
        Some((fleet, _)) if errors.is_empty() => Ok(fleet.spec),
        _ if errors.is_empty() => Err(format!("error: {}: no Fleet in fleet.yaml", repo.display())),
        _ => Err(format!(
            "{}\nerror: {}: no usable fleet.yaml ({} error(s) above); fix it to see the fleet's status",
            errors.join("\n"),
            repo.display(),
            errors.len()
        )),
    }
}

/// The Fleet with every cluster's state store replaced by `url`, when given.
fn with_store(mut fleet: FleetSpec, url: Option<&str>) -> FleetSpec {
    if let Some(url) = url {
        for c in &mut fleet.clusters {
            c.state_store = url.to_string();
        }
    }
    fleet
}

/// Where a cluster stands, as far as its record tells.
#[derive(Debug, Clone, PartialEq)]
enum State {
    /// The cluster has written no rollout record.
    Missing,
    /// The record or its store cannot be read.
    Unreadable,
    Phase(Phase),
}

impl State {
    fn label(&self) -> &'static str {
        match self {
            State::Missing => "missing",
            State::Unreadable => "unreadable",
            State::Phase(p) => p.label(),
        }
    }
}

/// One cluster of the status.
#[derive(Debug, Clone)]
struct Row {
    cluster: String,
    /// The wave fleet.yaml puts the cluster in.
    wave: u32,
    state: State,
    /// Why the cluster is in that state: the record's reason, or why there is no record.
    reason: String,
    record: Option<Record>,
}

/// The rows, by wave then name.
fn rows(fleet: &FleetSpec, mut peers: BTreeMap<String, Peer>) -> Vec<Row> {
    let mut entries: Vec<_> = fleet.clusters.iter().collect();
    entries.sort_by(|a, b| (a.wave, &a.name).cmp(&(b.wave, &b.name)));
    entries
        .into_iter()
        .map(|entry| {
            let (state, reason, record) = match peers.remove(&entry.name).unwrap_or(Peer::Missing) {
                Peer::Missing => (
                    State::Missing,
                    format!(
                        "no rollout record at {}/{}",
                        entry.state_store.trim_end_matches('/'),
                        object::status_key(&entry.kops_name)
                    ),
                    None,
                ),
                Peer::Unreadable(e) => (State::Unreadable, e, None),
                Peer::Read(r) => (State::Phase(r.phase), r.reason.clone(), Some(*r)),
            };
            Row { cluster: entry.name.clone(), wave: entry.wave, state, reason, record }
        })
        .collect()
}

/// What the fleet as a whole is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Every cluster healthy on the same commit.
    Converged,
    /// A cluster halted a revision or rolled back from it.
    Halted,
    /// Anything else.
    InProgress,
}

impl Verdict {
    fn code(self) -> u8 {
        match self {
            Verdict::Converged => 0,
            Verdict::Halted => super::exit::FAILED,
            Verdict::InProgress => super::exit::CHANGES,
        }
    }
}

/// Halted wins over everything; converged needs every cluster healthy on one in-force commit.
fn verdict(rows: &[Row]) -> Verdict {
    if rows.iter().any(|r| matches!(r.state, State::Phase(Phase::Halted | Phase::RolledBack))) {
        return Verdict::Halted;
    }
    let first = rows.first().and_then(healthy_on);
    if first.is_some() && rows.iter().all(|r| healthy_on(r) == first) {
        Verdict::Converged
    } else {
        Verdict::InProgress
    }
}

/// The commit a healthy cluster holds; none for any other.
fn healthy_on(r: &Row) -> Option<&str> {
    match (&r.state, &r.record) {
        (State::Phase(Phase::Healthy), Some(rec)) => rec.in_force.as_ref().map(|h| h.sha.as_str()),
        _ => None,
    }
}

/// `main@<first 12 of the sha>`.
fn short(held: &Held) -> String {
    let reference = held.revision.split_once('@').map_or("", |(r, _)| r);
    let sha = held.sha.get(..12).unwrap_or(&held.sha);
    if reference.is_empty() { sha.to_string() } else { format!("{reference}@{sha}") }
}

fn table(rows: &[Row], verdict: Verdict) -> String {
    let header = ["CLUSTER", "WAVE", "IN FORCE", "LAST-KNOWN-GOOD", "STATE", "WHY"].map(String::from);
    let held = |h: Option<&Held>| h.map_or_else(|| "-".to_string(), short);
    let mut lines: Vec<[String; 6]> = vec![header];
    for r in rows {
        let rec = r.record.as_ref();
        lines.push([
            r.cluster.clone(),
            r.wave.to_string(),
            held(rec.and_then(|x| x.in_force.as_ref())),
            held(rec.and_then(|x| x.last_known_good.as_ref())),
            r.state.label().to_string(),
            if r.reason.is_empty() { "-".to_string() } else { r.reason.clone() },
        ]);
    }
    let mut widths = [0usize; 6];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line[..5].iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(&format!("{}  {}\n", cells.join("  "), line[5]));
    }
    out.push_str(&format!("fleet: {}\n", summary(rows, verdict)));
    out
}

fn summary(rows: &[Row], verdict: Verdict) -> String {
    let named = |pred: fn(&State) -> bool| {
        rows.iter().filter(|r| pred(&r.state)).map(|r| format!("{} {}", r.cluster, r.state.label())).collect::<Vec<_>>()
    };
    match verdict {
        Verdict::Converged => {
            let held = rows.iter().find_map(|r| r.record.as_ref().and_then(|x| x.in_force.as_ref()));
            format!("converged on {}", held.map_or_else(String::new, short))
        }
        Verdict::Halted => {
            let halted = named(|s| matches!(s, State::Phase(Phase::Halted | Phase::RolledBack)));
            format!("halted ({})", halted.join(", "))
        }
        Verdict::InProgress => {
            let pending = named(|s| *s != State::Phase(Phase::Healthy));
            if pending.is_empty() {
                "in progress (every cluster healthy, not yet on one commit)".to_string()
            } else {
                format!("in progress ({})", pending.join(", "))
            }
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status<'a> {
    clusters: Vec<ClusterStatus<'a>>,
    converged: bool,
    halted: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterStatus<'a> {
    cluster: &'a str,
    wave: u32,
    in_force: Option<&'a Held>,
    last_known_good: Option<&'a Held>,
    state: &'static str,
    reason: &'a str,
    /// Unset without a record.
    healthy: Option<bool>,
    halted: &'a [Halted],
    /// `<incarnation>/<sequence>`.
    heartbeat: Option<String>,
    /// The writer's clock at its last write.
    time: Option<DateTime<Utc>>,
}

fn json(rows: &[Row], verdict: Verdict) -> Status<'_> {
    let clusters = rows
        .iter()
        .map(|r| {
            let rec = r.record.as_ref();
            ClusterStatus {
                cluster: &r.cluster,
                wave: r.wave,
                in_force: rec.and_then(|x| x.in_force.as_ref()),
                last_known_good: rec.and_then(|x| x.last_known_good.as_ref()),
                state: r.state.label(),
                reason: &r.reason,
                healthy: rec.map(|x| x.healthy),
                halted: rec.map_or(&[], |x| x.halted.as_slice()),
                heartbeat: rec.map(Record::heartbeat_token),
                time: rec.and_then(|x| x.time),
            }
        })
        .collect();
    Status { clusters, converged: verdict == Verdict::Converged, halted: verdict == Verdict::Halted }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cluster: &str, state: State, sha: Option<&str>) -> Row {
        let in_force = sha.map(|sha| Held {
            revision: format!("main@sha1:{sha}"),
            sha: sha.to_string(),
            digest: "d".to_string(),
            epoch: sha.to_string(),
            since: DateTime::UNIX_EPOCH,
        });
        let record = match state {
            State::Phase(phase) => Some(Record { cluster: cluster.to_string(), phase, in_force, ..Record::default() }),
            _ => None,
        };
        Row { cluster: cluster.to_string(), wave: 0, state, reason: String::new(), record }
    }

    fn healthy(cluster: &str, sha: &str) -> Row {
        row(cluster, State::Phase(Phase::Healthy), Some(sha))
    }

    #[test]
    fn every_cluster_healthy_on_one_commit_is_converged() {
        let rows = [healthy("dev", "a"), healthy("staging", "a"), healthy("prod", "a")];
        assert_eq!(verdict(&rows), Verdict::Converged);
        assert_eq!(verdict(&rows).code(), 0);
    }

    #[test]
    fn healthy_on_different_commits_is_in_progress() {
        let rows = [healthy("dev", "b"), healthy("staging", "a")];
        assert_eq!(verdict(&rows), Verdict::InProgress);
        assert_eq!(verdict(&rows).code(), 2);
    }

    #[test]
    fn halted_or_rolled_back_anywhere_is_halted() {
        for phase in [Phase::Halted, Phase::RolledBack] {
            let rows = [row("dev", State::Phase(phase), Some("a")), row("prod", State::Missing, None)];
            assert_eq!(verdict(&rows), Verdict::Halted, "{phase:?}");
            assert_eq!(verdict(&rows).code(), 1);
        }
    }

    #[test]
    fn any_other_state_is_in_progress() {
        let others =
            Phase::ALL.into_iter().filter(|p| !matches!(p, Phase::Healthy | Phase::Halted | Phase::RolledBack));
        let states = others.map(State::Phase).chain([State::Missing, State::Unreadable]);
        for state in states {
            let rows = [healthy("dev", "a"), row("prod", state.clone(), Some("a"))];
            assert_eq!(verdict(&rows), Verdict::InProgress, "{state:?}");
        }
    }

    #[test]
    fn healthy_without_a_revision_in_force_is_not_converged() {
        assert_eq!(verdict(&[row("dev", State::Phase(Phase::Healthy), None)]), Verdict::InProgress);
    }

    #[test]
    fn short_revision_keeps_the_reference_and_twelve_hex_digits() {
        let r = healthy("dev", "0123456789abcdef0123");
        assert_eq!(short(r.record.unwrap().in_force.as_ref().unwrap()), "main@0123456789ab");
    }
}
