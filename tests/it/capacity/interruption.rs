//! Interruption notices: a spot warning in the simulated queue is acted on in the pass that reads
//! it (replacement launched, node cordoned and drained at once, the offering avoided) and the
//! node is empty before EC2 takes it two minutes later; what cannot be read is deleted once; a
//! failed action leaves the message for later; a rebalance recommendation under `record` is
//! only recorded. Then the pure decision, on builders.

use std::time::Duration;

use capstan::app::config::RebalancePolicy;
use capstan::cloud::OfferingKey;
use capstan::cloud::interruption::{Event, Kind, Notice, parse, spot_warning};
use capstan::cloud::provider::InstanceState;
use capstan::cluster::Phase;
use capstan::disruption::interrupt::{Action, decide};
use capstan::scheduling::catalog::CapacityType;

use super::*;
use crate::disruption::{Case, node};

fn spot_policy() -> EffectivePolicy {
    let disruption = "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 60s";
    let spot = pool("spot", &["c6i", "m6i", "c6a", "m6a"], disruption, "").replace("[on-demand]", "[spot]");
    base(&[spot], "  dryRun: false")
}

/// A harness with `web` (3 pods of 1 cpu, one per spot node as the cheapest spot type holds
/// one) running, and the instance of one of its nodes.
async fn running(rebalance: RebalancePolicy) -> (Harness, capstan::cloud::provider::Instance) {
    let mut h = Harness::new(&spot_policy());
    h.lp = h
        .world
        .capacity_loop(rules(&spot_policy(), "main@sha1:0000000000000000000000000000000000000001"))
        .with_rebalance(rebalance);
    h.apply(&deployment("web", 3, "1", "", ""));
    assert!(h.until(300, |w| w.cluster.running("default", "web") == 3).await, "{}", h.timeline());
    let live = h.world.cloud.current();
    assert!(!live.is_empty(), "{}", h.timeline());
    assert!(live.iter().all(|i| i.capacity_type == CapacityType::Spot));
    (h, live[0].clone())
}

fn decisions(h: &Harness, action: &str) -> usize {
    h.lp.status().recent_decisions.iter().filter(|d| d.action == action).count()
}

fn replacement_launches(h: &Harness) -> usize {
    h.lp.status().recent_decisions.iter().filter(|d| d.action == "launch" && d.reason == "replace-interrupted").count()
}

#[tokio::test]
async fn a_spot_warning_replaces_and_drains_the_node_before_it_goes() {
    let (mut h, old) = running(RebalancePolicy::Replace).await;
    let t0 = h.world.now();
    h.world.cloud.interrupt(&old.id);
    assert_eq!(h.world.cloud.queued(), 1);

    // The pass that reads the warning: the node is cordoned and its replacement launched.
    let ev = h.world.step(&mut h.lp).await;
    h.events.extend(ev);
    assert_eq!(h.world.cloud.queued(), 0, "the warning is deleted once acted on");
    assert_eq!(replacement_launches(&h), 1, "{}", h.timeline());
    assert_eq!(decisions(&h, "interruption-replace"), 1);
    let snap = h.world.cluster.snapshot().await.unwrap();
    let n = snap.nodes.iter().find(|n| n.instance_id() == Some(old.id.as_str())).unwrap();
    assert!(n.unschedulable && capstan::disruption::candidate::disrupting(n));
    let interrupted = OfferingKey::new(&old.instance_type, &old.zone, CapacityType::Spot);
    let launched: Vec<_> = h.world.cloud.current().into_iter().filter(|i| i.launched_at == t0).collect();
    let [new] = launched.as_slice() else {
        panic!("one replacement launched in the pass: {:?} {}", h.world.cloud.current(), h.timeline())
    };
    let new = new.clone();
    assert_ne!(OfferingKey::new(&new.instance_type, &new.zone, new.capacity_type), interrupted, "offering avoided");
    let d = h.lp.status().recent_decisions.iter().find(|d| d.action == "interruption-replace").unwrap();
    assert_eq!(d.reason, "spot-interruption");
    assert_eq!(d.detail["instance"], old.id.as_str());
    assert_eq!(d.detail["unavailable"]["instanceType"], old.instance_type.as_str());
    assert!(d.detail["messageId"].as_str().is_some_and(|m| !m.is_empty()));

    // Drained without waiting for the replacement, well before EC2 takes the instance.
    h.watch(150, |_, _| {}).await;
    let evicted_at = h.of("evict").iter().map(|e| e.at).max().expect("pods evicted");
    assert!(evicted_at < t0 + Duration::from_secs(30), "evicted at +{:?}: {}", evicted_at - t0, h.timeline());
    let terminated = h.of("terminate").iter().find(|e| e.message.contains(&old.id)).map(|e| e.at);
    assert!(terminated.is_some_and(|at| at < t0 + Duration::from_secs(120)), "{}", h.timeline());
    assert_eq!(h.running("web"), 3, "{}", h.timeline());
    let snap = h.world.cluster.snapshot().await.unwrap();
    let web = |node: &str| {
        snap.pods
            .iter()
            .filter(|p| p.phase == Phase::Running && p.name.starts_with("web") && p.node.as_deref() == Some(node))
            .count()
    };
    assert_eq!(web(&old.id), 0);
    assert!(web(&new.id) >= 1, "the moved pod runs on the replacement: {}", h.timeline());
    assert_eq!(replacement_launches(&h), 1, "one replacement, no extra launch: {}", h.timeline());
    let old_now = h.world.cloud.instances().into_iter().find(|i| i.id == old.id).unwrap();
    assert_eq!(old_now.state, InstanceState::Terminated);
}

#[tokio::test]
async fn an_unreadable_message_is_deleted_once_and_never_seen_again() {
    let (mut h, _) = running(RebalancePolicy::Replace).await;
    h.world.cloud.send_notice("{not an event");
    h.world.cloud.send_notice(r#"{"version":"0","source":"aws.autoscaling","detail-type":"EC2 Instance-terminate Lifecycle Action","detail":{}}"#);
    let before = h.lp.status().recent_decisions.len();
    let ev = h.world.step(&mut h.lp).await;
    assert_eq!(h.world.cloud.queued(), 0);
    assert!(ev.iter().all(|e| e.event != "interruption"), "{ev:?}");
    h.world.clock.advance(capstan::sim::STEP);
    h.world.step(&mut h.lp).await;
    assert_eq!(h.lp.status().recent_decisions.len(), before, "nothing decided");
    let snap = capstan::cluster::ClusterApi::snapshot(&h.world.cluster).await.unwrap();
    assert_eq!(disrupting(&snap), 0);
}

#[tokio::test]
async fn a_failed_action_leaves_the_message_and_a_repeat_launches_nothing_twice() {
    let (mut h, old) = running(RebalancePolicy::Replace).await;
    h.world.cluster.refuse_disruption_marks(true);
    h.world.cloud.interrupt(&old.id);
    h.world.step(&mut h.lp).await;
    assert_eq!(h.world.cloud.queued(), 1, "not acted on: kept");
    assert_eq!(replacement_launches(&h), 0, "nothing launched before the node is marked");
    h.world.clock.advance(capstan::sim::STEP);
    h.world.cluster.refuse_disruption_marks(false);
    h.world.step(&mut h.lp).await;
    assert_eq!(h.world.cloud.queued(), 0);
    assert_eq!(replacement_launches(&h), 1);
    // The same warning again (SQS delivers at least once): acknowledged, nothing more launched.
    h.world.cloud.send_notice(&spot_warning(&old.id, "us-east-1", "2026-01-05T06:00:00Z"));
    h.world.clock.advance(capstan::sim::STEP);
    h.world.step(&mut h.lp).await;
    assert_eq!(h.world.cloud.queued(), 0);
    assert_eq!(replacement_launches(&h), 1);
    assert_eq!(decisions(&h, "interruption-already-draining"), 1);
}

fn rebalance(id: &str) -> String {
    serde_json::json!({
        "version": "0", "id": "r-1", "detail-type": "EC2 Instance Rebalance Recommendation", "source": "aws.ec2",
        "account": "123456789012", "time": "2026-01-05T06:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {"instance-id": id},
    })
    .to_string()
}

#[tokio::test]
async fn a_rebalance_recommendation_under_record_is_only_recorded() {
    let (mut h, old) = running(RebalancePolicy::Record).await;
    h.world.cloud.send_notice(&rebalance(&old.id));
    h.watch(30, |_, _| {}).await;
    assert_eq!(h.world.cloud.queued(), 0);
    assert_eq!(decisions(&h, "interruption-record"), 1);
    assert_eq!(replacement_launches(&h), 0);
    assert!(h.world.cloud.current().iter().any(|i| i.id == old.id));
    let snap = h.world.cluster.snapshot().await.unwrap();
    assert_eq!(disrupting(&snap), 0);
}

#[tokio::test]
async fn a_rebalance_recommendation_under_replace_replaces_the_node() {
    let (mut h, old) = running(RebalancePolicy::Replace).await;
    h.world.cloud.send_notice(&rebalance(&old.id));
    h.world.step(&mut h.lp).await;
    assert_eq!(replacement_launches(&h), 1, "{}", h.timeline());
    assert_eq!(decisions(&h, "interruption-replace"), 1);
}

// The pure decision.

fn notice(n: usize, kind: Kind, ids: &[&str], state: Option<&str>) -> Notice {
    let event = Event {
        kind,
        instance_ids: ids.iter().map(|s| s.to_string()).collect(),
        state: state.map(Into::into),
        time: None,
    };
    Notice { receipt: format!("r{n}"), message_id: format!("m{n}"), event: Ok(event) }
}

fn spot(case: &mut Case, name: &str) {
    case.node(node(name));
    let i = case.instances.iter_mut().find(|i| i.id == format!("i-{name}")).unwrap();
    i.capacity_type = CapacityType::Spot;
}

fn verdicts(
    case: &Case,
    notices: &[Notice],
    rebalance: RebalancePolicy,
) -> Vec<capstan::disruption::interrupt::Verdict> {
    let view = capstan::provisioning::Request {
        snapshot: &case.snapshot,
        instances: &case.instances,
        rules: &case.rules,
        catalog: &case.catalog,
    };
    decide(notices, view, rebalance)
}

#[test]
fn the_replacement_avoids_the_interrupted_offering_and_ignores_budgets_and_do_not_disrupt() {
    let mut case = Case::new();
    case.pool().budgets = vec![crate::disruption::budget(capstan::policy::nodepool::BudgetNodes::Count(0))];
    case.node(node("a").do_not_disrupt());
    let i = case.instances.iter_mut().find(|i| i.id == "i-a").unwrap();
    i.capacity_type = CapacityType::Spot;
    let i = i.clone();
    case.pods("a", 3, capstan::scheduling::pod::pod().cpu("1"));
    let out = verdicts(&case, &[notice(1, Kind::SpotInterruption, &["i-a"], None)], RebalancePolicy::Replace);
    let item = &out[0].items[0];
    assert_eq!(item.node.as_deref(), Some("a"));
    let interrupted = OfferingKey::new(&i.instance_type, &i.zone, CapacityType::Spot);
    assert_eq!(item.unavailable.as_ref(), Some(&interrupted));
    let Action::Replace(cmd) = &item.action else { panic!("{item:?}") };
    assert_eq!(cmd.reason, capstan::rules::Reason::Interrupted);
    assert_eq!(cmd.targets[0].pods, 3);
    assert!(!cmd.replacements.is_empty());
    for l in &cmd.replacements {
        assert!(l.claim.options.iter().all(|o| OfferingKey::of(o) != interrupted), "{:?}", l.claim.options);
    }
}

#[test]
fn only_capstans_instances_that_go_away_are_acted_on() {
    let mut case = Case::new();
    spot(&mut case, "a");
    case.node(node("kops").unmanaged());
    let notices = [
        notice(1, Kind::StateChange, &["i-a"], Some("running")),
        notice(2, Kind::SpotInterruption, &["i-kops"], None),
        notice(3, Kind::ScheduledChange, &["i-gone"], None),
        Notice { receipt: "r4".into(), message_id: "m4".into(), event: parse("{}") },
        notice(5, Kind::RebalanceRecommendation, &["i-a"], None),
    ];
    let out = verdicts(&case, &notices, RebalancePolicy::Record);
    assert!(matches!(out[0].items[0].action, Action::Ignore(_)), "{out:?}");
    assert!(matches!(out[1].items[0].action, Action::Ignore(_)), "{out:?}");
    assert!(matches!(out[2].items[0].action, Action::Ignore(_)), "{out:?}");
    assert!(out[3].items.is_empty() && out[3].unreadable.is_some());
    assert_eq!(out[4].items[0].action, Action::Record);
    assert_eq!(out[4].items[0].unavailable, None);
}

#[test]
fn a_repeat_and_a_node_already_draining_get_no_second_replacement() {
    let mut case = Case::new();
    spot(&mut case, "a");
    spot(&mut case, "b");
    case.node(
        node("c")
            .disrupting()
            .annotation("capstan.io/disruption-reason", "underutilized")
            .annotation("capstan.io/disruption-replacements", "claim-x"),
    );
    let notices = [
        notice(1, Kind::SpotInterruption, &["i-a"], None),
        notice(2, Kind::StateChange, &["i-a"], Some("stopping")),
        notice(3, Kind::ScheduledChange, &["i-b", "i-c"], None),
    ];
    let out = verdicts(&case, &notices, RebalancePolicy::Replace);
    assert!(matches!(out[0].items[0].action, Action::Replace(_)));
    assert_eq!(out[1].items[0].action, Action::AlreadyDraining);
    let Action::Replace(b) = &out[2].items[0].action else { panic!("{out:?}") };
    // b's pods do not go to a, which leaves too; a scheduled change avoids no offering.
    assert_eq!(b.targets[0].node, "b");
    assert_eq!(out[2].items[0].unavailable, None);
    assert_eq!(out[2].items[1].action, Action::Hasten { replacements: vec!["claim-x".into()] });
}
