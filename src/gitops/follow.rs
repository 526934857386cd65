//! The gate and the follow loop. Each fetched revision is judged — signature (when required),
//! then `validate` for this cluster — and only a revision that passes replaces the one in force.
//! A rejected revision is recorded with its errors; the last-known-good revision stays.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, watch};

use super::metrics::{GitMetrics, ReasonLabels, RevisionLabels};
use super::signature::Verdict;
use super::{ConfigSource, Fetched, Revision, SourceError};
use crate::policy::{self, EffectivePolicy, Snapshot};

/// A revision in force.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub revision: Revision,
    pub snapshot: Snapshot,
    pub policy: Arc<EffectivePolicy>,
    pub commit: super::source::CommitInfo,
}

/// What the follower reports: in status, logs and metrics.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GitStatus {
    /// The revision in force (the last known good).
    pub applied_revision: Option<Revision>,
    /// The newest revision seen, accepted or not.
    pub last_revision: Option<Revision>,
    /// Why the newest revision was not put in force, when it was not.
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub last_errors: Vec<String>,
    /// Why the last fetch failed, until one succeeds (the repository unreachable, credentials
    /// refused): nothing new can be judged meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetch_error: Option<String>,
    pub fetches: u64,
}

/// Judges a fetched revision for `cluster`: the policy to put in force, or the reasons not to.
pub fn judge(fetched: &Fetched, cluster: &str) -> Result<EffectivePolicy, Vec<String>> {
    match &fetched.signature {
        None | Some(Verdict::Trusted { .. }) => {}
        Some(Verdict::Unsigned) => {
            return Err(vec!["the commit is not signed, and signed commits are required".into()]);
        }
        Some(Verdict::Untrusted { reason }) => return Err(vec![format!("signature refused: {reason}")]),
    }
    let v = policy::validate(&fetched.snapshot, Some(cluster)).map_err(|e| vec![e.to_string()])?;
    if v.diagnostics.has_errors() {
        return Err(v.diagnostics.sorted().iter().filter(|d| d.is_error()).map(ToString::to_string).collect());
    }
    Ok(v.policies.into_iter().next().expect("one cluster was asked for"))
}

/// The shortest poll interval: a zero poll would fetch in a busy loop.
pub const MIN_POLL: Duration = Duration::from_millis(200);

pub struct Follower<S> {
    source: S,
    cluster: String,
    status: watch::Sender<GitStatus>,
    /// The newest accepted revision, on its own channel: shared, never copied per pass.
    accepted: watch::Sender<Option<Arc<Accepted>>>,
    /// Wakes the loop at once (webhook, file watch).
    pub trigger: Arc<Notify>,
    metrics: GitMetrics,
}

impl<S: ConfigSource> Follower<S> {
    pub fn new(source: S, cluster: &str) -> Follower<S> {
        Follower {
            source,
            cluster: cluster.to_string(),
            status: watch::Sender::new(GitStatus::default()),
            accepted: watch::Sender::new(None),
            trigger: Arc::new(Notify::new()),
            metrics: GitMetrics::default(),
        }
    }

    /// Reports into these metric families (see [`GitMetrics::register`]).
    pub fn with_metrics(mut self, metrics: GitMetrics) -> Follower<S> {
        self.metrics = metrics;
        self
    }

    pub fn subscribe(&self) -> watch::Receiver<GitStatus> {
        self.status.subscribe()
    }

    /// The newest accepted revision, as it changes.
    pub fn policy(&self) -> watch::Receiver<Option<Arc<Accepted>>> {
        self.accepted.subscribe()
    }

    /// The newest accepted revision.
    pub fn accepted(&self) -> Option<Arc<Accepted>> {
        self.accepted.borrow().clone()
    }

    pub fn status(&self) -> GitStatus {
        self.status.borrow().clone()
    }

    /// One fetch and judgement. Returns whether a new revision was put in force.
    pub async fn sync_once(&self) -> bool {
        let fetched = self.source.fetch().await;
        self.metrics.fetches.inc();
        let mut changed = false;
        let mut replaced = None;
        self.status.send_modify(|st| {
            st.fetches += 1;
            replaced = st.applied_revision.clone();
            match fetched {
                Err(e) => {
                    self.metrics.failures.get_or_create(&ReasonLabels { reason: "fetch" }).inc();
                    record_failure(st, &e)
                }
                Ok(f) => {
                    st.fetch_error = None;
                    changed = self.consider(st, f)
                }
            }
        });
        if changed {
            if let Some(old) = replaced {
                self.metrics.applied.get_or_create(&RevisionLabels { revision: old.to_string() }).set(0);
            }
            if let Some(new) = self.status.borrow().applied_revision.as_ref() {
                self.metrics.applied.get_or_create(&RevisionLabels { revision: new.to_string() }).set(1);
            }
        }
        changed
    }

    fn consider(&self, st: &mut GitStatus, fetched: Fetched) -> bool {
        let revision = fetched.revision.clone();
        let seen = st.last_revision.replace(revision.clone());
        if st.applied_revision.as_ref() == Some(&revision) {
            st.last_error = None;
            st.last_errors.clear();
            return false;
        }
        if seen.as_ref() == Some(&revision) && !st.last_errors.is_empty() {
            return false; // already judged and rejected; its errors stay on record
        }
        match judge(&fetched, &self.cluster) {
            Ok(policy) => {
                tracing::info!(revision = %revision, subject = %fetched.commit.subject, "policy revision in force");
                st.applied_revision = Some(revision.clone());
                st.last_error = None;
                st.last_errors.clear();
                self.accepted.send_replace(Some(Arc::new(Accepted {
                    revision,
                    snapshot: fetched.snapshot,
                    policy: Arc::new(policy),
                    commit: fetched.commit,
                })));
                true
            }
            Err(errors) => {
                let kept = st.applied_revision.as_ref().map_or("none".to_string(), ToString::to_string);
                tracing::warn!(revision = %revision, errors = errors.len(), kept = %kept, "policy revision rejected");
                self.metrics.failures.get_or_create(&ReasonLabels { reason: "rejected" }).inc();
                st.last_error = Some(format!("{revision} rejected ({} error(s)); {kept} stays in force", errors.len()));
                st.last_errors = errors;
                false
            }
        }
    }

    /// Syncs at once, then on every trigger and every `poll`, until `stop` is notified.
    pub async fn run(&self, poll: Duration, stop: Arc<Notify>) {
        let poll = poll.max(MIN_POLL);
        loop {
            self.sync_once().await;
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = self.trigger.notified() => {}
                _ = stop.notified() => return,
            }
        }
    }
}

fn record_failure(st: &mut GitStatus, e: &SourceError) {
    let kept = st.applied_revision.as_ref().map_or("none".to_string(), ToString::to_string);
    tracing::warn!(error = %e, kept = %kept, "fetch failed");
    st.last_error = Some(format!("{e}; {kept} stays in force"));
    st.last_errors = vec![e.to_string()];
    st.fetch_error = Some(e.to_string());
}
