//! Scale-down: emptiness, consolidation, budgets, PodDisruptionBudgets and do-not-disrupt.

use super::*;

const EMPTY_30S: &str = "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30s";
const UNDER_30S: &str = "    consolidationPolicy: WhenEmptyOrUnderutilized\n    consolidateAfter: 30s";

#[tokio::test]
async fn an_empty_node_goes_after_consolidate_after() {
    let p = base(
        &[pool("general", &["c6i"], "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 2m", "")],
        "  dryRun: false",
    );
    let mut h = Harness::new(&p);
    h.apply(&deployment("inflate", 4, "1", "", ""));
    assert!(h.until(300, |w| w.cluster.running("default", "inflate") == 4).await);
    h.scale("inflate", 0);
    let emptied = h.world.now();
    assert!(h.until(600, |w| w.nodes() == 0).await, "{}", h.timeline());
    let decided = h.of("disruption-decision")[0];
    assert_eq!(decided.detail["reason"], "empty");
    let waited = decided.at - emptied;
    assert!(
        waited >= Duration::from_secs(120) && waited <= Duration::from_secs(131),
        "decided {waited:?} after emptying"
    );
    let gone = h.of("terminate")[0].at - decided.at;
    assert!(gone >= Duration::from_secs(15) && gone <= Duration::from_secs(22), "validated 15s later: {gone:?}");
}

#[tokio::test]
async fn two_half_empty_nodes_are_replaced_by_one_cheaper_node() {
    let budget = format!("{UNDER_30S}\n    budgets:\n      - nodes: \"2\"");
    let p = base(&[pool("general", &["c6i"], &budget, "")], "  consolidation:\n    utilizationThreshold: 0.5");
    let mut h = Harness::new(&p);
    // Two nodes of 8 vCPU, one per Deployment.
    h.apply(&deployment("a", 5, "1500m", "", ""));
    assert!(h.until(300, |w| w.cluster.running("default", "a") == 5).await, "{}", h.timeline());
    h.apply(&deployment("b", 5, "1500m", "", ""));
    assert!(h.until(300, |w| w.cluster.running("default", "b") == 5).await, "{}", h.timeline());
    assert_eq!(h.live_types(), ["c6i.2xlarge", "c6i.2xlarge"], "{}", h.timeline());
    // Both nodes drop to 19% used.
    h.scale("a", 1);
    h.scale("b", 1);
    let before = h.count("launch");
    assert!(
        h.until(600, |w| w.nodes() == 1
            && w.cluster.running("default", "a") == 1
            && w.cluster.running("default", "b") == 1)
            .await,
        "{}",
        h.timeline()
    );
    let decision = h.of("disruption-decision")[0];
    assert_eq!(decision.detail["reason"], "underutilized");
    assert_eq!(decision.detail["nodes"].as_array().unwrap().len(), 2, "{}", h.timeline());
    assert_eq!(decision.detail["replacements"].as_array().unwrap().len(), 1);
    assert!(decision.detail["savingsPerHour"].as_f64().unwrap() > 0.3);
    assert_eq!(h.count("launch"), before + 1, "exactly one replacement");
    let types = h.live_types();
    assert_eq!(types.len(), 1);
    assert_ne!(types[0], "c6i.2xlarge", "the replacement is smaller and cheaper");
    // The old nodes were cordoned at once, and drained only once the replacement was Ready.
    let ready = h.of("node-ready").last().unwrap().at;
    let cordoned = h.of("cordon")[0].at;
    let evicted = h.of("evict")[0].at;
    assert!(cordoned < ready && ready <= evicted, "{}", h.timeline());
}

#[tokio::test]
async fn budgets_limit_concurrent_disruptions() {
    let budget = format!("{EMPTY_30S}\n    budgets:\n      - nodes: \"2\"");
    let p = base(&[pool("general", &["c6i"], &budget, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&deployment("spread", 4, "1", &one_per_node("spread"), ""));
    assert!(h.until(300, |w| w.cluster.running("default", "spread") == 4).await, "{}", h.timeline());
    assert_eq!(h.world.nodes(), 4);
    h.scale("spread", 0);
    let mut most = 0;
    h.watch(400, |s, _| most = most.max(disrupting(s))).await;
    assert_eq!(h.world.nodes(), 0, "{}", h.timeline());
    assert_eq!(most, 2, "two nodes disrupted at a time, never more: {}", h.timeline());
    assert_eq!(h.count("disruption-decision"), 2, "{}", h.timeline());
}

#[tokio::test]
async fn a_pod_disruption_budget_holds_a_drain_until_it_allows() {
    // Drift makes the node go; the PDB lets only one of the two pods be down at a time.
    let p = base(&[pool("general", &["c6i"], UNDER_30S, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&format!(
        "{}---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {{name: web, namespace: default}}\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels: {{app: web}}\n",
        deployment("web", 2, "1", "", "")
    ));
    assert!(h.until(300, |w| w.cluster.running("default", "web") == 2).await, "{}", h.timeline());
    let changed = base(&[pool("general", &["c6i", "m6i"], UNDER_30S, "")], "  dryRun: false");
    h.lp.set_rules(rules(&changed, "main@sha1:0000000000000000000000000000000000000002"));
    let mut least = usize::MAX;
    h.watch(600, |s, _| {
        let running =
            s.pods.iter().filter(|p| p.name.starts_with("web-") && p.phase == capstan::cluster::Phase::Running).count();
        least = least.min(running);
    })
    .await;
    assert!(least >= 1, "the PDB's minAvailable held throughout");
    assert!(h.count("evict-blocked") >= 1, "{}", h.timeline());
    assert_eq!(h.count("terminate"), 1, "{}", h.timeline());
    assert_eq!(h.running("web"), 2);
}

#[tokio::test]
async fn do_not_disrupt_keeps_the_node_until_the_annotation_goes() {
    let p = base(&[pool("general", &["c6i"], UNDER_30S, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&deployment("batch", 1, "1", "", "karpenter.sh/do-not-disrupt: \"true\""));
    assert!(h.until(300, |w| w.cluster.running("default", "batch") == 1).await);
    let changed = base(&[pool("general", &["c6i", "m6i"], UNDER_30S, "")], "  dryRun: false");
    h.lp.set_rules(rules(&changed, "main@sha1:0000000000000000000000000000000000000002"));
    h.until(300, |_| false).await;
    assert_eq!(h.count("disruption-decision"), 0, "{}", h.timeline());
    assert_eq!(h.count("cordon"), 0);
    // The job is done: the annotation is removed, and the drifted node is replaced.
    let snap = h.world.cluster.snapshot().await.unwrap();
    let pod = snap.pods.iter().find(|p| p.name.starts_with("batch-")).unwrap();
    h.world.cluster.set_pod_do_not_disrupt("default", &pod.name, false);
    h.until(400, |_| false).await;
    assert_eq!(h.count("terminate"), 1, "{}", h.timeline());
    assert_eq!(h.running("batch"), 1);
}
