//! The hand-over from kOps's Karpenter on the real control plane. What kOps's Karpenter addon
//! leaves in a cluster — its Deployment, the NodePools kOps makes, the leader Lease its running
//! replica renews — keeps capstan from launching anything, and `/status` and `/readyz` say why;
//! once they are gone, capstan launches for the pods left pending, each pod served once.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::{Env, eventually};
use crate::daemon::{request, start, status, wait};

const NAMESPACE: &str = "kube-system";
const LEASE: &str = "karpenter-leader-election";

fn node_pools() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("karpenter.sh", "v1", "NodePool"))
}

/// The CRD kOps installs for NodePools (its schema trimmed to what the test writes).
fn node_pool_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "nodepools.karpenter.sh"},
        "spec": {"group": "karpenter.sh", "scope": "Cluster",
            "names": {"kind": "NodePool", "listKind": "NodePoolList", "plural": "nodepools", "singular": "nodepool"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    })
}

/// What kOps's Karpenter addon leaves in the cluster; removed again when dropped, so a failed
/// test does not keep the tests after it from launching.
struct Karpenter {
    client: Client,
    renewing: Option<tokio::task::JoinHandle<()>>,
}

impl Karpenter {
    /// The addon's Deployment (one replica, on the control plane, as kOps runs it) and a NodePool
    /// named after a `manager: Karpenter` InstanceGroup, labelled as kOps 1.36 labels it.
    async fn installed(client: &Client) -> Karpenter {
        let k = Karpenter { client: client.clone(), renewing: None };
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "karpenter", "namespace": NAMESPACE, "labels": {"k8s-addon": "karpenter.sh"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "karpenter"}},
                "template": {"metadata": {"labels": {"app.kubernetes.io/name": "karpenter", "app.kubernetes.io/instance": "karpenter"}},
                    "spec": {"nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
                        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}],
                        "containers": [{"name": "controller", "image": "public.ecr.aws/karpenter/controller:1.6.2"}]}}},
        });
        Api::<Deployment>::namespaced(client.clone(), NAMESPACE)
            .create(&PostParams::default(), &serde_json::from_value(d).unwrap())
            .await
            .unwrap();
        let crds: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &ApiResource::from_gvk(&GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition")),
        );
        match crds.create(&PostParams::default(), &serde_json::from_value(node_pool_crd()).unwrap()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("{e}"),
        }
        let pool: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            "metadata": {"name": "nodes-karpenter",
                "labels": {"addon.kops.k8s.io/name": "karpenter.sh", "app.kubernetes.io/managed-by": "kops"}},
            "spec": {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "nodes-karpenter"}}}},
        }))
        .unwrap();
        let pools: Api<DynamicObject> = Api::all_with(client.clone(), &node_pools());
        // The CRD is served a moment after it is created.
        eventually("the NodePool CRD served", Duration::from_secs(30), || async {
            match pools.create(&PostParams::default(), &pool).await {
                Ok(_) => true,
                Err(kube::Error::Api(s)) => s.code == 409,
                Err(_) => false,
            }
        })
        .await;
        k
    }

    /// Karpenter's elected replica: the Lease renewed every 2 s (leaseDurationSeconds 15, as
    /// client-go's default) until [`Karpenter::stop_renewing`].
    async fn lead(&mut self) {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), NAMESPACE);
        let lease = |rv: Option<String>| -> Lease {
            serde_json::from_value(json!({
                "metadata": {"name": LEASE, "namespace": NAMESPACE, "resourceVersion": rv},
                "spec": {"holderIdentity": "karpenter-6d8f7c9b5-x2x4q_0f1e", "leaseDurationSeconds": 15,
                    "renewTime": MicroTime(k8s_openapi::jiff::Timestamp::now())},
            }))
            .unwrap()
        };
        leases.create(&PostParams::default(), &lease(None)).await.unwrap();
        self.renewing = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Ok(current) = leases.get(LEASE).await {
                    let _ =
                        leases.replace(LEASE, &PostParams::default(), &lease(current.metadata.resource_version)).await;
                }
            }
        }));
    }

    /// The elected replica is gone: the Lease is left as it was, to expire.
    fn stop_renewing(&mut self) {
        if let Some(r) = self.renewing.take() {
            r.abort();
        }
    }

    async fn delete_node_pool(&self) {
        let pools: Api<DynamicObject> = Api::all_with(self.client.clone(), &node_pools());
        pools.delete("nodes-karpenter", &DeleteParams::default()).await.unwrap();
    }

    async fn delete_deployment(&self) {
        Api::<Deployment>::namespaced(self.client.clone(), NAMESPACE)
            .delete("karpenter", &DeleteParams::background())
            .await
            .unwrap();
    }
}

impl Drop for Karpenter {
    fn drop(&mut self) {
        self.stop_renewing();
        let client = self.client.clone();
        // Dropped inside the test's runtime, which cannot be blocked on: a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let dp = DeleteParams::background();
                let _ = Api::<Deployment>::namespaced(client.clone(), NAMESPACE).delete("karpenter", &dp).await;
                let _ = Api::<Lease>::namespaced(client.clone(), NAMESPACE).delete(LEASE, &dp).await;
                let _ = Api::<DynamicObject>::all_with(client, &node_pools()).delete("nodes-karpenter", &dp).await;
            });
        })
        .join();
    }
}

fn blocked_by(addr: &str) -> Vec<String> {
    let s = status(addr);
    s["blockedBy"].as_array().unwrap_or_else(|| panic!("no blockedBy: {s}")).iter().map(|r| r.to_string()).collect()
}

/// capstan waits (blockedBy names exactly `objects`, by their opening words), launches nothing,
/// and stays alive and ready (both replicas unready would block a control-plane drain), the
/// readiness body saying what it waits for.
async fn waits_for(env: &Env, addr: &str, objects: &[&str]) {
    let names = |reasons: &[String]| {
        objects.len() == reasons.len() && objects.iter().all(|o| reasons.iter().any(|r| r.contains(o)))
    };
    wait(&format!("blockedBy to name {objects:?}"), Duration::from_secs(30), || names(&blocked_by(addr)));
    // The reasons show from the first look; readiness once the policy is in force.
    wait("/readyz to answer 200", Duration::from_secs(30), || request(addr, "GET", "/readyz").0 == 200);
    let (code, body) = request(addr, "GET", "/readyz");
    assert_eq!(code, 200, "{body}");
    assert!(body.starts_with("ready, and waiting: "), "{body}");
    assert!(objects.iter().all(|o| body.contains(o)), "{body}");
    assert!(body.contains("spec.karpenter.enabled: false") || body.contains("kubectl delete nodepools"), "{body}");
    assert_eq!(request(addr, "GET", "/healthz").0, 200);
    assert!(env.instances().await.is_empty(), "capstan launched while Karpenter may act: {:?}", env.instances().await);
    let s = status(addr);
    assert!(s["recentDecisions"].as_array().is_none_or(|d| d.is_empty()), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_launched_until_karpenter_is_gone_then_each_pending_pod_once() {
    let env = Env::new("handover").await;
    env.deploy("inflate", 0, "1").await;
    let mut karpenter = Karpenter::installed(&env.client).await;
    let d = start(&env.config("a"));
    let addr = d.addr.clone();
    wait("a policy in force", Duration::from_secs(30), || status(&addr)["appliedRevision"].is_string());
    env.scale("inflate", 6).await;
    eventually("6 pods pending", Duration::from_secs(30), || async {
        let pods = Api::<Pod>::namespaced(env.client.clone(), &env.namespace);
        pods.list(&ListParams::default().labels("app=inflate")).await.unwrap().items.len() == 6
    })
    .await;

    // kOps made the Deployment and a NodePool; no replica has been elected yet.
    waits_for(&env, &addr, &["Karpenter runs as Deployment kube-system/karpenter", "NodePool(s) exist"]).await;
    // Its replica leads.
    karpenter.lead().await;
    waits_for(
        &env,
        &addr,
        &[
            "Karpenter holds Lease kube-system/karpenter-leader-election",
            "Karpenter runs as Deployment kube-system/karpenter",
            "NodePool(s) exist",
        ],
    )
    .await;
    // The hand-over: the NodePools and the Deployment deleted; the replica, still shutting
    // down, renews its Lease a while longer.
    karpenter.delete_node_pool().await;
    karpenter.delete_deployment().await;
    waits_for(&env, &addr, &["Karpenter holds Lease kube-system/karpenter-leader-election"]).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    waits_for(&env, &addr, &["Karpenter holds Lease kube-system/karpenter-leader-election"]).await;
    // It is gone: its Lease expires, and capstan takes over.
    karpenter.stop_renewing();
    eventually("6 pods Running", Duration::from_secs(120), || async { env.running("inflate").await == 6 }).await;
    wait("blockedBy empty", Duration::from_secs(10), || blocked_by(&addr).is_empty());
    assert_eq!(request(&addr, "GET", "/readyz").0, 200);

    // Each pod served once: one instance per NodeClaim, one launch decision per instance, and
    // every instance holds a pending pod it was launched for (none launched twice for one pod).
    let instances = env.each_claim_once().await;
    let s = status(&addr);
    let launches = s["recentDecisions"].as_array().unwrap().iter().filter(|x| x["action"] == "launch").count();
    assert_eq!(launches, instances.len(), "{s}");
    let pods = Api::<Pod>::namespaced(env.client.clone(), &env.namespace)
        .list(&ListParams::default().labels("app=inflate"))
        .await
        .unwrap()
        .items;
    let bound: Vec<String> = pods.iter().filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone())).collect();
    for (id, claim) in &instances {
        assert!(bound.contains(id), "instance {id} (NodeClaim {claim}) serves no pod: {bound:?}");
    }

    // capstan's Lease tells the story in Events.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), "default");
    let lease = format!("capstan-{}", env.kops);
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(lease.as_str()))
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.iter().any(|r| r == "AnotherAutoscaler"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "HandedOver"), "{reasons:?}");
    drop(karpenter);
    drop(d);
}
