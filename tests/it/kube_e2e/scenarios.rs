//! Disruption and high availability on the real control plane: a policy commit drifts the
//! nodes, a PodDisruptionBudget paces the drain, a do-not-disrupt pod keeps its node; two
//! replicas elect one leader, and the survivor takes over when it dies.

use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use super::{Env, eventually};
use crate::daemon::{start, status, wait};
use crate::gitops::git;

async fn node_of(env: &Env, app: &str) -> Vec<String> {
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(env.client.clone(), &env.namespace);
    let pods = api.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap().items;
    pods.iter().filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone())).collect()
}

fn commit(env: &Env, file: &str, text: &str, message: &str) {
    let repo = env.dir.path().join("repo");
    std::fs::write(repo.join(file), text).unwrap();
    git(&repo, &["-c", "user.name=E2E", "-c", "user.email=e2e@example.com", "commit", "-q", "-am", message]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_drains_through_the_eviction_api_within_the_pdb_and_spares_do_not_disrupt() {
    let env = Env::new("drift").await;
    let d = start(&env.config("a"));
    let addr = d.addr.clone();
    wait("a policy in force", Duration::from_secs(30), || status(&addr)["appliedRevision"].is_string());
    // A job that must not be interrupted, on its own node.
    env.deploy_annotated("batch", 1, "1500m", json!({"karpenter.sh/do-not-disrupt": "true"})).await;
    eventually("batch Running", Duration::from_secs(90), || async { env.running("batch").await == 1 }).await;
    let batch_node = node_of(&env, "batch").await;
    // Two web pods behind a PDB that lets one be down at a time.
    env.deploy("web", 2, "1").await;
    let version = if super::policy_v1(&env.client).await { "v1" } else { "v1beta1" };
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("policy", version, "PodDisruptionBudget"));
    let pdb: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("policy/{version}"), "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": env.namespace},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}
    }))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(env.client.clone(), &env.namespace, &ar)
        .create(&PostParams::default(), &pdb)
        .await
        .unwrap();
    eventually("web Running", Duration::from_secs(90), || async { env.running("web").await == 2 }).await;
    let web_nodes = node_of(&env, "web").await;
    assert!(
        web_nodes.iter().all(|n| !batch_node.contains(n)),
        "web shares the batch node: {web_nodes:?} {batch_node:?}"
    );

    // A policy commit: the EC2NodeClass changes, every node drifts.
    let class = std::fs::read_to_string(env.dir.path().join("repo/base/nodeclasses/nodes.yaml")).unwrap();
    commit(&env, "base/nodeclasses/nodes.yaml", &class.replace("echo nodeup", "echo nodeup v2"), "New bootstrap");
    let mut fewest = usize::MAX;
    let started = Instant::now();
    loop {
        fewest = fewest.min(env.running("web").await);
        let now: Vec<String> = env.instances().await.into_iter().map(|(id, _)| id).collect();
        let replaced = web_nodes.iter().all(|n| !now.contains(n));
        if replaced && env.running("web").await == 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "web nodes not replaced: {now:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(fewest >= 1, "the PDB's minAvailable held");
    let s = status(&addr);
    let decisions = s["recentDecisions"].as_array().unwrap();
    let drifted: Vec<_> = decisions.iter().filter(|x| x["action"] == "disrupt" && x["reason"] == "drifted").collect();
    assert!(!drifted.is_empty(), "{s}");
    assert!(
        drifted.iter().all(|x| !batch_node.iter().any(|b| x["object"] == format!("Node/{b}"))),
        "the do-not-disrupt node was disrupted: {s}"
    );
    // The batch node is still there, in service.
    let now: Vec<String> = env.instances().await.into_iter().map(|(id, _)| id).collect();
    assert!(batch_node.iter().all(|n| now.contains(n)), "{now:?} lost {batch_node:?}");
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_leader_and_failover_within_15_seconds() {
    let env = Env::new("ha").await;
    env.deploy("inflate", 0, "1").await;
    let mut replicas = vec![start(&env.config("a")), start(&env.config("b"))];
    let leader = |addr: &str| status(addr)["leader"] == true;
    wait("one leader", Duration::from_secs(30), || leader(&replicas[0].addr) ^ leader(&replicas[1].addr));
    let lead = if leader(&replicas[0].addr) { 0 } else { 1 };
    let survivor = replicas[1 - lead].addr.clone();
    assert!(!leader(&survivor));
    env.scale("inflate", 4).await;
    eventually("4 pods Running", Duration::from_secs(120), || async { env.running("inflate").await == 4 }).await;
    let follower_decisions = status(&survivor)["recentDecisions"].as_array().map_or(0, Vec::len);
    assert_eq!(follower_decisions, 0, "the follower decided nothing");

    // The leader dies without a goodbye.
    replicas[lead].child.kill().unwrap();
    let _ = replicas[lead].child.wait();
    let t0 = Instant::now();
    wait("the survivor to lead", Duration::from_secs(20), || leader(&survivor));
    let took = t0.elapsed();
    assert!(took <= Duration::from_secs(15), "failover took {took:?}");
    // More than the first nodes can hold, so the new leader must launch.
    env.scale("inflate", 20).await;
    eventually("20 pods Running", Duration::from_secs(120), || async { env.running("inflate").await == 20 }).await;
    let instances = env.instances().await;
    let mut claims: Vec<String> = instances.iter().map(|(_, c)| c.clone()).collect();
    claims.sort();
    let n = claims.len();
    claims.dedup();
    assert_eq!(claims.len(), n, "a NodeClaim launched twice: {instances:?}");
    let launched = status(&survivor)["recentDecisions"]
        .as_array()
        .map_or(0, |d| d.iter().filter(|x| x["action"] == "launch").count());
    assert!(launched >= 1, "the new leader launched for the new pods");
    drop(replicas);
}
