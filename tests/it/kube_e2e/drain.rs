//! The node protocol on the real API server: marking a node for disruption is one merge patch
//! (cordon, taint and record together). When the server refuses it (an identity without
//! `patch` on nodes, a node that does not exist), nothing of it lands and the drain steps
//! drain nothing; when the server takes it, all of it lands at once.

use std::sync::Arc;
use std::time::Duration;

use capstan::clock::SystemClock;
use capstan::cloud::provider::{Instance, InstanceState};
use capstan::cluster::kube::KubeCluster;
use capstan::cluster::marks::{self, DisruptionMarks};
use capstan::cluster::{ClusterApi, ClusterError, Snapshot};
use capstan::disruption::drain::{ReturnCause, Step, steps};
use capstan::scheduling::catalog::CapacityType;
use k8s_openapi::api::core::v1::{Node, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{client, eventually, kubeconfig};

/// Creates `value` as a `K`; one left by an earlier run is fine.
async fn ensure<K>(api: &Api<K>, value: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(value).unwrap();
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("{e}"),
    }
}

/// A client for a ServiceAccount that may read everything `KubeCluster` watches and get
/// nodes, but not patch them: its marking write is refused with 403.
async fn read_only_client(admin: &Client) -> Client {
    let name = "capstan-e2e-read-only";
    ensure(
        &Api::<ClusterRole>::all(admin.clone()),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["get", "list", "watch"]},
        ]}),
    )
    .await;
    ensure(
        &Api::<ServiceAccount>::namespaced(admin.clone(), "default"),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": "default"}}),
    )
    .await;
    ensure(
        &Api::<ClusterRoleBinding>::all(admin.clone()),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "default"}]}),
    )
    .await;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "default");
    let mut token = None;
    for _ in 0..100 {
        let sa = sas.get(name).await.unwrap();
        if let Some(secret) = sa.secrets.iter().flatten().find_map(|r| r.name.clone())
            && let Ok(s) = secrets.get(&secret).await
            && let Some(t) = s.data.as_ref().and_then(|d| d.get("token"))
        {
            token = Some(String::from_utf8(t.0.clone()).unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let token = token.expect("the controller manager issues the ServiceAccount's token");
    let admin_config = std::fs::read_to_string(kubeconfig()).unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(
        &admin_config.replace("token: capstan-admin-token", &format!("token: {token}")),
    )
    .unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    Client::try_from(cfg).unwrap()
}

/// A Ready node capstan launched and initialized for `claim`, with one bare pod bound to it.
async fn capstan_node(admin: &Client, name: &str, claim: &str) {
    let nodes: Api<Node> = Api::all(admin.clone());
    let _ = nodes.delete(name, &DeleteParams::default()).await;
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name,
            "labels": {marks::NODE_POOL: "e2e-marks", "kubernetes.io/hostname": name},
            "annotations": {marks::CLAIM: claim, marks::INITIALIZED: "true"}},
        "spec": {"providerID": format!("aws:///us-east-1a/{name}")},
    });
    nodes.create(&PostParams::default(), &serde_json::from_value(node).unwrap()).await.unwrap();
    let status = json!({"status": {
        "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "test",
                        "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    }});
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": name, "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "pause", "image": "pause", "resources": {"requests": {"cpu": "100m"}}}]}});
    let _ = pods.delete(name, &DeleteParams::default().grace_period(0)).await;
    eventually("the old pod gone", Duration::from_secs(30), || async { pods.get_opt(name).await.unwrap().is_none() })
        .await;
    pods.create(&PostParams::default(), &serde_json::from_value(pod).unwrap()).await.unwrap();
}

async fn remove(admin: &Client, name: &str) {
    let _ =
        Api::<Pod>::namespaced(admin.clone(), "default").delete(name, &DeleteParams::default().grace_period(0)).await;
    let _ = Api::<Node>::all(admin.clone()).delete(name, &DeleteParams::default()).await;
}

/// The instance the node runs on, and the replacement `claim` still launching.
fn instances(node: &str, replacement: &str) -> Vec<Instance> {
    let instance = |id: &str, claim: &str, state| Instance {
        id: id.into(),
        claim: claim.into(),
        node_pool: "e2e-marks".into(),
        instance_type: "c6i.large".into(),
        zone: "us-east-1a".into(),
        capacity_type: CapacityType::OnDemand,
        price: 0.085,
        state,
        launched_at: Duration::ZERO,
        tags: Default::default(),
    };
    vec![instance(node, "old", InstanceState::Running), instance("i-0replacement", replacement, InstanceState::Pending)]
}

fn drained(steps: &[Step], node: &str) -> bool {
    steps.iter().any(|s| match s {
        Step::Evict { node: n, .. } | Step::Terminate { node: n, .. } => n == node,
        Step::Return { .. } => false,
    })
}

async fn seen(cluster: &KubeCluster, what: &str, check: impl Fn(&Snapshot) -> bool) -> Snapshot {
    eventually(what, Duration::from_secs(30), || async { check(&cluster.snapshot().await.unwrap()) }).await;
    cluster.snapshot().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_marking_writes_nothing_and_nothing_is_drained() {
    let _serial = super::SERIAL.lock().await;
    let admin = client().await;
    let name = format!("i-0marks{}", std::process::id());
    capstan_node(&admin, &name, "old").await;
    let marks = DisruptionMarks {
        reason: "drifted".into(),
        revision: "main@sha1:0000000000000000000000000000000000000002".into(),
        replacements: vec!["replacement".into()],
    };

    // Refused: an identity that may read nodes but not patch them.
    let refused =
        KubeCluster::start(read_only_client(&admin).await, "e2e-read-only", Arc::new(SystemClock)).await.unwrap();
    let s =
        seen(&refused, "the node and its pod listed", |s| s.node(&name).is_some() && s.pods_on(&name).next().is_some())
            .await;
    let err = refused.mark_for_disruption(&name, &marks).await.unwrap_err();
    assert!(matches!(err, ClusterError::Api(_)), "{err:?}");
    // Nothing of the write landed, so the drain does nothing with the node.
    let node = Api::<Node>::all(admin.clone()).get(&name).await.unwrap();
    let spec = node.spec.clone().unwrap_or_default();
    assert_ne!(spec.unschedulable, Some(true), "cordoned by a refused write");
    assert!(!spec.taints.iter().flatten().any(|t| t.key == marks::DISRUPTED_TAINT), "tainted by a refused write");
    assert!(
        !node.metadata.annotations.iter().flatten().any(|(k, _)| k.starts_with(marks::DISRUPTION_PREFIX)),
        "annotated by a refused write"
    );
    assert_eq!(steps(&s, &instances(&name, "replacement")), []);
    assert_eq!(steps(&refused.snapshot().await.unwrap(), &[]), []);

    // A node that does not exist: NotFound, and no Node is created by the write.
    let ghost = format!("{name}-ghost");
    let admin_cluster = KubeCluster::start(admin.clone(), "e2e-admin", Arc::new(SystemClock)).await.unwrap();
    let err = admin_cluster.mark_for_disruption(&ghost, &marks).await.unwrap_err();
    assert!(matches!(err, ClusterError::NotFound(_)), "{err:?}");
    assert!(Api::<Node>::all(admin.clone()).get_opt(&ghost).await.unwrap().is_none());

    // Taken: one patch cordons, taints and records; the drain waits for the replacement.
    admin_cluster.mark_for_disruption(&name, &marks).await.unwrap();
    let s = seen(&admin_cluster, "the marks in the snapshot", |s| s.node(&name).is_some_and(marks::disrupting)).await;
    let n = s.node(&name).unwrap();
    assert!(n.unschedulable);
    assert_eq!(DisruptionMarks::read(n), Some(marks.clone()));
    let waiting = steps(&s, &instances(&name, "replacement"));
    assert!(!drained(&waiting, &name), "drained before its replacement exists: {waiting:?}");
    assert_eq!(waiting, []);
    // The replacement never launched: the node is given back, not drained.
    assert_eq!(
        steps(&s, &[]),
        [Step::Return { node: name.clone(), cause: ReturnCause::ReplacementLost("replacement".into()) }]
    );
    admin_cluster.uncordon(&name).await.unwrap();
    let s = seen(&admin_cluster, "the marks gone", |s| s.node(&name).is_some_and(|n| !marks::disrupting(n))).await;
    let n = s.node(&name).unwrap();
    assert!(!n.unschedulable);
    assert_eq!(DisruptionMarks::read(n), None);
    remove(&admin, &name).await;
}
