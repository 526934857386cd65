//! End to end on a real control plane (kube-apiserver, etcd, kube-scheduler and
//! kube-controller-manager v1.20) and moto's EC2: `capstan run` with `cluster: kube` and
//! `cloud: aws`, a test kubelet turning launched instances into Nodes.

mod deploy;
mod drain;
mod handover;
mod interruption;
mod kubelet;
mod scenarios;
mod trace_record;

use std::path::Path;
use std::time::Duration;

use capstan::cloud::aws::{self, Endpoint};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::watch;

use crate::aws_catalog::{moto, price_file};
use crate::aws_resolve::{network, unique};
use crate::daemon::{Daemon, start, status, wait};
use crate::gitops::git;

pub fn kubeconfig() -> String {
    std::env::var("CAPSTAN_TEST_KUBECONFIG")
        .expect("CAPSTAN_TEST_KUBECONFIG is not set: run ./scripts/test.sh, which starts the control plane")
}

pub async fn client() -> Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    Client::try_from(cfg).unwrap()
}

/// A config repository for one cluster, committed in a fresh Git repository.
fn repository(dir: &Path, cluster: &str, kops: &str, state: &Path, image: &str, pool: &str) {
    let w = dir.join("repo");
    std::fs::create_dir_all(w.join("base/nodepools")).unwrap();
    std::fs::create_dir_all(w.join("base/nodeclasses")).unwrap();
    std::fs::write(
        w.join("fleet.yaml"),
        format!(
            "apiVersion: capstan.io/v1alpha1\nkind: Fleet\nmetadata: {{name: e2e}}\nspec:\n  clusters:\n    - {{name: {cluster}, kopsName: {kops}, stateStore: \"file://{}\", region: us-east-1}}\n",
            state.display()
        ),
    )
    .unwrap();
    std::fs::write(
        w.join("base/nodeclasses/nodes.yaml"),
        format!(
            "apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata: {{name: nodes}}\nspec:\n  amiFamily: Custom\n  amiSelectorTerms: [{{id: {image}}}]\n  instanceProfile: nodes.{kops}\n  userData: \"#!/bin/bash\\necho nodeup\"\n  subnetSelectorTerms:\n    - tags: {{KubernetesCluster: {kops}}}\n  securityGroupSelectorTerms:\n    - tags: {{KubernetesCluster: {kops}}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        w.join("base/nodepools/general.yaml"),
        format!("apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {{name: {pool}}}\nspec:\n  template:\n    spec:\n      nodeClassRef: {{group: karpenter.k8s.aws, kind: EC2NodeClass, name: nodes}}\n      requirements:\n        - {{key: karpenter.k8s.aws/instance-family, operator: In, values: [m6i, c6i]}}\n        - {{key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}}\n  disruption:\n    consolidationPolicy: WhenEmptyOrUnderutilized\n    consolidateAfter: 10s\n    budgets: [{{nodes: \"100%\"}}]\n  limits: {{cpu: \"200\"}}\n"),
    )
    .unwrap();
    std::fs::write(
        w.join("base/policy.yaml"),
        "apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: default}\nspec:\n  dryRun: false\n",
    )
    .unwrap();
    git(dir, &["init", "-q", "-b", "main", "repo"]);
    git(&w, &["-c", "user.name=E2E", "-c", "user.email=e2e@example.com", "add", "-A"]);
    git(&w, &["-c", "user.name=E2E", "-c", "user.email=e2e@example.com", "commit", "-q", "-m", "policy"]);
}

/// Everything a scenario runs against: the daemon, the control plane, moto and the kubelet.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub kops: String,
    pub client: Client,
    pub ec2: aws_sdk_ec2::Client,
    pub stop_kubelet: watch::Sender<bool>,
    pub namespace: String,
    /// This test's NodePool; its pods select it, so tests sharing the API server never share
    /// nodes.
    pub pool: String,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

/// The end-to-end tests share one control plane and take turns: their timing assertions
/// (failover within 15 s) must not depend on what the other tests load the machine with.
static SERIAL: std::sync::LazyLock<tokio::sync::Mutex<()>> = std::sync::LazyLock::new(|| tokio::sync::Mutex::new(()));

impl Env {
    pub async fn new(name: &str) -> Env {
        let serial = SERIAL.lock().await;
        let kops = unique(name);
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pool = format!("{name}-{}-{seq}", std::process::id());
        let cluster = "e2e".to_string();
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(state.join(&kops)).unwrap();
        // As `kops create cluster` leaves it.
        std::fs::write(
            state.join(&kops).join("config"),
            format!("apiVersion: kops.k8s.io/v1alpha2\nkind: Cluster\nmetadata:\n  name: {kops}\nspec:\n  cloudProvider: aws\n"),
        )
        .unwrap();
        let ep = Endpoint { url: Some(moto()), region: Some("us-east-1".into()) };
        let ec2 = aws::ec2(&ep).await;
        network(&ec2, &kops).await;
        let images = ec2.describe_images().owners("amazon").send().await.unwrap();
        let image = images
            .images()
            .iter()
            .find(|i| i.architecture().map(|a| a.as_str()) == Some("x86_64"))
            .and_then(|i| i.image_id())
            .unwrap()
            .to_string();
        repository(dir.path(), &cluster, &kops, &state, &image, &pool);
        let client = client().await;
        let namespace = format!("e2e-{}-{seq}", std::process::id());
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
        let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
            .create(&PostParams::default(), &serde_json::from_value(ns).unwrap())
            .await;
        let (stop_kubelet, rx) = watch::channel(false);
        tokio::spawn(kubelet::run(client.clone(), ec2.clone(), kops.clone(), rx));
        Env { dir, kops, client, ec2, stop_kubelet, namespace, pool, _serial: serial }
    }

    /// The daemon's config; `identity` names the replica in the Lease. Admin credentials.
    pub fn config(&self, identity: &str) -> std::path::PathBuf {
        self.config_as(identity, Path::new(&kubeconfig()), "default", &moto())
    }

    /// The config with another identity's kubeconfig and the Lease in `lease_namespace`.
    pub fn config_as(&self, identity: &str, kubeconfig: &Path, lease_namespace: &str, ec2: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(format!("capstan-{identity}.yaml"));
        std::fs::write(
            &path,
            format!(
                "cluster: e2e\nrepository:\n  url: {repo}\n  branch: main\n  poll: 5s\nbackends: {{cloud: aws, cluster: kube}}\ndataDir: {data}\nkube:\n  kubeconfig: {kc}\n  leaseNamespace: {lease_namespace}\n  leaseName: capstan-{kops}\n  identity: {identity}\naws:\n  endpoint: {moto}\n  region: us-east-1\n  pricesFile: {prices}\n",
                repo = self.dir.path().join("repo").display(),
                data = self.dir.path().join(format!("data-{identity}")).display(),
                kc = kubeconfig.display(),
                kops = self.kops,
                moto = ec2,
                prices = price_file().display(),
            ),
        )
        .unwrap();
        path
    }

    pub async fn deploy(&self, name: &str, replicas: i32, cpu: &str) {
        self.deploy_annotated(name, replicas, cpu, json!({})).await;
    }

    pub async fn deploy_annotated(&self, name: &str, replicas: i32, cpu: &str, annotations: serde_json::Value) {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}, "annotations": annotations},
                    "spec": {"terminationGracePeriodSeconds": 0, "nodeSelector": {"karpenter.sh/nodepool": self.pool}, "containers": [{"name": "pause", "image": "pause",
                        "resources": {"requests": {"cpu": cpu}}}]}}}
        });
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        api.create(&PostParams::default(), &serde_json::from_value(d).unwrap()).await.unwrap();
    }

    pub async fn scale(&self, name: &str, replicas: i32) {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        api.patch(name, &PatchParams::default(), &Patch::Merge(&json!({"spec": {"replicas": replicas}})))
            .await
            .unwrap();
    }

    pub async fn running(&self, app: &str) -> usize {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let pods = api.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap().items;
        pods.iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count()
    }

    /// Live instances (pending or running) of this cluster in moto.
    pub async fn instances(&self) -> Vec<(String, String)> {
        let out = self
            .ec2
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag-key")
                    .values(format!("kubernetes.io/cluster/{}", self.kops))
                    .build(),
            )
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| {
                let claim = i
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("capstan.io/nodeclaim"))
                    .and_then(|t| t.value())
                    .unwrap_or_default();
                (i.instance_id().unwrap_or_default().to_string(), claim.to_string())
            })
            .collect()
    }
}

impl Env {
    /// Live instances, asserting that no NodeClaim has two (nothing launched twice).
    pub async fn each_claim_once(&self) -> Vec<(String, String)> {
        let instances = self.instances().await;
        let mut claims: Vec<&String> = instances.iter().map(|(_, c)| c).collect();
        claims.sort();
        claims.dedup();
        assert_eq!(claims.len(), instances.len(), "a NodeClaim launched twice: {instances:?}");
        instances
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.stop_kubelet.send(true);
    }
}

/// Whether the server serves policy/v1 (1.21 and later) rather than only policy/v1beta1.
pub async fn policy_v1(client: &Client) -> bool {
    kube::discovery::group(client, "policy").await.map(|g| g.versions().any(|v| v == "v1")).unwrap_or(false)
}

/// Waits (async) until `check` holds, up to `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inflate_scales_up_through_create_fleet_and_back_down_when_empty() {
    let env = Env::new("inflate").await;
    env.deploy("inflate", 0, "1").await;
    // The daemon runs as deploy/'s ServiceAccount: the roles must be enough.
    let kubeconfig = deploy::service_account_kubeconfig(&env.client, env.dir.path()).await;
    let d: Daemon = start(&env.config_as("a", &kubeconfig, "capstan", &moto()));
    let addr = d.addr.clone();
    wait("the daemon to lead", Duration::from_secs(30), || status(&addr)["leader"] == true);
    wait("a policy in force", Duration::from_secs(30), || status(&addr)["appliedRevision"].is_string());

    env.scale("inflate", 16).await;
    eventually("16 pods Running", Duration::from_secs(120), || async { env.running("inflate").await == 16 }).await;
    let instances = env.each_claim_once().await;
    assert!(!instances.is_empty());
    let s = status(&addr);
    let launches = s["recentDecisions"].as_array().unwrap().iter().filter(|d| d["action"] == "launch").count();
    assert_eq!(launches, instances.len(), "{s}");
    // The pods were told which NodeClaim would serve them (events.k8s.io Events).
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), &env.namespace);
    let nominated: Vec<_> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Nominated"))
        .collect();
    assert!(!nominated.is_empty(), "no Nominated events");
    assert!(nominated.iter().all(|e| e.note.as_deref().is_some_and(|n| n.contains("NodeClaim"))));

    env.scale("inflate", 0).await;
    eventually("every instance terminated", Duration::from_secs(120), || async { env.instances().await.is_empty() })
        .await;
    eventually("the nodes removed", Duration::from_secs(30), || async {
        let ids: Vec<String> = instances.iter().map(|(i, _)| i.clone()).collect();
        let nodes = Api::<Node>::all(env.client.clone()).list(&ListParams::default()).await.unwrap().items;
        !nodes.iter().any(|n| n.metadata.name.as_ref().is_some_and(|x| ids.contains(x)))
    })
    .await;
    let s = status(&addr);
    let terminated = s["recentDecisions"].as_array().unwrap().iter().filter(|d| d["action"] == "terminate").count();
    assert_eq!(terminated, instances.len(), "{s}");
    // Each node was told why it went, with the policy revision.
    let revision = s["appliedRevision"].as_str().unwrap().to_string();
    let ids: Vec<String> = instances.iter().map(|(i, _)| i.clone()).collect();
    let node_events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), "default");
    let disrupted: Vec<_> = node_events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.clone()).is_some_and(|n| ids.contains(&n)))
        .collect();
    assert_eq!(disrupted.len(), ids.len(), "one DisruptionCordoned event per node: {disrupted:?}");
    assert!(disrupted.iter().all(|e| e.note.as_deref().is_some_and(|n| n.contains(&revision) && n.contains("empty"))));
    drop(d);
}
