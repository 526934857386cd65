//! A spot interruption warning end to end: `capstan run` reads its SQS queue (moto), launches the
//! replacement, cordons the node and moves its pods at once; the node is empty before EC2 (here
//! the test) takes the instance, well inside the two minutes the warning gives.

use std::time::{Duration, Instant};

use capstan::cloud::aws::sqs;
use capstan::cloud::interruption::spot_warning;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};

use super::{Env, eventually};
use crate::aws_catalog::moto;
use crate::daemon::{start, status, wait};

/// Pods of `app` bound to `node`, not being deleted.
async fn pods_on(env: &Env, app: &str, node: &str) -> usize {
    let api: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
    let pods = api.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap().items;
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spot_warning_moves_the_pods_before_the_instance_goes() {
    let env = Env::new("interrupt").await;
    let queue = format!("{}-nth", env.kops.replace('.', "-"));
    let sqs = sqs::client(Some("us-east-1".into()), Some(moto())).await;
    let url = sqs.create_queue().queue_name(&queue).send().await.unwrap().queue_url().unwrap().to_string();
    let config = env.config("a");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("  interruption:\n    queue: {queue}\n    endpoint: {}\n", moto()));
    std::fs::write(&config, text).unwrap();
    env.deploy("web", 2, "1").await;
    let d = start(&config);
    let addr = d.addr.clone();
    wait("the daemon to lead", Duration::from_secs(30), || status(&addr)["leader"] == true);
    eventually("2 pods Running", Duration::from_secs(120), || async { env.running("web").await == 2 }).await;
    let before = env.each_claim_once().await;
    let mut old = None;
    for (id, _) in &before {
        if pods_on(&env, "web", id).await > 0 {
            old = Some(id.clone());
        }
    }
    let old = old.expect("a node with pods");

    let warned = Instant::now();
    let body = spot_warning(&old, "us-east-1", "2026-11-30T12:00:00Z");
    sqs.send_message().queue_url(&url).message_body(body).send().await.unwrap();
    let nodes: Api<Node> = Api::all(env.client.clone());
    eventually("the node cordoned", Duration::from_secs(30), || async {
        nodes.get(&old).await.is_ok_and(|n| n.spec.and_then(|s| s.unschedulable) == Some(true))
    })
    .await;
    eventually("a replacement launched", Duration::from_secs(10), || async {
        env.instances().await.iter().any(|(id, _)| !before.iter().any(|(b, _)| b == id))
    })
    .await;
    eventually("the pods off the node", Duration::from_secs(60), || async { pods_on(&env, "web", &old).await == 0 })
        .await;
    let drained = warned.elapsed();
    eventually("2 pods Running elsewhere", Duration::from_secs(60), || async { env.running("web").await == 2 }).await;
    let moved = warned.elapsed();
    // EC2 takes the instance (unless capstan already terminated its empty node).
    let _ = env.ec2.terminate_instances().instance_ids(&old).send().await;
    assert!(drained < Duration::from_secs(60), "drained {drained:?} after the warning");
    assert!(moved < Duration::from_secs(120), "pods running again {moved:?} after the warning");
    let s = status(&addr);
    let decisions = s["recentDecisions"].as_array().unwrap();
    let replaced: Vec<_> = decisions.iter().filter(|d| d["action"] == "interruption-replace").collect();
    assert_eq!(replaced.len(), 1, "{s}");
    assert_eq!(replaced[0]["instance"], old.as_str());
    assert_eq!(replaced[0]["reason"], "spot-interruption");
    assert_eq!(decisions.iter().filter(|d| d["reason"] == "replace-interrupted").count(), 1, "{s}");
    env.each_claim_once().await;
    // The message was deleted once acted on.
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let a = attrs.attributes().unwrap();
    assert_eq!(a.get(&A::ApproximateNumberOfMessages).map(String::as_str), Some("0"));
    assert_eq!(a.get(&A::ApproximateNumberOfMessagesNotVisible).map(String::as_str), Some("0"));
    drop(d);
}
