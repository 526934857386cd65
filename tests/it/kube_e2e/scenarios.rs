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
    env.each_claim_once().await;
    let launched = status(&survivor)["recentDecisions"]
        .as_array()
        .map_or(0, |d| d.iter().filter(|x| x["action"] == "launch").count());
    assert!(launched >= 1, "the new leader launched for the new pods");
    drop(replicas);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_ec2_answers_and_throttling_launch_nothing_twice() {
    let env = Env::new("faults").await;
    env.deploy("inflate", 0, "1").await;
    let upstream = crate::aws_catalog::moto().trim_start_matches("http://").to_string();
    let proxy = crate::fault_proxy::start(&upstream).await;
    let d = start(&env.config_as("a", std::path::Path::new(&super::kubeconfig()), "default", &proxy.url));
    let addr = d.addr.clone();
    wait("a policy in force", Duration::from_secs(30), || status(&addr)["appliedRevision"].is_string());
    {
        let mut f = proxy.faults.lock().unwrap();
        // CreateFleet is carried out but its answers are lost; reads are throttled.
        f.drop_answer.insert("CreateFleet".into(), 2);
        f.throttle.insert("DescribeInstances".into(), 3);
    }
    env.scale("inflate", 12).await;
    eventually("12 pods Running", Duration::from_secs(150), || async { env.running("inflate").await == 12 }).await;
    env.each_claim_once().await;
    let f = proxy.faults.lock().unwrap();
    assert_eq!(f.drop_answer.get("CreateFleet").copied(), Some(0), "both answers were dropped");
    assert!(f.seen.get("CreateFleet").copied().unwrap_or(0) >= 2, "{:?}", f.seen);
    drop(d);
}

/// Kills the test API server and starts it again with the same arguments and etcd.
async fn restart_api_server(down_for: Duration) {
    let run = std::path::PathBuf::from(
        std::env::var("CAPSTAN_TEST_KUBE_RUN").expect("CAPSTAN_TEST_KUBE_RUN is set by scripts/test.sh"),
    );
    let pid = std::fs::read_to_string(run.join("apiserver.pid")).unwrap().trim().to_string();
    std::process::Command::new("kill").args(["-9", &pid]).status().unwrap();
    tokio::time::sleep(down_for).await;
    // Started in the background by a shell that exits at once, so the server outlives the test
    // and the harness stops it by its pid file.
    let script = run.join("apiserver.sh");
    let out = std::process::Command::new("bash")
        .args(["-c", &format!("bash '{}' </dev/null >/dev/null 2>&1 & echo $!", script.display())])
        .output()
        .unwrap();
    std::fs::write(run.join("apiserver.pid"), String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    eventually("the API server back", Duration::from_secs(60), || async {
        let c = super::client().await;
        Api::<k8s_openapi::api::core::v1::Namespace>::all(c).list(&ListParams::default()).await.is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_restart_is_survived_and_nothing_is_launched_twice() {
    let env = Env::new("restart").await;
    env.deploy("inflate", 0, "1").await;
    let d = start(&env.config("a"));
    let addr = d.addr.clone();
    wait("a policy in force", Duration::from_secs(30), || status(&addr)["appliedRevision"].is_string());
    env.scale("inflate", 4).await;
    eventually("4 pods Running", Duration::from_secs(120), || async { env.running("inflate").await == 4 }).await;

    restart_api_server(Duration::from_secs(5)).await;
    assert!(status(&addr)["cluster"] == "e2e", "the daemon kept serving through the outage");
    env.scale("inflate", 14).await;
    eventually("14 pods Running after the restart", Duration::from_secs(150), || async {
        env.running("inflate").await == 14
    })
    .await;
    env.each_claim_once().await;
    let s = status(&addr);
    assert_eq!(s["leader"], true, "{s}");
    drop(d);
}
