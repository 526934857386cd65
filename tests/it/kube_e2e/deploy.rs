//! `deploy/kubernetes`: the kustomize base and the example overlay render with kubectl's own
//! kustomize (the image tag, the hashed ConfigMap and its reference, the overlay's registry, role
//! and configuration), every rendered object passes a server-side dry-run on the test API server,
//! and the RBAC grants exactly what the code calls (the end-to-end daemon runs under that
//! ServiceAccount, as the base renders it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use capstan::app::config::DaemonConfig;
use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::{Discovery, Scope};
use serde_json::Value;

/// The base, and the overlay the README tells users to copy.
pub const BASE: &str = "deploy/kubernetes/base";
pub const OVERLAY: &str = "deploy/kubernetes/overlays/kops-example";

fn kubectl() -> String {
    std::env::var("CAPSTAN_TEST_KUBECTL")
        .expect("CAPSTAN_TEST_KUBECTL is not set: run ./scripts/test.sh, which finds kubectl (kubernetes-client)")
}

/// `kubectl kustomize <dir>`: the objects `kubectl apply -k <dir>` would apply, in its order.
pub fn render(dir: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let out = Command::new(kubectl()).arg("kustomize").arg(&path).output().expect("run kubectl kustomize");
    assert!(out.status.success(), "kubectl kustomize {dir}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc).unwrap();
        if !v.is_null() {
            docs.push(v);
        }
    }
    docs
}

/// The base's objects, as installed.
pub fn manifests() -> Vec<Value> {
    render(BASE)
}

/// `Kind/name`, for messages.
fn label(doc: &Value) -> String {
    format!("{}/{}", doc["kind"].as_str().unwrap_or("?"), doc["metadata"]["name"].as_str().unwrap_or("?"))
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind}: {:?}", found.iter().map(|d| label(d)).collect::<Vec<_>>());
    found[0]
}

fn kustomization(dir: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir).join("kustomization.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
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

const KINDS: &[&str] = &[
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
];

/// The rendered Deployment's image, ConfigMap reference and pod settings; returns the
/// ConfigMap's `capstan.yaml` parsed as the daemon's configuration.
fn check_rendered(dir: &str, docs: &[Value], image: &str) -> DaemonConfig {
    assert_eq!(docs[0]["kind"], "Namespace", "{dir}: the namespace comes first: {}", label(&docs[0]));
    let kinds: BTreeSet<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    for k in KINDS {
        assert!(kinds.contains(k), "{dir} renders no {k}");
    }
    let ns = docs[0]["metadata"]["name"].as_str().unwrap();
    for d in
        docs.iter().filter(|d| !matches!(d["kind"].as_str(), Some("Namespace" | "ClusterRole" | "ClusterRoleBinding")))
    {
        assert_eq!(d["metadata"]["namespace"], ns, "{dir}: {} is in the namespace", label(d));
    }

    let dep = one(docs, "Deployment");
    let spec = &dep["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["image"], image, "{dir}: the image");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(
        c["resources"]["requests"]["cpu"].is_string()
            && c["livenessProbe"].is_object()
            && c["readinessProbe"].is_object()
    );

    // The generator names the ConfigMap capstan-<hash of its content>, and the Deployment's
    // reference follows, so a configuration change rolls the pods.
    let cm = one(docs, "ConfigMap");
    let name = cm["metadata"]["name"].as_str().unwrap();
    let hash = name.strip_prefix("capstan-").unwrap_or_else(|| panic!("{dir}: ConfigMap {name}"));
    assert!(hash.len() >= 8 && hash.chars().all(|ch| ch.is_ascii_alphanumeric()), "{dir}: no content hash in {name}");
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "config").unwrap();
    assert_eq!(volume["configMap"]["name"], name, "{dir}: the Deployment mounts the generated ConfigMap");
    let prices = cm["data"]["prices.csv"].as_str().unwrap();
    assert!(prices.starts_with("instance_type,usd_per_hour\n"), "{dir}: prices.csv: {prices}");

    let text = cm["data"]["capstan.yaml"].as_str().unwrap();
    let config: DaemonConfig = serde_yaml::from_str(text)
        .unwrap_or_else(|e| panic!("{dir}: capstan.yaml is not a daemon config: {e}\n{text}"));
    assert_eq!(config.lease().0, ns, "{dir}: the Lease lives where the Role grants it");
    assert_eq!(one(docs, "Role")["metadata"]["namespace"], ns);
    config
}

/// The base installs `capstan:<crate version>` (what scripts/image.sh builds); the overlay keeps
/// the tag and adds its registry, its own capstan.yaml and the IRSA role.
#[test]
fn the_base_and_the_overlay_render_as_documented() {
    let version = env!("CARGO_PKG_VERSION");
    let base = render(BASE);
    check_rendered(BASE, &base, &format!("capstan:{version}"));
    assert_eq!(kustomization(BASE)["images"][0]["newTag"], version);
    assert!(one(&base, "ServiceAccount")["metadata"]["annotations"].is_null(), "the base names no IAM role");
    let overlay = render(OVERLAY);
    for docs in [&base, &overlay] {
        let raw: Value =
            serde_yaml::from_str(one(docs, "ConfigMap")["data"]["capstan.yaml"].as_str().unwrap()).unwrap();
        assert_eq!((&raw["backends"]["cloud"], &raw["backends"]["cluster"]), (&"aws".into(), &"kube".into()));
    }

    let registry = kustomization(OVERLAY)["images"][0]["newName"].as_str().unwrap().to_string();
    assert!(registry.ends_with("/capstan") && registry.contains('.'), "a registry: {registry}");
    let config = check_rendered(OVERLAY, &overlay, &format!("{registry}:{version}"));
    assert_eq!(config.cluster, "dev");
    assert_eq!(config.repository.url, "https://github.com/example/fleet.git");
    assert_eq!(config.state_store.as_deref(), Some("s3://example-kops-state"));
    let role = &one(&overlay, "ServiceAccount")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"];
    assert_eq!(role, "arn:aws:iam::111122223333:role/capstan.capstan.sa.dev.example.com", "the role kOps creates");
    let name = |docs: &[Value]| one(docs, "ConfigMap")["metadata"]["name"].clone();
    assert_ne!(name(&base), name(&overlay), "the overlay's configuration changes the ConfigMap's name");
    assert_eq!(
        one(&base, "ConfigMap")["data"]["prices.csv"],
        one(&overlay, "ConfigMap")["data"]["prices.csv"],
        "the overlay keeps the base's prices"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rendered_object_passes_a_server_side_dry_run() {
    let client = super::client().await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    for dir in [BASE, OVERLAY] {
        let docs = render(dir);
        // Namespaced objects need their namespace to exist, even for a dry run.
        create(&client, &discovery, &docs[0], false).await.unwrap();
        for doc in &docs {
            create(&client, &discovery, doc, true).await.unwrap_or_else(|e| panic!("{dir}: {}: {e}", label(doc)));
        }
    }
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
    ("coordination.k8s.io", "leases", "list"),
    ("apps", "deployments", "list"),
    ("karpenter.sh", "nodepools", "list"),
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
    let rules = |kind: &str| grants(&one(&docs, kind)["rules"]);
    let set = |s: &[(&str, &str, &str)]| {
        s.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect::<BTreeSet<_>>()
    };
    assert_eq!(rules("ClusterRole"), set(USED));
    assert_eq!(rules("Role"), set(LEASE));
    assert!(docs.iter().all(|d| d["kind"] != "ClusterRole" || !d.to_string().contains('*')), "no wildcards");
}

/// A kubeconfig for the `capstan` ServiceAccount of deploy/ (the base as kustomize renders it),
/// bound to its roles, so a daemon run with it proves the roles suffice.
pub async fn service_account_kubeconfig(client: &Client, dir: &Path) -> PathBuf {
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    for doc in manifests() {
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
