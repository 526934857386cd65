//! A policy commit that changes the AMI makes every node of the class drift; they are rolled
//! one at a time within the pool's budget, and the decisions carry the new revision.

use capstan::capacity::DecisionLog;
use capstan::kops::any::Store;
use capstan::kops::decisions;
use capstan::kops::s3::S3Options;

use super::*;

const OLD: &str = "main@sha1:1111111111111111111111111111111111111111";
const NEW: &str = "main@sha1:2222222222222222222222222222222222222222";

fn repo(ami: &str) -> EffectivePolicy {
    let disruption =
        "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30s\n    budgets:\n      - nodes: \"1\"";
    let class = CLASS.replace("al2023@latest", ami);
    policy(&[
        ("base/nodeclasses/default.yaml", class),
        ("base/nodepools/general.yaml", pool("general", &["c6i"], disruption, "")),
        ("base/policy.yaml", cluster_policy("  dryRun: false")),
    ])
}

#[tokio::test]
async fn a_new_ami_rolls_every_node_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let store = Store::open(&url, &S3Options::default()).await.unwrap();
    let world = World::new("test.example.com", START);
    let lp = world
        .capacity_loop(rules(&repo("al2023@v20250101"), OLD))
        .with_decision_log(DecisionLog { store, kops_name: "test.example.com".into() });
    let mut h = Harness { world, lp, events: Vec::new() };
    h.apply(&deployment("web", 3, "1", &one_per_node("web"), ""));
    assert!(h.until(300, |w| w.cluster.running("default", "web") == 3).await, "{}", h.timeline());
    let old_ids: Vec<String> = h.world.cloud.instances().into_iter().map(|i| i.id).collect();
    assert_eq!(old_ids.len(), 3);

    h.lp.set_rules(rules(&repo("al2023@v20250301"), NEW));
    let mut most = 0;
    let mut fewest_running = usize::MAX;
    h.watch(1500, |s, _| {
        most = most.max(disrupting(s));
        let running =
            s.pods.iter().filter(|p| p.name.starts_with("web-") && p.phase == capstan::cluster::Phase::Running).count();
        fewest_running = fewest_running.min(running);
    })
    .await;
    assert_eq!(most, 1, "budget of one node: {}", h.timeline());
    assert!(fewest_running >= 2, "replacements come up before a node is drained");
    let live: Vec<_> = h
        .world
        .cloud
        .instances()
        .into_iter()
        .filter(|i| i.state != capstan::cloud::provider::InstanceState::Terminated)
        .collect();
    assert_eq!(live.len(), 3, "{}", h.timeline());
    assert!(live.iter().all(|i| !old_ids.contains(&i.id)), "every old node replaced");
    assert!(
        live.iter()
            .all(|i| i.tags.get(capstan::cloud::provider::tags::POLICY_REVISION).map(String::as_str) == Some(NEW))
    );
    assert_eq!(h.running("web"), 3);

    let store = Store::open(&url, &S3Options::default()).await.unwrap();
    let (log, _) = decisions::read(&store, "test.example.com").await.unwrap();
    let drifted: Vec<_> = log.iter().filter(|d| d.action == "terminate" && d.reason == "drifted").collect();
    assert_eq!(drifted.len(), 3);
    assert!(drifted.iter().all(|d| d.caused_by("2222222222222222222222222222222222222222")));
    let first: Vec<_> = log.iter().filter(|d| d.action == "launch" && d.reason == "provisioning").collect();
    assert!(first.iter().all(|d| d.caused_by("1111111111111111111111111111111111111111")));
}
