//! `capstan audit`: the commits that changed a cluster's effective policy, and the field-level
//! changes each made to each object (`NodePool/default spec.limits.cpu: 100 → 200`). Read from
//! Git's object database; the config repository may be a folder inside a larger repository.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use git2::{Oid, Repository, Sort};
use serde::Serialize;
use serde_json::Value;

use super::source::snapshot_at;
use crate::kops::decisions::Decision;
use crate::kops::diff::{self, FieldChange};
use crate::policy::{self, EffectivePolicy};

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
    /// Decisions this revision caused (from the state store), when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterChanges {
    pub cluster: String,
    pub objects: Vec<ObjectChange>,
    /// Errors `validate` finds at this commit: such a revision is never put in force.
    pub errors: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectChange {
    pub object: String,
    /// `created`, `changed` or `deleted`.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// The objects of each cluster at one commit, and how many errors validation found.
type Objects = BTreeMap<String, (BTreeMap<String, Value>, usize)>;

fn objects(policy: &EffectivePolicy) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut add = |kind: &str, name: &str, v: Value| {
        out.insert(format!("{kind}/{name}"), v);
    };
    for p in &policy.node_pools {
        add("NodePool", &p.value.metadata.name, serde_json::to_value(&p.value).unwrap_or_default());
    }
    for c in &policy.node_classes {
        add("EC2NodeClass", &c.value.metadata.name, serde_json::to_value(&c.value).unwrap_or_default());
    }
    for ig in &policy.instance_groups {
        add("InstanceGroup", &ig.value.metadata.name, serde_json::to_value(&ig.value).unwrap_or_default());
    }
    if let Some(cp) = &policy.cluster_policy {
        add("ClusterPolicy", &cp.value.metadata.name, serde_json::to_value(&cp.value).unwrap_or_default());
    }
    out
}

fn at_commit(repo: &Repository, commit: Oid, path: &str, cluster: Option<&str>) -> Result<Objects, String> {
    let snapshot = snapshot_at(repo, commit, path).map_err(|e| e.to_string())?;
    let mut out = Objects::new();
    let Ok(v) = policy::validate(&snapshot, cluster) else { return Ok(out) }; // the cluster is not listed yet
    let errors = v.diagnostics.errors();
    for p in &v.policies {
        if !p.cluster.is_empty() {
            out.insert(p.cluster.clone(), (objects(p), errors));
        }
    }
    Ok(out)
}

fn compare(old: &BTreeMap<String, Value>, new: &BTreeMap<String, Value>, only: Option<&str>) -> Vec<ObjectChange> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = Vec::new();
    for name in names {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let change = match (old.get(name), new.get(name)) {
            (None, Some(_)) => ObjectChange { object: name.clone(), action: "created", fields: Vec::new() },
            (Some(_), None) => ObjectChange { object: name.clone(), action: "deleted", fields: Vec::new() },
            (Some(a), Some(b)) if a != b => {
                ObjectChange { object: name.clone(), action: "changed", fields: diff::diff(b, Some(a), Some(a)) }
            }
            _ => continue,
        };
        out.push(change);
    }
    out
}

/// The folder `path` as a path inside its repository, with the repository.
fn open(path: &Path) -> Result<(Repository, String), String> {
    let repo = Repository::discover(path)
        .map_err(|e| format!("{} is not inside a Git repository: {}", path.display(), e.message()))?;
    let root = repo.workdir().unwrap_or(repo.path()).canonicalize().map_err(|e| e.to_string())?;
    let here = path.canonicalize().map_err(|e| format!("{}: {e}", path.display()))?;
    let rel = here.strip_prefix(&root).map_err(|_| format!("{} is outside its repository", path.display()))?;
    let rel = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
    Ok((repo, rel))
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
    let mut cache: HashMap<Oid, Objects> = HashMap::new();
    let mut load = |commit: Oid, tree: Option<Oid>| -> Result<Objects, String> {
        let Some(tree) = tree else { return Ok(Objects::new()) };
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
        let (tree, parent_tree) = (tree_of(oid), parent.and_then(tree_of));
        if tree == parent_tree {
            continue;
        }
        let new = load(oid, tree)?;
        let old = match parent {
            Some(p) => load(p, parent_tree)?,
            None => Objects::new(),
        };
        let empty = (BTreeMap::new(), 0);
        let clusters: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        let mut changes = Vec::new();
        for c in clusters {
            let (before, after) = (old.get(c).unwrap_or(&empty), new.get(c).unwrap_or(&empty));
            let objects = compare(&before.0, &after.0, options.object.as_deref());
            if !objects.is_empty() {
                changes.push(ClusterChanges { cluster: c.clone(), objects, errors: after.1 });
            }
        }
        if changes.is_empty() {
            continue;
        }
        let author = commit.author();
        let time = chrono::DateTime::from_timestamp(commit.time().seconds(), 0).unwrap_or_default();
        entries.push(Entry {
            sha: oid.to_string(),
            author: format!("{} <{}>", author.name().unwrap_or("?"), author.email().unwrap_or("?")),
            time: time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            subject: commit.summary().ok().flatten().unwrap_or_default().to_string(),
            clusters: changes,
            decisions: Vec::new(),
        });
    }
    Ok(entries)
}

fn show(v: &Option<Value>) -> String {
    match v {
        None => "(absent)".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The history as text.
pub fn text(entries: &[Entry]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for e in entries {
        let _ = writeln!(out, "{} {} {}\n    {}", &e.sha[..12], e.time, e.author, e.subject);
        for c in &e.clusters {
            let invalid = if c.errors > 0 {
                format!(" (invalid here: {} error(s), never put in force)", c.errors)
            } else {
                String::new()
            };
            let _ = writeln!(out, "  cluster {}{invalid}", c.cluster);
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
