//! The decision log: every launch, termination and the reason, with the policy revision that
//! governed it, kept as JSON lines under `<cluster>/capstan/decisions/<day>/`. Object stores
//! cannot append, so each batch of decisions is one new object (created with `If-None-Match`),
//! named by time so that a listing reads in order.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::object;
use super::store::{StateStore, StoreError};
use crate::digest::fnv64;
use crate::revision::Revision;

/// One decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// RFC 3339.
    pub time: String,
    /// `launch`, `terminate`, …
    pub action: String,
    /// Why: `provisioning`, `empty`, `underutilized`, `drifted`, `expired`, …
    pub reason: String,
    /// What it acted on, e.g. `NodeClaim/default-7x2kq`.
    pub object: String,
    /// The policy revision in force, stored as `main@sha1:<sha>` (or the label of a revision
    /// that is no Git commit, e.g. `local@digest:…`).
    pub revision: Revision,
    /// Anything else worth keeping: instance types, price, pods.
    #[serde(flatten)]
    pub detail: Map<String, Value>,
}

impl Decision {
    /// Whether the decision was taken under the commit `sha`.
    pub fn caused_by(&self, sha: &str) -> bool {
        self.revision.is_commit() && self.revision.sha == sha
    }
}

pub fn prefix(cluster: &str) -> String {
    format!("{}decisions/", object::own_prefix(cluster))
}

/// Appends a batch as one new object; returns its key (none for an empty batch).
pub async fn append<S: StateStore>(
    store: &S,
    cluster: &str,
    decisions: &[Decision],
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    if decisions.is_empty() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    for d in decisions {
        bytes.extend(serde_json::to_vec(d).expect("decisions serialise"));
        bytes.push(b'\n');
    }
    let key = format!(
        "{}{}/{}-{:016x}.jsonl",
        prefix(cluster),
        now.format("%Y-%m-%d"),
        now.format("%H%M%S%.6f"),
        fnv64(&bytes)
    );
    match store.put_if_absent(&key, &bytes).await {
        // The same batch written twice (a retried pass) is one record.
        Ok(_) | Err(StoreError::PreconditionFailed(_)) => Ok(Some(key)),
        Err(e) => Err(e),
    }
}

/// Every decision recorded for `cluster`, oldest first; lines that are not decisions are
/// skipped and counted.
pub async fn read<S: StateStore>(store: &S, cluster: &str) -> Result<(Vec<Decision>, usize), StoreError> {
    let mut out = Vec::new();
    let mut skipped = 0;
    for key in store.list(&prefix(cluster)).await? {
        let Some(o) = store.get(&key).await? else { continue };
        for line in o.bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<Decision>(line) {
                Ok(d) => out.push(d),
                Err(_) => skipped += 1,
            }
        }
    }
    Ok((out, skipped))
}

/// A decision at `now`.
pub fn decision(now: DateTime<Utc>, action: &str, reason: &str, object: &str, revision: &Revision) -> Decision {
    Decision {
        time: now.to_rfc3339_opts(SecondsFormat::Millis, true),
        action: action.to_string(),
        reason: reason.to_string(),
        object: object.to_string(),
        revision: revision.clone(),
        detail: Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kops::store::MemoryStore;

    #[test]
    fn batches_are_appended_and_read_back_in_order() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let store = MemoryStore::default();
            let t0 = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z").unwrap().with_timezone(&Utc);
            let mut launch = decision(t0, "launch", "provisioning", "NodeClaim/default-a", &"main@sha1:aaa".into());
            launch.detail.insert("instanceType".into(), "m6i.large".into());
            append(&store, "c", std::slice::from_ref(&launch), t0).await.unwrap();
            let t1 = t0 + chrono::Duration::seconds(90);
            let stop = decision(t1, "terminate", "empty", "NodeClaim/default-a", &"main@sha1:bbb".into());
            let key = append(&store, "c", std::slice::from_ref(&stop), t1).await.unwrap().unwrap();
            assert!(key.starts_with("c/capstan/decisions/2026-11-24/"), "{key}");
            append(&store, "c", std::slice::from_ref(&stop), t1).await.unwrap();
            assert_eq!(append(&store, "c", &[], t1).await.unwrap(), None);
            let (read, skipped) = read(&store, "c").await.unwrap();
            assert_eq!((read, skipped), (vec![launch.clone(), stop], 0));
            assert!(launch.caused_by("aaa") && !launch.caused_by("bbb"));
        });
    }

    #[test]
    fn the_log_format_is_unchanged_and_a_local_revision_is_caused_by_no_commit() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z").unwrap().with_timezone(&Utc);
        for (text, sha) in [("main@sha1:aaa", Some("aaa")), ("local@digest:0123", None)] {
            let d = decision(t0, "launch", "provisioning", "NodeClaim/x", &Revision::parse(text));
            let line = serde_json::to_value(&d).unwrap();
            assert_eq!(line["revision"], text);
            let back: Decision = serde_json::from_value(line).unwrap();
            assert_eq!(back, d);
            assert_eq!(back.caused_by("aaa"), sha == Some("aaa"));
            assert!(!back.caused_by("") && !back.caused_by("0123"));
        }
    }
}
