//! Carries out a plan with conditional writes. A write refused because the object changed is
//! re-read and re-based (`diff::rebase`): a concurrent edit to other fields is kept, the same
//! edit as ours is accepted, and a different edit to a field we meant to change stops that IG
//! with a conflict. Nothing is ever written over a version this pass has not read.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;

use super::diff::{self, Conflict, FieldChange};
use super::object::{self, read_instance_group, write_yaml};
use super::plan::{Action, Change, Current, Plan};
use super::read::Cache;
use super::store::{StateStore, StoreError};
use crate::digest::fnv64;

/// Writes tried per IG before giving up for this pass.
pub const MAX_ATTEMPTS: usize = 5;
/// Backups kept per IG; older ones are deleted.
pub const BACKUPS_KEPT: usize = 20;
/// IGs written at once.
pub const CONCURRENCY: usize = 16;

#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub name: String,
    pub action: Action,
    pub fields: usize,
    /// Writes it took; more than one means a concurrent writer was met and merged with.
    pub attempts: usize,
}

/// An IG not written because someone else changed what we meant to change.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    pub name: String,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub applied: Vec<Applied>,
    pub conflicts: Vec<Refused>,
    pub errors: Vec<String>,
}

enum Result1 {
    Done(Applied),
    Refused(Refused),
    Failed(String),
}

/// Applies `plan`; what is written is remembered in `cache`, so the next pass need not read it.
pub async fn apply<S: StateStore>(store: &S, plan: &Plan, cache: &Cache, now: DateTime<Utc>) -> Outcome {
    // The futures are made before the stream, not by a closure inside it: a closure over
    // borrowed changes makes the pass's future not provably Send (rustc #64552), and the daemon
    // runs passes in spawned tasks.
    let pending: Vec<_> =
        plan.changes.iter().map(|change| apply_change(store, &plan.cluster, change, cache, now)).collect();
    let results: Vec<Result1> = stream::iter(pending).buffer_unordered(CONCURRENCY).collect().await;
    let mut outcome = Outcome::default();
    for r in results {
        match r {
            Result1::Done(a) => outcome.applied.push(a),
            Result1::Refused(c) => outcome.conflicts.push(c),
            Result1::Failed(e) => outcome.errors.push(e),
        }
    }
    let replaced = plan.changes.iter().any(|c| c.base.is_some());
    if replaced && let Err(e) = prune_backups(store, &plan.cluster).await {
        outcome.errors.push(format!("pruning old backups: {e}"));
    }
    outcome.applied.sort_by(|a, b| a.name.cmp(&b.name));
    outcome.conflicts.sort_by(|a, b| a.name.cmp(&b.name));
    outcome.errors.sort();
    outcome
}

async fn apply_change<S: StateStore>(
    store: &S,
    cluster: &str,
    change: &Change,
    cache: &Cache,
    now: DateTime<Utc>,
) -> Result1 {
    let refused = |message: &str, conflicts: Vec<Conflict>| {
        Result1::Refused(Refused { name: change.name.clone(), message: message.to_string(), conflicts })
    };
    let done = |attempts| {
        Result1::Done(Applied {
            name: change.name.clone(),
            action: change.action,
            fields: change.fields.len(),
            attempts,
        })
    };
    let mut base = change.base.clone();
    let mut fields = change.fields.clone();
    for attempt in 1..=MAX_ATTEMPTS {
        let written = write(store, cluster, change, base.as_ref(), &fields, now).await;
        match written {
            Ok(Some(current)) => {
                cache.remember(&change.key, current);
                return done(attempt);
            }
            Ok(None) => return done(attempt),
            Err(StoreError::PreconditionFailed(_)) => {}
            Err(StoreError::NotFound(_)) if change.action == Action::Delete => return done(attempt),
            Err(StoreError::NotFound(_)) => {
                return refused("deleted from the store since it was read; not re-created in this pass", Vec::new());
            }
            Err(e) => return Result1::Failed(format!("{}: {e}", change.key)),
        }
        tracing::info!(key = %change.key, attempt, "changed concurrently; re-reading");
        let fresh = match store.get(&change.key).await {
            Ok(f) => f,
            Err(e) => return Result1::Failed(format!("{}: {e}", change.key)),
        };
        let Some(fresh) = fresh else {
            if change.action == Action::Delete {
                return done(attempt);
            }
            if base.is_some() {
                return refused("deleted from the store since it was read; not re-created in this pass", Vec::new());
            }
            continue;
        };
        if change.action == Action::Delete {
            return refused("changed in the store since the plan; not deleted", Vec::new());
        }
        let value = match read_instance_group(&change.key, &fresh.bytes) {
            Ok(v) => v,
            Err(e) => return Result1::Failed(e.to_string()),
        };
        match diff::rebase(&fields, &value) {
            Ok(kept) if kept.is_empty() => return done(attempt),
            Ok(kept) => fields = kept,
            Err(conflicts) => return refused("changed concurrently on a field this revision sets", conflicts),
        }
        base = Some(Current { name: change.name.clone(), value, bytes: fresh.bytes, etag: fresh.etag });
    }
    Result1::Failed(format!("{}: still changing after {MAX_ATTEMPTS} attempts; the next pass retries", change.key))
}

/// One conditional write: the backup of the version it replaces first, then the write.
async fn write<S: StateStore>(
    store: &S,
    cluster: &str,
    change: &Change,
    base: Option<&Current>,
    fields: &[FieldChange],
    now: DateTime<Utc>,
) -> Result<Option<Current>, StoreError> {
    let written =
        |value: Value, bytes: Vec<u8>, etag: String| Current { name: change.name.clone(), value, bytes, etag };
    let Some(base) = base else {
        let mut doc = Value::Object(Default::default());
        diff::apply(&mut doc, fields);
        let stamp = now.to_rfc3339_opts(SecondsFormat::Secs, true);
        doc["metadata"]["creationTimestamp"] = Value::String(stamp);
        let bytes = write_yaml(&doc);
        let etag = store.put_if_absent(&change.key, &bytes).await?;
        return Ok(Some(written(doc, bytes, etag)));
    };
    backup(store, cluster, base, now).await?;
    if change.action == Action::Delete {
        return store.delete_if_match(&change.key, &base.etag).await.map(|()| None);
    }
    let mut doc = base.value.clone();
    diff::apply(&mut doc, fields);
    let bytes = write_yaml(&doc);
    let etag = store.put_if_match(&change.key, &bytes, &base.etag).await?;
    Ok(Some(written(doc, bytes, etag)))
}

/// Copies the version about to be replaced to `<cluster>/capstan/backups/instancegroup/<ig>/`.
async fn backup<S: StateStore>(store: &S, cluster: &str, base: &Current, now: DateTime<Utc>) -> Result<(), StoreError> {
    let prefix = object::backup_prefix(cluster, &base.name);
    let key = format!("{prefix}{}-{:016x}.yaml", now.format("%Y%m%dT%H%M%S%.3fZ"), fnv64(&base.bytes));
    match store.put_if_absent(&key, &base.bytes).await {
        Ok(_) | Err(StoreError::PreconditionFailed(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Keeps the newest [`BACKUPS_KEPT`] backups of each IG (names sort by time); one listing
/// per pass.
async fn prune_backups<S: StateStore>(store: &S, cluster: &str) -> Result<(), StoreError> {
    let all = store.list_tagged(&object::backups_prefix(cluster)).await?;
    let mut by_ig: BTreeMap<&str, Vec<&(String, String)>> = BTreeMap::new();
    for entry in &all {
        let ig = entry.0.rsplit('/').nth(1).unwrap_or_default();
        by_ig.entry(ig).or_default().push(entry);
    }
    for backups in by_ig.values() {
        for (key, etag) in backups.iter().take(backups.len().saturating_sub(BACKUPS_KEPT)).copied() {
            match store.delete_if_match(key, etag).await {
                Ok(()) | Err(StoreError::NotFound(_) | StoreError::PreconditionFailed(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
