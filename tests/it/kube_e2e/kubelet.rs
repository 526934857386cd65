//! The test's kubelet and cloud controller: every instance capstan launches in moto becomes a
//! Ready Node (providerID `aws:///<zone>/<id>`, capacity from its type); bound pods are marked
//! Running; pods being deleted are removed (there is no real kubelet to confirm it); the Node of
//! a terminated instance is deleted.

use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use capstan::scheduling::allocatable::{KubeletSettings, allocatable};
use capstan::scheduling::builtin;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::watch;

async fn instances(ec2: &aws_sdk_ec2::Client, cluster: &str) -> Vec<(String, String, String, String)> {
    let out = ec2
        .describe_instances()
        .filters(Filter::builder().name("tag-key").values(format!("kubernetes.io/cluster/{cluster}")).build())
        .send()
        .await
        .unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_string(),
                i.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                i.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_string(),
                i.state().and_then(|s| s.name()).map(|s| s.as_str().to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

async fn join(nodes: &Api<Node>, id: &str, instance_type: &str, zone: &str) {
    let catalog = builtin::catalog();
    let Some(t) = catalog.get(instance_type) else { return };
    let alloc = allocatable(t, &KubeletSettings::default());
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": id, "labels": {
            "node.kubernetes.io/instance-type": instance_type,
            "topology.kubernetes.io/zone": zone,
            "kubernetes.io/arch": t.arch, "kubernetes.io/os": "linux", "kubernetes.io/hostname": id}},
        "spec": {"providerID": format!("aws:///{zone}/{id}")},
    });
    let node: Node = serde_json::from_value(node).unwrap();
    if nodes.create(&PostParams::default(), &node).await.is_err() {
        return;
    }
    let status = json!({"status": {
        "capacity": {"cpu": t.vcpu.to_string(), "memory": format!("{}Mi", t.memory_mib), "pods": alloc.pods.to_string()},
        "allocatable": {"cpu": format!("{}m", alloc.cpu), "memory": alloc.memory.to_string(), "pods": alloc.pods.to_string()},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "test kubelet",
                        "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    }});
    let _ = nodes.patch_status(id, &PatchParams::default(), &Patch::Merge(&status)).await;
}

async fn pass(client: &Client, ec2: &aws_sdk_ec2::Client, cluster: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    let existing: Vec<Node> = nodes.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
    for (id, t, zone, state) in instances(ec2, cluster).await {
        let present = existing.iter().any(|n| n.metadata.name.as_deref() == Some(&id));
        match state.as_str() {
            "running" | "pending" if !present => join(&nodes, &id, &t, &zone).await,
            "terminated" | "shutting-down" if present => {
                let _ = nodes.delete(&id, &DeleteParams::default()).await;
            }
            _ => {}
        }
    }
    // Taints the API server's admission puts on a new Node until its lifecycle controller
    // (not running here) sees it Ready.
    for n in &existing {
        let taints = n.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        if taints.iter().any(|t| t.key.starts_with("node.kubernetes.io/not-ready")) {
            let kept: Vec<_> = taints.iter().filter(|t| !t.key.starts_with("node.kubernetes.io/not-ready")).collect();
            let name = n.metadata.name.clone().unwrap_or_default();
            let _ =
                nodes.patch(&name, &PatchParams::default(), &Patch::Merge(&json!({"spec": {"taints": kept}}))).await;
        }
    }
    let pods: Api<Pod> = Api::all(client.clone());
    for p in pods.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default() {
        let (ns, name) =
            (p.metadata.namespace.clone().unwrap_or_default(), p.metadata.name.clone().unwrap_or_default());
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        if p.metadata.deletion_timestamp.is_some() {
            let _ = api.delete(&name, &DeleteParams::default().grace_period(0)).await;
            continue;
        }
        let bound = p.spec.as_ref().and_then(|s| s.node_name.clone()).is_some();
        let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if bound && !running {
            let status = json!({"status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}});
            let _ = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await;
        }
    }
}

/// Plays the kubelet until `stop` turns true.
pub async fn run(client: Client, ec2: aws_sdk_ec2::Client, cluster: String, mut stop: watch::Receiver<bool>) {
    loop {
        pass(&client, &ec2, &cluster).await;
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}
