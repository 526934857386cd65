//! `capstan audit`: the commits that changed a cluster's effective policy, and the field-level
//! changes each made to each object (`NodePool/default spec.limits.cpu: 100 → 200`). Read from
//! Git's object database; the config repository may be a folder inside a larger repository.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use git2::{Oid, Repository, Sort};
use serde::Serialize;

use super::diff::{self, Loaded, ObjectChange, show};
use super::source::snapshot_at;
use crate::kops::decisions::Decision;

#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    pub cluster: Option<String>,
    /// Unix seconds: only commits at or after.
    pub since: Option<i64>,
    /// `Kind/name`: only changes to this object.
    pub object: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub sha: String,
    pub author: String,
    pub time: String,
    pub subject: String,
    pub clusters: Vec<ClusterChanges>,
    /// The revision did not load (`file:line:col: message` of its first error): it is never put
    /// in force, lists no changes, and the next revision that loads is compared with the last
    /// one before it that did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Decisions this revision caused (from the state store), when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterChanges {
    pub cluster: String,
    pub objects: Vec<ObjectChange>,
}

fn at_commit(repo: &Repository, commit: Oid, path: &str, cluster: Option<&str>) -> Result<Loaded, String> {
    let snapshot = snapshot_at(repo, commit, path).map_err(|e| e.to_string())?;
    // An unknown cluster is one not listed yet at this commit.
    Ok(diff::load(&snapshot, cluster).unwrap_or_else(|_| Loaded::Clusters(BTreeMap::new())))
}

/// The folder `path` as a path inside its repository, with the repository.
pub(crate) fn open(path: &Path) -> Result<(Repository, String), String> {
    let repo = Repository::discover(path)
        .map_err(|e| format!("{} is not inside a Git repository: {}", path.display(), e.message()))?;
    let root = repo.workdir().unwrap_or(repo.path()).canonicalize().map_err(|e| e.to_string())?;
    let here = path.canonicalize().map_err(|e| format!("{}: {e}", path.display()))?;
    let rel = here.strip_prefix(&root).map_err(|_| format!("{} is outside its repository", path.display()))?;
    let rel = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
    Ok((repo, rel))
}

fn changes(
    old: &BTreeMap<String, diff::Objects>,
    new: &BTreeMap<String, diff::Objects>,
    only: Option<&str>,
) -> Vec<ClusterChanges> {
    let empty = diff::Objects::new();
    let clusters: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = Vec::new();
    for c in clusters {
        let objects = diff::compare(old.get(c).unwrap_or(&empty), new.get(c).unwrap_or(&empty), only);
        if !objects.is_empty() {
            out.push(ClusterChanges { cluster: c.clone(), objects });
        }
    }
    out
}

/// The history of the config repository at `path`, newest first.
pub fn audit(path: &Path, options: &AuditOptions) -> Result<Vec<Entry>, String> {
    let (repo, rel) = open(path)?;
    let git = |e: git2::Error| e.message().to_string();
    let mut walk = repo.revwalk().map_err(git)?;
    walk.push_head().map_err(|e| format!("the repository has no commits: {}", e.message()))?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME).map_err(git)?;
    let tree_of = |oid: Oid| -> Option<Oid> {
        let tree = repo.find_commit(oid).ok()?.tree().ok()?;
        if rel.is_empty() { Some(tree.id()) } else { tree.get_path(Path::new(&rel)).ok().map(|e| e.id()) }
    };
    let mut cache: HashMap<Oid, Loaded> = HashMap::new();
    let mut load = |commit: Oid| -> Result<Loaded, String> {
        let Some(tree) = tree_of(commit) else { return Ok(Loaded::Clusters(BTreeMap::new())) };
        if let Some(o) = cache.get(&tree) {
            return Ok(o.clone());
        }
        let o = at_commit(&repo, commit, &rel, options.cluster.as_deref())?;
        cache.insert(tree, o.clone());
        Ok(o)
    };
    let mut entries = Vec::new();
    for oid in walk {
        let oid = oid.map_err(git)?;
        let commit = repo.find_commit(oid).map_err(git)?;
        if options.since.is_some_and(|s| commit.time().seconds() < s) {
            continue;
        }
        let parent = commit.parent_id(0).ok();
        if tree_of(oid) == parent.and_then(tree_of) {
            continue;
        }
        let (clusters, error) = match load(oid)? {
            Loaded::Failed(e) => (Vec::new(), Some(e)),
            Loaded::Clusters(new) => {
                // Compared with the last first-parent ancestor that loaded.
                let mut old = BTreeMap::new();
                let mut at = parent;
                while let Some(p) = at {
                    if let Loaded::Clusters(o) = load(p)? {
                        old = o;
                        break;
                    }
                    at = repo.find_commit(p).map_err(git)?.parent_id(0).ok();
                }
                (changes(&old, &new, options.object.as_deref()), None)
            }
        };
        if clusters.is_empty() && error.is_none() {
            continue;
        }
        let author = commit.author();
        let time = chrono::DateTime::from_timestamp(commit.time().seconds(), 0).unwrap_or_default();
        entries.push(Entry {
            sha: oid.to_string(),
            author: format!("{} <{}>", author.name().unwrap_or("?"), author.email().unwrap_or("?")),
            time: time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            subject: commit.summary().ok().flatten().unwrap_or_default().to_string(),
            clusters,
            error,
            decisions: Vec::new(),
        });
    }
    Ok(entries)
}

/// The history as text.
pub fn text(entries: &[Entry]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for e in entries {
        let _ = writeln!(out, "{} {} {}\n    {}", &e.sha[..12], e.time, e.author, e.subject);
        if let Some(error) = &e.error {
            let _ = writeln!(out, "  did not load: {error} (never put in force)");
        }
        for c in &e.clusters {
            let _ = writeln!(out, "  cluster {}", c.cluster);
            for o in &c.objects {
                match o.action {
                    "changed" => {
                        for f in &o.fields {
                            let _ =
                                writeln!(out, "    {} {}: {} → {}", o.object, f.path, show(&f.before), show(&f.after));
                        }
                    }
                    action => {
                        let _ = writeln!(out, "    {} {action}", o.object);
                    }
                }
            }
        }
        for d in &e.decisions {
            let _ = writeln!(out, "    decision {} {} {} ({})", d.time, d.action, d.object, d.reason);
        }
    }
    if entries.is_empty() {
        out.push_str("no commit changed the effective policy\n");
    }
    out
}
