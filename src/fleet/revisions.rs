//! Revisions the gate may pick, read from the follower's mirror and judged for this cluster
//! (signature and validation), each once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::gate::Lineage;
use crate::gitops::GitSource;
use crate::gitops::follow::{Accepted, judge};

/// A revision judged good for this cluster, with its policy digest there.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub accepted: Arc<Accepted>,
    pub digest: String,
}

impl Loaded {
    pub fn new(accepted: Arc<Accepted>) -> Loaded {
        let digest = super::digest::of(&accepted.policy);
        Loaded { accepted, digest }
    }
}

/// Where revisions come from.
pub trait Revisions: Send + Sync {
    /// The revision `sha` judged for this cluster, or why it cannot be put in force here.
    fn load(&self, sha: &str) -> impl Future<Output = Result<Loaded, String>> + Send;
    /// Which of `shas` descend from which.
    fn lineage(&self, shas: Vec<String>) -> impl Future<Output = Lineage> + Send;
    /// The full sha of a commit id written in fleet.yaml.
    fn resolve(&self, id: &str) -> Option<String>;
    /// A revision the follower accepted already.
    fn remember(&self, accepted: &Arc<Accepted>);
}

/// Revisions from a Git source's mirror.
#[derive(Clone)]
pub struct GitRevisions {
    source: GitSource,
    cluster: String,
    cache: Arc<Mutex<HashMap<String, Result<Loaded, String>>>>,
    /// Whether the second commit descends from the first: never changes, so asked once.
    descends: Arc<Mutex<HashMap<(String, String), bool>>>,
}

impl GitRevisions {
    pub fn new(source: GitSource, cluster: &str) -> GitRevisions {
        GitRevisions { source, cluster: cluster.to_string(), cache: Arc::default(), descends: Arc::default() }
    }

    pub fn source(&self) -> &GitSource {
        &self.source
    }

    fn cached(&self, sha: &str) -> Option<Result<Loaded, String>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(sha).cloned()
    }

    fn keep(&self, sha: &str, value: Result<Loaded, String>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 256 {
            cache.clear();
        }
        cache.insert(sha.to_string(), value);
    }
}

impl Revisions for GitRevisions {
    async fn load(&self, sha: &str) -> Result<Loaded, String> {
        if let Some(hit) = self.cached(sha) {
            return hit;
        }
        let (source, id) = (self.source.clone(), sha.to_string());
        let fetched = tokio::task::spawn_blocking(move || source.load(&id))
            .await
            .map_err(|e| format!("loading {sha}: {e}"))?
            .map_err(|e| e.to_string())?;
        let judged = judge(&fetched, &self.cluster)
            .map(|policy| {
                Loaded::new(Arc::new(Accepted {
                    revision: fetched.revision.clone(),
                    snapshot: fetched.snapshot,
                    policy: Arc::new(policy),
                    commit: fetched.commit,
                }))
            })
            .map_err(|errors| errors.join("; "));
        self.keep(sha, judged.clone());
        judged
    }

    async fn lineage(&self, shas: Vec<String>) -> Lineage {
        let pairs: Vec<(String, String)> = shas
            .iter()
            .flat_map(|a| shas.iter().filter(move |b| *b != a).map(move |b| (a.clone(), b.clone())))
            .collect();
        let missing: Vec<(String, String)> = {
            let known = self.descends.lock().unwrap_or_else(|p| p.into_inner());
            pairs.iter().filter(|p| !known.contains_key(*p)).cloned().collect()
        };
        if !missing.is_empty() {
            let (source, asked) = (self.source.clone(), missing.clone());
            let answers = tokio::task::spawn_blocking(move || source.descends(&asked)).await.unwrap_or_default();
            let loaded = |sha: &str| self.cached(sha).is_some_and(|r| r.is_ok());
            let mut known = self.descends.lock().unwrap_or_else(|p| p.into_inner());
            if known.len() > 65_536 {
                known.clear();
            }
            for (p, d) in missing.into_iter().zip(answers) {
                // A "no" about a commit not loaded from the mirror yet is asked again next time.
                if d || (loaded(&p.0) && loaded(&p.1)) {
                    known.insert(p, d);
                }
            }
        }
        let known = self.descends.lock().unwrap_or_else(|p| p.into_inner());
        let mut l = Lineage::default();
        for p in pairs.iter().filter(|p| known.get(*p) == Some(&true)) {
            l.add(&p.0, &p.1);
        }
        l
    }

    fn resolve(&self, id: &str) -> Option<String> {
        self.source.resolve_id(id)
    }

    fn remember(&self, accepted: &Arc<Accepted>) {
        if self.cached(&accepted.revision.sha).is_none() {
            self.keep(&accepted.revision.sha.clone(), Ok(Loaded::new(accepted.clone())));
        }
    }
}
