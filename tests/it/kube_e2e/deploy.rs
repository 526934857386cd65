//! `deploy/`: every manifest passes a server-side dry-run on the test API server; the RBAC
//! grants exactly what the code calls (the end-to-end daemon runs under that ServiceAccount).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::{Discovery, Scope};
use serde_json::Value;

/// The manifests of deploy/kubernetes, in apply order (namespace first).
pub fn manifests() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort_by_key(|p| (p.file_name().unwrap() != "namespace.yaml", p.clone()));
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc).unwrap();
            if !v.is_null() {
                out.push((f.file_name().unwrap().to_string_lossy().into_owned(), v));
            }
        }
    }
    out
}

/// Applies `doc`: a server-side apply with dry-run (what `kubectl apply --server-side
/// --dry-run=server` does, so objects that already exist are fine), or a real create where
/// AlreadyExists counts as done.
pub async fn create(client: &Client, discovery: &Discovery, doc: &Value, dry_run: bool) -> Result<(), String> {
    let mut doc = doc.clone();
    let (group, version) = match doc["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), doc["apiVersion"].as_str().unwrap().to_string()),
    };
    let kind = doc["kind"].as_str().unwrap().to_string();
    let mut gvk = kube::core::GroupVersionKind::gvk(&group, &version, &kind);
    // The test server is Kubernetes 1.20, which serves PodDisruptionBudget as policy/v1beta1
    // only; clusters capstan supports (1.21+) take the manifest's policy/v1 as written.
    if discovery.resolve_gvk(&gvk).is_none() && group == "policy" {
        gvk = kube::core::GroupVersionKind::gvk("policy", "v1beta1", &kind);
        doc["apiVersion"] = Value::String("policy/v1beta1".into());
    }
    let (ar, caps) = discovery.resolve_gvk(&gvk).ok_or_else(|| format!("the server does not serve {gvk:?}"))?;
    let obj: DynamicObject = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            Api::namespaced_with(client.clone(), obj.metadata.namespace.as_deref().unwrap_or("default"), &ar)
        }
        Scope::Cluster => Api::all_with(client.clone(), &ar),
    };
    let name = obj.metadata.name.clone().unwrap_or_default();
    if dry_run {
        let pp = kube::api::PatchParams::apply("capstan-deploy-check").dry_run();
        return api
            .patch(&name, &pp, &kube::api::Patch::Apply(&obj))
            .await
            .map(|_| ())
            .map_err(|e| format!("{kind} {name}: {e}"));
    }
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 && !dry_run => Ok(()),
        Err(e) => Err(format!("{kind} {}: {e}", obj.metadata.name.unwrap_or_default())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_manifest_passes_a_server_side_dry_run() {
    let client = super::client().await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let docs = manifests();
    let kinds: BTreeSet<&str> = docs.iter().map(|(_, d)| d["kind"].as_str().unwrap()).collect();
    for k in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
    ] {
        assert!(kinds.contains(k), "deploy/kubernetes has no {k}");
    }
    // Namespaced objects need their namespace to exist, even for a dry run.
    create(&client, &discovery, &docs[0].1, false).await.unwrap();
    for (file, doc) in &docs {
        create(&client, &discovery, doc, true).await.unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let dep = docs.iter().find(|(_, d)| d["kind"] == "Deployment").unwrap();
    let spec = &dep.1["spec"];
    assert_eq!(spec["replicas"], 2);
    let c = &spec["template"]["spec"]["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(spec["template"]["spec"]["securityContext"]["runAsNonRoot"], true);
    assert!(
        c["resources"]["requests"]["cpu"].is_string()
            && c["livenessProbe"].is_object()
            && c["readinessProbe"].is_object()
    );
}

/// (group, resource, verb) the code uses; `cluster::kube` and `cluster::kube::lease` make
/// exactly these calls.
const USED: &[(&str, &str, &str)] = &[
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "pods/eviction", "create"),
    ("", "nodes", "get"),
    ("", "nodes", "list"),
    ("", "nodes", "watch"),
    ("", "nodes", "patch"),
    ("", "nodes", "delete"),
    ("apps", "daemonsets", "list"),
    ("apps", "daemonsets", "watch"),
    ("policy", "poddisruptionbudgets", "list"),
    ("policy", "poddisruptionbudgets", "watch"),
    ("events.k8s.io", "events", "create"),
    ("events.k8s.io", "events", "patch"),
];
const LEASE: &[(&str, &str, &str)] = &[
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
];

fn grants(rules: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for r in rules.as_array().unwrap() {
        for g in r["apiGroups"].as_array().unwrap() {
            for res in r["resources"].as_array().unwrap() {
                for v in r["verbs"].as_array().unwrap() {
                    out.insert((g.as_str().unwrap().into(), res.as_str().unwrap().into(), v.as_str().unwrap().into()));
                }
            }
        }
    }
    out
}

#[test]
fn the_roles_grant_exactly_what_the_code_uses() {
    let docs = manifests();
    let rules = |kind: &str| grants(&docs.iter().find(|(_, d)| d["kind"] == kind).unwrap().1["rules"]);
    let set = |s: &[(&str, &str, &str)]| {
        s.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect::<BTreeSet<_>>()
    };
    assert_eq!(rules("ClusterRole"), set(USED));
    assert_eq!(rules("Role"), set(LEASE));
    assert!(docs.iter().all(|(_, d)| d["kind"] != "ClusterRole" || !d.to_string().contains('*')), "no wildcards");
}

/// A kubeconfig for the `capstan` ServiceAccount of deploy/, bound to deploy's roles, so a
/// daemon run with it proves the roles suffice.
pub async fn service_account_kubeconfig(client: &Client, dir: &Path) -> PathBuf {
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    for (_, doc) in manifests() {
        if matches!(
            doc["kind"].as_str(),
            Some("Namespace" | "ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding")
        ) {
            create(client, &discovery, &doc, false).await.unwrap();
        }
    }
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), "capstan");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), "capstan");
    let mut token = None;
    for _ in 0..100 {
        let sa = sas.get("capstan").await.unwrap();
        if let Some(name) = sa.secrets.iter().flatten().find_map(|r| r.name.clone())
            && let Ok(s) = secrets.get(&name).await
            && let Some(t) = s.data.as_ref().and_then(|d| d.get("token"))
        {
            token = Some(String::from_utf8(t.0.clone()).unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let token = token.expect("the controller manager issues the ServiceAccount's token");
    let admin = std::fs::read_to_string(super::kubeconfig()).unwrap();
    let path = dir.join("capstan-sa.kubeconfig");
    std::fs::write(&path, admin.replace("token: capstan-admin-token", &format!("token: {token}"))).unwrap();
    path
}
