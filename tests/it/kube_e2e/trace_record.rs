//! `trace record` against the real API server: the starting workloads, the changes made during
//! the recording as timed events, and the refusals RBAC gives.

use std::time::Duration;

use capstan::trace::record::{RecordError, RecordOptions, record};
use capstan::trace::{Action, Trace};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use super::{client, kubeconfig, policy_v1};

/// A fresh namespace for one test.
async fn namespace(client: &Client, name: &str) -> String {
    // Unique across runs too: a namespace of an earlier run may still be terminating.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let ns = format!("record-{name}-{}-{nanos}", std::process::id());
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &serde_json::from_value(body).unwrap())
        .await
        .unwrap();
    ns
}

async fn drop_namespace(client: &Client, ns: &str) {
    let _ = Api::<Namespace>::all(client.clone()).delete(ns, &DeleteParams::default()).await;
}

/// A pod template no node takes, so the test's pods stay Pending whatever else runs.
fn template(app: &str, restart: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
        "spec": {"restartPolicy": restart, "nodeSelector": {"capstan.io/never": "true"},
            "containers": [{"name": "app", "image": "pause", "resources": {"requests": {"cpu": "250m"}}}]}})
}

async fn create<K>(client: &Client, ns: &str, body: Value)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &serde_json::from_value(body).unwrap()).await.unwrap();
}

/// Each event as (seconds, what).
fn events(trace: &Trace) -> Vec<(u64, String)> {
    let name =
        |o: &Value| format!("{} {}", o["kind"].as_str().unwrap_or("?"), o["metadata"]["name"].as_str().unwrap_or("?"));
    trace
        .spec
        .events
        .iter()
        .map(|e| {
            let what = match &e.action {
                Action::Scale(s) => format!("scale {} {} {}", s.kind, s.name, s.replicas),
                Action::Create(o) => format!("create {}", name(o)),
                Action::Delete(d) => format!("delete {} {}", d.kind, d.name),
                other => format!("{other:?}"),
            };
            (e.at.duration().as_secs(), what)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_lists_the_workloads_then_times_each_change() {
    // Timing matters here: take turns with the other end-to-end tests.
    let _serial = super::SERIAL.lock().await;
    let client = client().await;
    let ns = namespace(&client, "changes").await;
    create::<Deployment>(
        &client,
        &ns,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "annotations": {"team": "web", "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template("web", "Always")}}),
    )
    .await;
    let policy = if policy_v1(&client).await { "v1" } else { "v1beta1" };
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("policy", policy, "PodDisruptionBudget"));
    let pdb = json!({"apiVersion": format!("policy/{policy}"), "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
    Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &ar)
        .create(&PostParams::default(), &serde_json::from_value(pdb).unwrap())
        .await
        .unwrap();

    let opts = RecordOptions { duration: Duration::from_secs(8), namespace: Some(ns.clone()), name: "changes".into() };
    let recorder = client.clone();
    let recording = tokio::spawn(async move { record(recorder, &opts).await });
    // The listings take milliseconds; the changes start well after the recording does.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments.patch("web", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"replicas": 3}}))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    create::<Job>(
        &client,
        &ns,
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "batch", "annotations": {"capstan.io/pod-runtime": "1m"}},
            "spec": {"parallelism": 2, "template": template("batch", "Never")}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    create::<StatefulSet>(
        &client,
        &ns,
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": template("db", "Always")}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    deployments.delete("web", &DeleteParams::default()).await.unwrap();
    let trace = tokio::time::timeout(Duration::from_secs(30), recording).await.expect("the recording ends").unwrap();
    drop_namespace(&client, &ns).await;
    let trace = trace.unwrap();

    assert_eq!(trace.spec.duration.duration(), Duration::from_secs(8));
    let kinds: Vec<(&str, &str)> =
        trace.spec.workloads.iter().map(|w| (w["apiVersion"].as_str().unwrap(), w["kind"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("apps/v1", "Deployment"), ("policy/v1", "PodDisruptionBudget")]);
    for w in &trace.spec.workloads {
        assert!(w.get("status").is_none(), "{w}");
        let meta = w["metadata"].as_object().unwrap();
        for field in ["managedFields", "uid", "resourceVersion", "generation", "creationTimestamp", "selfLink"] {
            assert!(!meta.contains_key(field), "{field} in {w}");
        }
        assert_eq!(meta["namespace"], ns.as_str());
    }
    let web = &trace.spec.workloads[0];
    assert_eq!(web["spec"]["replicas"], 1);
    // The deployment controller's revision and kubectl's copy are gone; the user's stays.
    assert_eq!(web["metadata"]["annotations"], json!({"team": "web"}));
    assert_eq!(trace.spec.workloads[1]["spec"]["minAvailable"], 1);

    let got = events(&trace);
    let what: Vec<&str> = got.iter().map(|(_, w)| w.as_str()).collect();
    assert_eq!(
        what,
        ["scale Deployment web 3", "create Job batch", "create StatefulSet db", "delete Deployment web"],
        "{got:?}"
    );
    let times: Vec<u64> = got.iter().map(|(t, _)| *t).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "1.5 s apart, so at strictly rising seconds: {got:?}");
    // The changes span 4.5 s and end before the recording's 8 s do.
    assert!(times[0] <= 3 && times[3] <= 8 && times[3] - times[0] >= 4, "{got:?}");
    let Action::Create(job) = &trace.spec.events[1].action else { unreachable!() };
    assert!(job["spec"].get("selector").is_none(), "the generated selector is not re-applied: {job}");
    assert_eq!(job["spec"]["template"]["metadata"]["labels"], json!({"app": "batch"}));
    assert_eq!(job["metadata"]["labels"], json!({"app": "batch"}), "labels copied from the template are not: {job}");
    assert_eq!(job["metadata"]["annotations"], json!({"capstan.io/pod-runtime": "1m"}));

    let text = trace.to_yaml();
    let back = capstan::trace::parse("recorded.yaml", text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back, trace);
}

/// A client acting as `user`, who holds only what roles grant it.
async fn client_as(user: &str) -> Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig()).unwrap();
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    cfg.auth_info.impersonate = Some(user.to_string());
    Client::try_from(cfg).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_says_which_verb_on_which_resource_rbac_refuses() {
    let admin = client().await;
    let ns = namespace(&admin, "rbac").await;
    let user = format!("recorder-{}", std::process::id());
    let opts = RecordOptions { duration: Duration::from_secs(5), namespace: Some(ns.clone()), name: "rbac".into() };
    let resources = ["deployments", "statefulsets", "jobs", "daemonsets", "poddisruptionbudgets"];

    let refused = |e: &RecordError| match e {
        RecordError::Forbidden { verb, resource, .. } => Some((*verb, *resource)),
        _ => None,
    };
    let nothing = tokio::time::timeout(Duration::from_secs(30), record(client_as(&user).await, &opts)).await.unwrap();
    let err = nothing.unwrap_err();
    let (verb, resource) = refused(&err).unwrap_or_else(|| panic!("not a refusal: {err}"));
    assert_eq!(verb, "list", "{err}");
    assert!(resources.contains(&resource), "{err}");
    assert!(err.to_string().contains(&format!("forbidden to list {resource} in namespace {ns}")), "{err}");

    // Allowed to list but not to watch.
    let rbac = |kind: &str| ApiResource::from_gvk(&GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", kind));
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "list-only"},
        "rules": [{"apiGroups": ["apps", "batch", "policy"], "resources": resources, "verbs": ["list"]}]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "list-only"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "list-only"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]});
    for (kind, body) in [("Role", role), ("RoleBinding", binding)] {
        Api::<DynamicObject>::namespaced_with(admin.clone(), &ns, &rbac(kind))
            .create(&PostParams::default(), &serde_json::from_value(body).unwrap())
            .await
            .unwrap();
    }
    let list_only = tokio::time::timeout(Duration::from_secs(30), record(client_as(&user).await, &opts)).await.unwrap();
    drop_namespace(&admin, &ns).await;
    let err = list_only.unwrap_err();
    let (verb, resource) = refused(&err).unwrap_or_else(|| panic!("not a refusal: {err}"));
    assert_eq!(verb, "watch", "{err}");
    assert!(resources.contains(&resource), "{err}");
}
