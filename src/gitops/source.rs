//! Where policy comes from: a Git repository followed by branch, tag or pinned commit, fetched
//! into a local bare mirror with libgit2 (over [`super::transport`]) and read straight from the
//! object database (no working tree to go stale). Fast-forward only: a tip that does not descend from the last one seen is
//! refused unless the configuration allows rewrites.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use git2::{FetchOptions, Oid, Repository};

use super::auth::{self, Auth};
use super::signature::{self, Trust, Verdict};
use super::transport;
use super::url::RepoUrl;
use super::{Revision, SourceError};
use crate::policy::Snapshot;
use crate::policy::snapshot::is_yaml;

/// What a source follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Branch(String),
    Tag(String),
    Commit(String),
}

impl Reference {
    pub fn name(&self) -> &str {
        match self {
            Reference::Branch(b) => b,
            Reference::Tag(t) => t,
            Reference::Commit(_) => "commit",
        }
    }
}

#[derive(Clone)]
pub struct SourceConfig {
    /// A path or a URL in any form Git accepts (credentials in it are used, never shown).
    pub url: RepoUrl,
    pub reference: Reference,
    /// The folder inside the repository that holds `fleet.yaml` (empty: the root).
    pub path: String,
    pub auth: Auth,
    /// Accept a tip that is not a descendant of the last one (a force-push).
    pub allow_rewrite: bool,
    /// Require the tip commit to be signed by a trusted key.
    pub trust: Option<Trust>,
    /// The local mirror (a bare repository capstan owns).
    pub mirror: PathBuf,
}

impl SourceConfig {
    /// Branch `main` of a repository, with no credentials, rewrites refused and no signature
    /// required.
    pub fn main_branch(url: &str, mirror: PathBuf) -> SourceConfig {
        SourceConfig {
            url: RepoUrl::new(url),
            reference: Reference::Branch("main".into()),
            path: String::new(),
            auth: Auth::default(),
            allow_rewrite: false,
            trust: None,
            mirror,
        }
    }
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("url", &self.url)
            .field("reference", &self.reference)
            .field("path", &self.path)
            .field("auth", &self.auth)
            .field("allow_rewrite", &self.allow_rewrite)
            .field("trust", &self.trust.as_ref().map(|t| t.signers.len()))
            .field("mirror", &self.mirror)
            .finish()
    }
}

/// The commit a revision points at, for status and audit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommitInfo {
    pub sha: String,
    pub author: String,
    pub time: i64,
    pub subject: String,
}

/// A fetched revision, not yet judged.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub revision: Revision,
    pub commit: CommitInfo,
    pub snapshot: Snapshot,
    /// The tip's signature, when the source requires one.
    pub signature: Option<Verdict>,
}

/// A source of policy revisions.
pub trait ConfigSource: Send + Sync {
    /// Fetches and returns the newest revision the source follows.
    fn fetch(&self) -> impl std::future::Future<Output = Result<Fetched, SourceError>> + Send;
}

/// A Git repository through libgit2.
#[derive(Debug, Clone)]
pub struct GitSource {
    config: Arc<SourceConfig>,
    /// The last tip seen, for the fast-forward check.
    last: Arc<Mutex<Option<Oid>>>,
}

impl GitSource {
    /// `known`: the last revision accepted before (after a restart), for the fast-forward check.
    pub fn new(config: SourceConfig, known: Option<&str>) -> GitSource {
        let last = known.and_then(|s| Oid::from_str(s).ok());
        GitSource { config: Arc::new(config), last: Arc::new(Mutex::new(last)) }
    }

    pub fn config(&self) -> &SourceConfig {
        &self.config
    }

    /// The last tip seen: the base a new tip must descend from.
    pub fn base(&self) -> Option<String> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).map(|o| o.to_string())
    }

    /// Sets the fast-forward base (read back after a restart).
    pub fn set_base(&self, sha: Option<&str>) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = sha.and_then(|s| Oid::from_str(s).ok());
    }

    /// Fetches the tip without judging it or moving the fast-forward base: for reading where
    /// the rest of the daemon's state is kept before the first real fetch.
    pub async fn peek(&self) -> Result<Fetched, SourceError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let repo = this.fetch_into_mirror()?;
            let tip = resolve(&repo, &this.config.reference, &this.config.url)?;
            this.read(&repo, tip)
        })
        .await
        .unwrap_or_else(|e| Err(SourceError::Git(format!("fetch task failed: {e}"))))
    }

    /// The tip the mirror fetched last, without going to the network.
    pub fn local_tip(&self) -> Result<Fetched, SourceError> {
        let repo = open_mirror(&self.config.mirror)?;
        let tip = resolve(&repo, &self.config.reference, &self.config.url)?;
        self.read(&repo, tip)
    }

    /// A commit already in the mirror, read as a fetched revision (signature checked when
    /// required).
    pub fn load(&self, sha: &str) -> Result<Fetched, SourceError> {
        let repo = open_mirror(&self.config.mirror)?;
        let oid = Oid::from_str(sha).map_err(|_| SourceError::Git(format!("`{sha}` is not a commit id")))?;
        self.read(&repo, oid)
    }

    /// The full sha of a commit id (full or abbreviated) in the mirror.
    pub fn resolve_id(&self, id: &str) -> Option<String> {
        let repo = open_mirror(&self.config.mirror).ok()?;
        let object = repo.revparse_single(id).ok()?;
        object.peel_to_commit().ok().map(|c| c.id().to_string())
    }

    /// For each (ancestor, descendant) pair, whether the second descends from the first; false
    /// for a commit the mirror does not have.
    pub fn descends(&self, pairs: &[(String, String)]) -> Vec<bool> {
        let Ok(repo) = open_mirror(&self.config.mirror) else { return vec![false; pairs.len()] };
        let oid = |s: &str| Oid::from_str(s).ok();
        pairs
            .iter()
            .map(|(a, b)| match (oid(a), oid(b)) {
                (Some(a), Some(b)) => repo.graph_descendant_of(b, a).unwrap_or(false),
                _ => false,
            })
            .collect()
    }

    fn fetch_into_mirror(&self) -> Result<Repository, SourceError> {
        let c = &self.config;
        let (url, from_url) = c.url.for_fetch();
        let repo = open_mirror(&c.mirror)?;
        let auth = c.auth.clone().or(from_url);
        let mut options = FetchOptions::new();
        // FETCH_HEAD and the default reflog message would keep the URL, query token and all, in
        // the mirror; nothing reads them.
        options.update_fetchhead(false);
        let refspecs = match &c.reference {
            Reference::Branch(b) => vec![format!("+refs/heads/{b}:refs/remotes/origin/{b}")],
            Reference::Tag(t) => vec![format!("+refs/tags/{t}:refs/tags/{t}")],
            Reference::Commit(_) => vec!["+refs/heads/*:refs/remotes/origin/*".to_string()],
        };
        {
            let mut remote = repo
                .remote_anonymous(&url)
                .map_err(|e| SourceError::Url { url: c.url.clone(), message: c.url.scrub(e.message()) })?;
            transport::with(&auth, || remote.fetch(&refspecs, Some(&mut options), Some("fetch")))
                .map_err(|e| auth::fetch_error(&c.url, &auth, &e))?;
        }
        Ok(repo)
    }

    fn read(&self, repo: &Repository, tip: Oid) -> Result<Fetched, SourceError> {
        let c = &self.config;
        let commit = repo.find_commit(tip).map_err(|e| SourceError::Git(e.message().to_string()))?;
        let info = CommitInfo {
            sha: tip.to_string(),
            author: format!("{} <{}>", commit.author().name().unwrap_or("?"), commit.author().email().unwrap_or("?")),
            time: commit.time().seconds(),
            subject: commit.summary().ok().flatten().unwrap_or_default().to_string(),
        };
        let snapshot = snapshot_at(repo, tip, &c.path)?;
        let signature = c.trust.as_ref().map(|t| signature::verify(repo, tip, t));
        let revision = Revision { reference: c.reference.name().to_string(), sha: tip.to_string() };
        Ok(Fetched { revision, commit: info, snapshot, signature })
    }

    fn fetch_blocking(&self) -> Result<Fetched, SourceError> {
        let repo = self.fetch_into_mirror()?;
        let tip = resolve(&repo, &self.config.reference, &self.config.url)?;
        self.check_fast_forward(&repo, tip)?;
        self.read(&repo, tip)
    }

    fn check_fast_forward(&self, repo: &Repository, tip: Oid) -> Result<(), SourceError> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(prev) = *last
            && prev != tip
            && !self.config.allow_rewrite
            && !matches!(self.config.reference, Reference::Commit(_))
        {
            let descends = repo.graph_descendant_of(tip, prev).unwrap_or(false);
            if !descends {
                return Err(SourceError::NotFastForward { from: prev.to_string(), to: tip.to_string() });
            }
        }
        *last = Some(tip);
        Ok(())
    }
}

impl ConfigSource for GitSource {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.fetch_blocking())
            .await
            .unwrap_or_else(|e| Err(SourceError::Git(format!("fetch task failed: {e}"))))
    }
}

fn open_mirror(path: &Path) -> Result<Repository, SourceError> {
    let opened = if path.join("HEAD").exists() { Repository::open_bare(path) } else { Repository::init_bare(path) };
    opened.map_err(|e| SourceError::Git(format!("local mirror {}: {}", path.display(), e.message())))
}

fn resolve(repo: &Repository, reference: &Reference, url: &RepoUrl) -> Result<Oid, SourceError> {
    let name = match reference {
        Reference::Branch(b) => format!("refs/remotes/origin/{b}"),
        Reference::Tag(t) => format!("refs/tags/{t}"),
        Reference::Commit(sha) => {
            let oid = Oid::from_str(sha).map_err(|_| SourceError::Reference {
                url: url.clone(),
                message: format!("`{sha}` is not a commit id; write the full 40-character sha"),
            })?;
            return repo.find_commit(oid).map(|c| c.id()).map_err(|_| SourceError::Reference {
                url: url.clone(),
                message: format!("commit {sha} is not on any branch of the repository; check the pinned commit"),
            });
        }
    };
    let found = repo.find_reference(&name).and_then(|r| r.peel_to_commit());
    found.map(|c| c.id()).map_err(|_| SourceError::Reference {
        url: url.clone(),
        message: format!("{} `{}` not found; check the name and that it was pushed", kind(reference), reference.name()),
    })
}

fn kind(reference: &Reference) -> &'static str {
    match reference {
        Reference::Branch(_) => "branch",
        Reference::Tag(_) => "tag",
        Reference::Commit(_) => "commit",
    }
}

/// The YAML files under `path` in a commit's tree, as a snapshot relative to `path`.
pub fn snapshot_at(repo: &Repository, commit: Oid, path: &str) -> Result<Snapshot, SourceError> {
    let git = |e: git2::Error| SourceError::Git(e.message().to_string());
    let tree = repo.find_commit(commit).and_then(|c| c.tree()).map_err(git)?;
    let tree = if path.is_empty() {
        tree
    } else {
        match tree.get_path(Path::new(path)) {
            Ok(entry) => repo.find_tree(entry.id()).map_err(git)?,
            Err(_) => return Ok(Snapshot::default()),
        }
    };
    let mut snapshot = Snapshot::default();
    let mut failure = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        let name = entry.name().unwrap_or_default();
        if name.starts_with('.') {
            return git2::TreeWalkResult::Skip;
        }
        if entry.kind() == Some(git2::ObjectType::Blob) && is_yaml(name) {
            match repo.find_blob(entry.id()) {
                Ok(blob) => snapshot.insert(format!("{dir}{name}"), blob.content()),
                Err(e) => failure = Some(e),
            }
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(git)?;
    match failure {
        Some(e) => Err(git(e)),
        None => Ok(snapshot),
    }
}
