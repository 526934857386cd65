use std::time::Duration;

use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::clean::{Key, Kind, Skip, change, clean};
use super::recording::Recording;
use super::{RecordError, RecordOptions, run};
use crate::trace::{Action, ObjectRef, Scale};

/// A Deployment as the API server serves it.
fn deployment(name: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": name, "namespace": "shop", "uid": "0d1f", "resourceVersion": "812", "generation": 3,
            "creationTimestamp": "2026-12-01T10:00:00Z", "selfLink": "/apis/apps/v1/namespaces/shop/deployments/web",
            "labels": {"app": name},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "deployment.kubernetes.io/revision": "2", "team": "web"},
            "managedFields": [{"manager": "kubectl", "operation": "Update"}]
        },
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"creationTimestamp": null, "labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "web:1", "resources": {"requests": {"cpu": "500m"}}}]}}},
        "status": {"replicas": replicas, "readyReplicas": 0}
    })
}

/// A Job as served, its selector generated; `owner` is its controller's (kind, name).
fn job(name: &str, owner: Option<(&str, &str)>) -> Value {
    let mut j = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "shop", "uid": "77aa",
            "labels": {"controller-uid": "77aa", "job-name": name, "app": "batch"}},
        "spec": {"parallelism": 2, "selector": {"matchLabels": {"controller-uid": "77aa"}},
            "template": {"metadata": {"labels": {"controller-uid": "77aa", "job-name": name, "app": "batch"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "work", "image": "work:1"}]}}},
        "status": {"active": 2}
    });
    if let Some((kind, owner)) = owner {
        j["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "batch/v1", "kind": kind, "name": owner, "uid": "1", "controller": true}]);
    }
    j
}

fn pdb(api_version: &str, selector: Value) -> Value {
    json!({
        "apiVersion": api_version, "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "shop", "uid": "5"},
        "spec": {"minAvailable": 1, "selector": selector},
        "status": {"currentHealthy": 0}
    })
}

fn key(kind: Kind, name: &str) -> Key {
    Key { kind, namespace: "shop".to_string(), name: name.to_string() }
}

#[test]
fn clean_keeps_only_what_a_user_applies() {
    let cleaned = clean(Kind::Deployment, &deployment("web", 3)).unwrap();
    let expected = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}, "annotations": {"team": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "web:1", "resources": {"requests": {"cpu": "500m"}}}]}}}
    });
    assert_eq!(cleaned, expected);
    let mut sts = deployment("db", 2);
    sts["kind"] = json!("StatefulSet");
    sts["spec"]["serviceName"] = json!("db");
    let cleaned = clean(Kind::StatefulSet, &sts).unwrap();
    assert!(cleaned["spec"].get("volumeClaimTemplates").is_none(), "nothing added: {cleaned}");
    sts["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "data", "creationTimestamp": null},
        "spec": {"accessModes": ["ReadWriteOnce"]}, "status": {"phase": "Pending"}}]);
    let cleaned = clean(Kind::StatefulSet, &sts).unwrap();
    assert_eq!(
        cleaned["spec"]["volumeClaimTemplates"],
        json!([{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}])
    );
}

#[test]
fn clean_drops_a_jobs_generated_selector_but_keeps_a_manual_one() {
    let cleaned = clean(Kind::Job, &job("nightly", None)).unwrap();
    assert!(cleaned["spec"].get("selector").is_none(), "{cleaned}");
    assert_eq!(cleaned["spec"]["template"]["metadata"]["labels"], json!({"app": "batch"}));
    assert_eq!(cleaned["metadata"]["labels"], json!({"app": "batch"}));
    let mut manual = job("nightly", None);
    manual["spec"]["manualSelector"] = json!(true);
    let cleaned = clean(Kind::Job, &manual).unwrap();
    assert_eq!(cleaned["spec"]["selector"], json!({"matchLabels": {"controller-uid": "77aa"}}));
    assert_eq!(cleaned["spec"]["template"]["metadata"]["labels"]["job-name"], "nightly");
    assert_eq!(cleaned["metadata"]["labels"]["job-name"], "nightly");
}

#[test]
fn clean_keeps_jobs_of_a_cronjob_and_skips_objects_a_recorded_kind_controls() {
    let of_cronjob = clean(Kind::Job, &job("backup-2901", Some(("CronJob", "backup")))).unwrap();
    assert!(of_cronjob["metadata"].get("ownerReferences").is_none());
    let skipped = clean(Kind::Job, &job("inner", Some(("Deployment", "web")))).unwrap_err();
    assert_eq!(skipped, Skip::Owned { kind: "Deployment".to_string(), name: "web".to_string() });
}

#[test]
fn clean_writes_pdbs_as_policy_v1_and_leaves_out_v1beta1_ones_selecting_nothing() {
    let selector = json!({"matchLabels": {"app": "web"}});
    for version in ["policy/v1beta1", "policy/v1"] {
        let cleaned = clean(Kind::PodDisruptionBudget, &pdb(version, selector.clone())).unwrap();
        assert_eq!(cleaned["apiVersion"], "policy/v1");
        assert_eq!(cleaned["spec"], json!({"minAvailable": 1, "selector": selector}));
    }
    for empty in [json!({}), json!(null), json!({"matchLabels": {}, "matchExpressions": []})] {
        assert_eq!(clean(Kind::PodDisruptionBudget, &pdb("policy/v1beta1", empty)), Err(Skip::SelectsNothing));
    }
    assert!(clean(Kind::PodDisruptionBudget, &pdb("policy/v1", json!({}))).is_ok());
}

#[test]
fn clean_leaves_out_what_the_trace_cannot_hold() {
    let err = clean(Kind::Deployment, &deployment("huge", 2_000_000)).unwrap_err();
    assert!(matches!(&err, Skip::NotReplayable(m) if m.contains("2000000 replicas")), "{err:?}");
}

#[test]
fn a_replicas_only_change_is_a_scale_and_any_other_a_create() {
    let k = key(Kind::Deployment, "web");
    let old = clean(Kind::Deployment, &deployment("web", 3)).unwrap();
    let scaled = clean(Kind::Deployment, &deployment("web", 5)).unwrap();
    assert_eq!(
        change(&k, Some(&old), Some(&scaled)),
        Some(Action::Scale(Scale {
            kind: "Deployment".to_string(),
            namespace: "shop".to_string(),
            name: "web".to_string(),
            replicas: 5
        }))
    );
    let mut image = scaled.clone();
    image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
    assert_eq!(change(&k, Some(&old), Some(&image)), Some(Action::Create(image.clone())));
    assert_eq!(change(&k, Some(&old), Some(&old.clone())), None);
    assert_eq!(change(&k, None, Some(&old)), Some(Action::Create(old.clone())));
    assert_eq!(
        change(&k, Some(&old), None),
        Some(Action::Delete(ObjectRef {
            kind: "Deployment".to_string(),
            namespace: "shop".to_string(),
            name: "web".to_string()
        }))
    );
    assert_eq!(change(&k, None, None), None);
}

#[test]
fn a_job_parallelism_change_is_a_create() {
    let k = key(Kind::Job, "nightly");
    let old = clean(Kind::Job, &job("nightly", None)).unwrap();
    let mut raw = job("nightly", None);
    raw["spec"]["parallelism"] = json!(4);
    let new = clean(Kind::Job, &raw).unwrap();
    assert_eq!(change(&k, Some(&old), Some(&new)), Some(Action::Create(new.clone())));
}

/// Lists every kind: `objects` as (kind, raw object).
fn list_all(r: &mut Recording, objects: &[(Kind, Value)], now: Instant) {
    for kind in Kind::ALL {
        r.apply(kind, Event::Init, now);
        for (_, o) in objects.iter().filter(|(k, _)| *k == kind) {
            r.apply(kind, Event::InitApply(o.clone()), now);
        }
        r.apply(kind, Event::InitDone, now);
    }
}

#[test]
fn the_recording_starts_when_every_kind_is_listed() {
    let t0 = Instant::now();
    let mut r = Recording::new(&Kind::ALL);
    r.apply(Kind::Deployment, Event::Init, t0);
    r.apply(Kind::Deployment, Event::InitApply(deployment("web", 3)), t0);
    r.apply(Kind::Deployment, Event::InitDone, t0);
    // Seen before the PDBs are listed: part of the start, not an event.
    r.apply(Kind::Deployment, Event::Apply(deployment("web", 4)), t0);
    assert_eq!(r.start(), None);
    list_all(&mut r, &[(Kind::Deployment, deployment("web", 4))], t0 + Duration::from_millis(300));
    assert_eq!(r.start(), Some(t0 + Duration::from_millis(300)));
    let trace = r.finish("t", 10);
    assert!(trace.spec.events.is_empty(), "{:?}", trace.spec.events);
    assert_eq!(trace.spec.workloads.len(), 1);
    assert_eq!(trace.spec.workloads[0]["spec"]["replicas"], 4);
}

#[test]
fn changes_become_timed_events_and_status_updates_none() {
    let t0 = Instant::now();
    let mut r = Recording::new(&Kind::ALL);
    list_all(&mut r, &[(Kind::Deployment, deployment("web", 3)), (Kind::Job, job("gone", None))], t0);
    let mut status = deployment("web", 3);
    status["status"]["readyReplicas"] = json!(3);
    status["metadata"]["resourceVersion"] = json!("900");
    status["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("3");
    r.apply(Kind::Deployment, Event::Apply(status), t0 + Duration::from_millis(500));
    r.apply(Kind::Deployment, Event::Apply(deployment("web", 6)), t0 + Duration::from_millis(2_900));
    r.apply(Kind::Job, Event::Apply(job("nightly", None)), t0 + Duration::from_secs(4));
    r.apply(Kind::Job, Event::Apply(job("inner", Some(("StatefulSet", "db")))), t0 + Duration::from_secs(4));
    r.apply(Kind::Deployment, Event::Delete(deployment("web", 6)), t0 + Duration::from_secs(7));
    // A watch restarting lists its kind again: the Job missing from the listing was deleted.
    r.apply(Kind::Job, Event::Init, t0 + Duration::from_secs(8));
    r.apply(Kind::Job, Event::InitApply(job("nightly", None)), t0 + Duration::from_secs(8));
    r.apply(Kind::Job, Event::InitDone, t0 + Duration::from_secs(8));
    let trace = r.finish("shop", 10);
    let got: Vec<(u64, String)> = trace
        .spec
        .events
        .iter()
        .map(|e| {
            let what = match &e.action {
                Action::Scale(s) => format!("scale {} {}", s.name, s.replicas),
                Action::Create(o) => {
                    format!("create {} {}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap())
                }
                Action::Delete(d) => format!("delete {} {}", d.kind, d.name),
                other => format!("{other:?}"),
            };
            (e.at.duration().as_secs(), what)
        })
        .collect();
    let expected =
        [(2, "scale web 6"), (4, "create Job nightly"), (7, "delete Deployment web"), (8, "delete Job gone")];
    assert_eq!(got, expected.map(|(t, w)| (t, w.to_string())));
    assert_eq!(trace.spec.workloads.len(), 2);
    let text = trace.to_yaml();
    let back = crate::trace::parse("recorded.yaml", text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back, trace);
}

type Item = (Kind, watcher::Result<Event<Value>>);

/// A stream fed through a channel, open until the sender is dropped.
fn channel() -> (tokio::sync::mpsc::UnboundedSender<Item>, impl futures_util::Stream<Item = Item> + Unpin) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) });
    (tx, Box::pin(stream))
}

fn options(secs: u64) -> RecordOptions {
    RecordOptions { duration: Duration::from_secs(secs), namespace: Some("shop".to_string()), name: "shop".to_string() }
}

#[tokio::test]
async fn run_records_for_the_duration_then_stops() {
    let (tx, stream) = channel();
    for kind in Kind::ALL {
        tx.send((kind, Ok(Event::Init))).unwrap();
        tx.send((kind, Ok(Event::InitDone))).unwrap();
    }
    tx.send((Kind::Deployment, Ok(Event::Apply(deployment("web", 2))))).unwrap();
    let started = std::time::Instant::now();
    let trace = run(stream, &options(1)).await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(3), "{took:?}");
    assert_eq!(trace.spec.duration.duration(), Duration::from_secs(1));
    assert!(trace.spec.workloads.is_empty());
    assert_eq!(trace.spec.events.len(), 1);
    assert!(matches!(&trace.spec.events[0].action, Action::Create(o) if o["metadata"]["name"] == "web"));
    drop(tx);
}

#[tokio::test]
async fn run_names_the_verb_and_resource_refused() {
    let (tx, stream) = channel();
    let status = kube::core::Status::failure("deployments.apps is forbidden", "Forbidden").with_code(403);
    tx.send((Kind::Deployment, Err(watcher::Error::InitialListFailed(kube::Error::Api(status.boxed()))))).unwrap();
    let err = run(stream, &options(5)).await.unwrap_err();
    assert!(matches!(err, RecordError::Forbidden { verb: "list", resource: "deployments", group: "apps", .. }));
    let text = err.to_string();
    assert!(
        text.contains("forbidden to list deployments in namespace shop") && text.contains("API group apps"),
        "{text}"
    );
}

#[tokio::test]
async fn run_fails_on_a_failed_first_listing_but_not_on_a_failed_watch() {
    let (tx, stream) = channel();
    let gone = kube::core::Status::failure("too old resource version", "Expired").with_code(410);
    tx.send((Kind::Job, Ok(Event::Init))).unwrap();
    tx.send((Kind::Job, Ok(Event::InitDone))).unwrap();
    tx.send((Kind::Job, Err(watcher::Error::WatchError(gone.boxed())))).unwrap();
    let refused = kube::Error::Api(kube::core::Status::failure("connection refused", "").with_code(503).boxed());
    tx.send((Kind::DaemonSet, Err(watcher::Error::InitialListFailed(refused)))).unwrap();
    let err = run(stream, &options(5)).await.unwrap_err();
    assert!(matches!(err, RecordError::Api { verb: "list", resource: "daemonsets", .. }), "{err}");
}

#[tokio::test]
async fn run_fails_when_the_watches_end_or_the_duration_is_out_of_range() {
    let (tx, stream) = channel();
    drop(tx);
    assert!(matches!(run(stream, &options(5)).await, Err(RecordError::Ended)));
    let (_tx, stream) = channel();
    assert!(matches!(run(stream, &options(0)).await, Err(RecordError::Duration(_))));
}
