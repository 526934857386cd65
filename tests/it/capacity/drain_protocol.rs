//! The node protocol under faults: marking a node for disruption is one write; when the API
//! server refuses it, nothing is drained, nothing is launched, and the disruption is decided
//! again later. No node is ever evicted from before its replacement is initialized, and no
//! node is ever cordoned without its replacements recorded.

use capstan::cluster::marks::{self, DisruptionMarks};

use super::*;

const UNDER_30S: &str = "    consolidationPolicy: WhenEmptyOrUnderutilized\n    consolidateAfter: 30s";

/// Two pods of `web` on one c6i node, then a policy change that makes the node drift: it is
/// replaced by a new node (one replacement recorded on it).
async fn drifting() -> Harness {
    let p = base(&[pool("general", &["c6i"], UNDER_30S, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&deployment("web", 2, "1", "", ""));
    assert!(h.until(300, |w| w.cluster.running("default", "web") == 2).await, "{}", h.timeline());
    assert_eq!(h.world.nodes(), 1);
    let changed = base(&[pool("general", &["c6i", "m6i"], UNDER_30S, "")], "  dryRun: false");
    h.lp.set_rules(rules(&changed, "main@sha1:0000000000000000000000000000000000000002"));
    h
}

/// The protocol's invariants on one snapshot: a tainted node carries its whole record, and a
/// node evicted from in this step had every recorded replacement initialized.
fn check(s: &Snapshot, events: &[LoopEvent]) {
    for n in s.nodes.iter().filter(|n| marks::disrupting(n)) {
        assert!(n.unschedulable, "node {} tainted but not cordoned", n.name);
        assert!(DisruptionMarks::read(n).is_some(), "node {} cordoned without its replacements recorded", n.name);
    }
    for e in events.iter().filter(|e| e.event == "evict") {
        let node = e.detail["node"].as_str().unwrap();
        let Some(drained) = s.node(node) else { continue };
        let record = DisruptionMarks::read(drained).expect("an evicted-from node is marked");
        for claim in &record.replacements {
            assert!(
                s.nodes.iter().any(|n| marks::claim(n) == Some(claim.as_str()) && marks::initialized(n)),
                "pod evicted from {node} before its replacement {claim} was initialized"
            );
        }
    }
}

#[tokio::test]
async fn a_refused_marking_drains_nothing_launches_nothing_and_is_retried() {
    let mut h = drifting().await;
    h.world.cluster.refuse_disruption_marks(true);
    let launches = h.count("launch");
    h.watch(120, |s, ev| {
        check(s, ev);
        assert_eq!(disrupting(s), 0, "a refused marking leaves no mark");
    })
    .await;
    assert_eq!(h.world.cluster.evictions(), 0, "{}", h.timeline());
    assert_eq!(h.count("evict") + h.count("terminate") + h.count("cordon"), 0, "{}", h.timeline());
    assert_eq!(h.count("launch"), launches, "no replacement launched for a node not marked: {}", h.timeline());
    assert_eq!(h.world.nodes(), 1);
    assert_eq!(h.running("web"), 2);
    let refused = h.world.cluster.disruption_marks_refused();
    assert!(refused >= 2, "the disruption is decided and tried again: {refused} tries\n{}", h.timeline());
    assert!(h.count("disruption-decision") >= 2, "{}", h.timeline());
    assert!(h.of("disruption-cancelled").iter().all(|e| e.message.contains("could not be marked")), "{}", h.timeline());

    // The API server takes the write again: the node is replaced, drained only after.
    h.world.cluster.refuse_disruption_marks(false);
    h.watch(600, check).await;
    assert_eq!(h.count("cordon"), 1, "{}", h.timeline());
    assert_eq!(h.count("terminate"), 1, "{}", h.timeline());
    assert_eq!(h.running("web"), 2);
    let ready = h.of("node-ready").last().unwrap().at;
    let cordoned = h.of("cordon")[0].at;
    let evicted = h.of("evict")[0].at;
    assert!(cordoned < ready && ready <= evicted, "{}", h.timeline());
}

#[tokio::test]
async fn a_node_left_tainted_without_its_record_is_given_back_not_drained() {
    // What the old two-write marking left when its second write failed: cordoned and tainted,
    // no replacements recorded.
    let p = base(&[pool("general", &["c6i"], UNDER_30S, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&deployment("web", 2, "1", "", ""));
    assert!(h.until(300, |w| w.cluster.running("default", "web") == 2).await, "{}", h.timeline());
    let node = h.world.cluster.snapshot().await.unwrap().nodes[0].name.clone();
    h.world
        .cluster
        .register(&node, &Default::default(), &[marks::disrupted_taint()], &Default::default())
        .await
        .unwrap();
    h.watch(5, |_, _| {}).await;
    assert_eq!(h.world.cluster.evictions(), 0, "{}", h.timeline());
    assert_eq!(h.count("terminate"), 0, "{}", h.timeline());
    let returned = h.of("disruption-cancelled");
    assert_eq!(returned.len(), 1, "{}", h.timeline());
    assert!(returned[0].message.contains("without its disruption record"), "{}", h.timeline());
    let s = h.world.cluster.snapshot().await.unwrap();
    assert_eq!(disrupting(&s), 0, "the taint is gone");
    assert!(!s.nodes[0].unschedulable);
}
