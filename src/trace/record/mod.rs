//! `trace record`: watches a live cluster for a while and writes what it runs, and how that
//! changes, as a [`Trace`].
//!
//! ```text
//! watcher per kind ──(kind, event)──▶ Recording::apply ──clean, change──▶ workloads + events
//! (Deployment, StatefulSet, Job,        (synchronous)                       └─▶ Trace
//!  DaemonSet, PodDisruptionBudget)
//! ```
//!
//! The starting workloads are the first listing of every kind; the recording's clock starts
//! when the last listing ends and runs for the duration asked. PodDisruptionBudgets are read
//! as `policy/v1`, or `policy/v1beta1` on servers older than 1.21, and written as `policy/v1`.

mod clean;
mod recording;
#[cfg(test)]
mod tests;

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use kube::api::Api;
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use thiserror::Error;
use tokio::time::{Instant, timeout_at};

use clean::Kind;
use recording::Recording;

use super::{MAX_DURATION_SECS, Trace};

/// How long the first listing of every kind may take.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a long recording reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// How long to watch after the first listing; whole seconds count.
    pub duration: Duration,
    /// The namespace to record; `None` records every namespace.
    pub namespace: Option<String>,
    /// The trace's `metadata.name`.
    pub name: String,
}

#[derive(Debug, Error)]
pub enum RecordError {
    /// The duration asked for is not one a trace can have.
    #[error("cannot record for {0:?}: a trace lasts from 1s to 744h (31 days)")]
    Duration(Duration),
    /// The server's API groups could not be read.
    #[error("cannot find which version of the policy API group the server serves: {0}")]
    Discovery(String),
    /// RBAC refuses the recording identity a verb it needs.
    #[error(
        "forbidden to {verb} {resource}{scope}: {message}; recording needs the verbs list and watch on {resource} of API group {group}{scope}: grant them to this identity (a Role for one namespace, a ClusterRole for all)"
    )]
    Forbidden { verb: &'static str, resource: &'static str, group: &'static str, scope: String, message: String },
    /// A list or watch failed for another reason.
    #[error("cannot {verb} {resource}{scope}: {message}")]
    Api { verb: &'static str, resource: &'static str, scope: String, message: String },
    /// The first listing of some kinds did not end in time.
    #[error("the first listing of {resources} did not end within {}s; is the API server reachable?", SYNC_TIMEOUT.as_secs())]
    SyncTimeout { resources: String },
    /// The watches stopped before the recording ended.
    #[error("the watches ended before the recording did")]
    Ended,
}

/// Records `opts.duration` of the cluster behind `client`.
pub async fn record(client: kube::Client, opts: &RecordOptions) -> Result<Trace, RecordError> {
    check_duration(opts.duration)?;
    let group = kube::discovery::group(&client, "policy").await.map_err(|e| RecordError::Discovery(e.to_string()))?;
    let policy_version = if group.versions().any(|v| v == "v1") { "v1" } else { "v1beta1" };
    let streams = Kind::ALL.map(|kind| {
        let gvk = match kind {
            Kind::PodDisruptionBudget => GroupVersionKind::gvk("policy", policy_version, kind.name()),
            Kind::Job => GroupVersionKind::gvk("batch", "v1", kind.name()),
            _ => GroupVersionKind::gvk("apps", "v1", kind.name()),
        };
        let ar = ApiResource::from_gvk(&gvk);
        let api = match &opts.namespace {
            Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar),
            None => Api::<DynamicObject>::all_with(client.clone(), &ar),
        };
        watcher(api, watcher::Config::default())
            .default_backoff()
            .map(move |r| (kind, r.map(|e| values(e, &ar))))
            .boxed()
    });
    run(futures_util::stream::select_all(streams), opts).await
}

fn check_duration(d: Duration) -> Result<u64, RecordError> {
    let secs = d.as_secs();
    if secs == 0 || secs > MAX_DURATION_SECS {
        return Err(RecordError::Duration(d));
    }
    Ok(secs)
}

/// The objects of `event` as JSON, with the `apiVersion` and `kind` they were read as (list
/// items come without them).
fn values(event: watcher::Event<DynamicObject>, ar: &ApiResource) -> watcher::Event<Value> {
    let value = |o: DynamicObject| {
        let mut v = o.data;
        v["apiVersion"] = Value::String(ar.api_version.clone());
        v["kind"] = Value::String(ar.kind.clone());
        v["metadata"] = serde_json::to_value(o.metadata).expect("object metadata serializes");
        v
    };
    match event {
        watcher::Event::Apply(o) => watcher::Event::Apply(value(o)),
        watcher::Event::Delete(o) => watcher::Event::Delete(value(o)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(value(o)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// Feeds `events` to a recording until every kind is listed, then for the duration. A failed
/// first listing, or a refusal at any time, ends the recording with an error; the watchers
/// retry other failures.
async fn run<S>(mut events: S, opts: &RecordOptions) -> Result<Trace, RecordError>
where
    S: Stream<Item = (Kind, watcher::Result<watcher::Event<Value>>)> + Unpin,
{
    let secs = check_duration(opts.duration)?;
    let scope = match &opts.namespace {
        Some(ns) => format!(" in namespace {ns}"),
        None => " in all namespaces".to_string(),
    };
    let mut recording = Recording::new(&Kind::ALL);
    let synced_by = Instant::now() + SYNC_TIMEOUT;
    let start = loop {
        if let Some(start) = recording.start() {
            break start;
        }
        match timeout_at(synced_by, events.next()).await {
            Err(_) => {
                let resources: Vec<&str> = recording.unsynced().map(Kind::resource).collect();
                return Err(RecordError::SyncTimeout { resources: resources.join(", ") });
            }
            Ok(None) => return Err(RecordError::Ended),
            Ok(Some((kind, Err(e)))) => tolerate(error(kind, &scope, e), false)?,
            Ok(Some((kind, Ok(event)))) => recording.apply(kind, event, Instant::now()),
        }
    };
    tracing::info!(objects = recording.objects(), seconds = secs, "cluster listed; recording");
    let end = start + Duration::from_secs(secs);
    let mut report = start + PROGRESS_EVERY;
    while Instant::now() < end {
        match timeout_at(end.min(report), events.next()).await {
            Err(_) => {
                let now = Instant::now();
                if now >= report {
                    tracing::info!(
                        objects = recording.objects(),
                        received = recording.received(),
                        events = recording.events(),
                        seconds_left = end.saturating_duration_since(now).as_secs(),
                        "recording"
                    );
                    report += PROGRESS_EVERY;
                }
            }
            Ok(None) => return Err(RecordError::Ended),
            Ok(Some((kind, Err(e)))) => tolerate(error(kind, &scope, e), true)?,
            Ok(Some((kind, Ok(event)))) => recording.apply(kind, event, Instant::now()),
        }
    }
    tracing::info!(objects = recording.objects(), events = recording.events(), "recording ended");
    let mut trace = recording.finish(&opts.name, secs);
    // When the recording's hour 0 was, so a replay falls in the same part of the week.
    trace.spec.start = Some(chrono::Utc::now() - chrono::Duration::seconds(secs as i64));
    Ok(trace)
}

/// Whether the recording goes on after a watcher's failure: not when RBAC refuses, nor when a
/// first listing fails; otherwise the watcher retries.
fn tolerate(e: RecordError, started: bool) -> Result<(), RecordError> {
    match e {
        RecordError::Forbidden { .. } => Err(e),
        RecordError::Api { verb: "list", .. } if !started => Err(e),
        e => {
            tracing::warn!(error = %e, "watch failed; retrying");
            Ok(())
        }
    }
}

/// A watcher's failure, naming the verb and resource.
fn error(kind: Kind, scope: &str, e: watcher::Error) -> RecordError {
    let (verb, e) = match e {
        watcher::Error::InitialListFailed(e) => ("list", e),
        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => ("watch", e),
        watcher::Error::WatchError(status) => ("watch", kube::Error::Api(status)),
        e @ watcher::Error::NoResourceVersion => {
            return RecordError::Api {
                verb: "watch",
                resource: kind.resource(),
                scope: scope.to_string(),
                message: e.to_string(),
            };
        }
    };
    let (resource, scope) = (kind.resource(), scope.to_string());
    match e {
        kube::Error::Api(s) if s.is_forbidden() => {
            RecordError::Forbidden { verb, resource, group: kind.group(), scope, message: s.message.clone() }
        }
        e => RecordError::Api { verb, resource, scope, message: e.to_string() },
    }
}
