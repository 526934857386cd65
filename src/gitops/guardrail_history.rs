//! `capstan audit --guardrails`: for each guardrail relaxation and exception in force at HEAD,
//! the commit that added it (the oldest commit of the unbroken run, back from HEAD, in which it
//! holds with the same rule, object, effect and reason), with its author and date.
//!
//! ```text
//! HEAD ─validate─► waivers ──for each: step to a parent that still has it──► the commit that added it
//! ```
//!
//! At a merge the walk follows the first parent that has the waiver, so a relaxation made on a
//! branch is attributed to the branch's commit, not to the merge.

use std::collections::HashMap;
use std::path::Path;

use git2::{Oid, Repository};
use serde::Serialize;

use super::audit::open;
use super::source::snapshot_at;
use crate::policy::guardrail_waivers::Waiver;

/// A waiver in force and the commit that added it.
#[derive(Debug, Clone, Serialize)]
pub struct Added {
    #[serde(flatten)]
    pub waiver: Waiver,
    pub sha: String,
    pub author: String,
    pub time: String,
    pub subject: String,
}

/// The waivers of the config folder at each commit, computed once per folder tree.
struct History<'r> {
    repo: &'r Repository,
    rel: String,
    cluster: Option<String>,
    by_tree: HashMap<Option<Oid>, Vec<Waiver>>,
}

impl History<'_> {
    fn tree(&self, commit: Oid) -> Option<Oid> {
        let tree = self.repo.find_commit(commit).ok()?.tree().ok()?;
        if self.rel.is_empty() { Some(tree.id()) } else { tree.get_path(Path::new(&self.rel)).ok().map(|e| e.id()) }
    }

    fn waivers(&mut self, commit: Oid) -> Result<&[Waiver], String> {
        let tree = self.tree(commit);
        if !self.by_tree.contains_key(&tree) {
            let found = match tree {
                None => Vec::new(),
                Some(_) => {
                    let snapshot = snapshot_at(self.repo, commit, &self.rel).map_err(|e| e.to_string())?;
                    // A cluster not listed yet at this commit has no waivers there.
                    crate::policy::validate(&snapshot, self.cluster.as_deref()).map(|v| v.waivers).unwrap_or_default()
                }
            };
            self.by_tree.insert(tree, found);
        }
        Ok(&self.by_tree[&tree])
    }

    fn holds(&mut self, commit: Oid, w: &Waiver) -> Result<bool, String> {
        Ok(self.waivers(commit)?.iter().any(|o| o.key() == w.key()))
    }
}

/// Each guardrail relaxation and exception in force at HEAD of the config repository at `path`
/// (for `cluster`, or for every cluster), with the commit that added it.
pub fn added(path: &Path, cluster: Option<&str>) -> Result<Vec<Added>, String> {
    let (repo, rel) = open(path)?;
    let git = |e: git2::Error| e.message().to_string();
    let head = repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .map_err(|e| format!("the repository has no commits: {}", e.message()))?
        .id();
    let mut history = History { repo: &repo, rel, cluster: cluster.map(str::to_string), by_tree: HashMap::new() };
    let now = history.waivers(head)?.to_vec();
    let mut out = Vec::new();
    for w in now {
        let mut at = head;
        'back: loop {
            let parents: Vec<Oid> = repo.find_commit(at).map_err(git)?.parent_ids().collect();
            for p in parents {
                if history.holds(p, &w)? {
                    at = p;
                    continue 'back;
                }
            }
            break;
        }
        let commit = repo.find_commit(at).map_err(git)?;
        let author = commit.author();
        let time = chrono::DateTime::from_timestamp(commit.time().seconds(), 0).unwrap_or_default();
        out.push(Added {
            waiver: w,
            sha: at.to_string(),
            author: format!("{} <{}>", author.name().unwrap_or("?"), author.email().unwrap_or("?")),
            time: time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            subject: commit.summary().ok().flatten().unwrap_or_default().to_string(),
        });
    }
    Ok(out)
}

/// The list as text: each waiver, then the commit that added it.
pub fn text(added: &[Added]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for a in added {
        let _ = writeln!(out, "{}", a.waiver);
        let _ = writeln!(out, "    added in {} {} {}\n    {}", &a.sha[..12], a.time, a.author, a.subject);
    }
    if added.is_empty() {
        out.push_str("no guardrail is relaxed or excepted at HEAD\n");
    }
    out
}
