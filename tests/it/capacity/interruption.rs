//! Interruption notices: a spot warning in the simulated queue is acted on in the pass that reads
//! it (replacement launched, node cordoned and drained at once, the offering avoided) and the
//! node is empty before EC2 takes it two minutes later; what cannot be read is deleted once; a
//! failed action leaves the message for later; a rebalance recommendation under `record` is
//! only recorded, under `replace` the node is replaced as a voluntary disruption (drained once
//! its replacement is ready) until a spot warning hastens it. Then the pure decision, on
//! builders.

use std::time::Duration;

use capstan::app::config::RebalancePolicy;
use capstan::cloud::OfferingKey;
use capstan::cloud::interruption::{Event, Kind, Notice, parse, spot_warning};
use capstan::cloud::provider::InstanceState;
use capstan::cluster::Phase;
use capstan::disruption::interrupt::{Action, Fetched, decide};
use capstan::scheduling::catalog::CapacityType;

use super::*;
use crate::disruption::{Case, node};

fn spot_policy() -> EffectivePolicy {
    spot_policy_with("")
}

/// The spot pool, with `more` appended to its disruption settings.
fn spot_policy_with(more: &str) -> EffectivePolicy {
    let disruption = format!("    consolidationPolicy: WhenEmpty\n    consolidateAfter: 60s{more}");
    let disruption = disruption.as_str();
    let spot = pool("spot", &["c6i", "m6i", "c6a", "m6a"], disruption, "").replace("[on-demand]", "[spot]");
    base(&[spot], "  dryRun: false")
}

/// A harness with `web` (3 pods of 1 cpu, one per spot node as the cheapest spot type holds
/// one) running, and the instance of one of its nodes.
async fn running(rebalance: RebalancePolicy) -> (Harness, capstan::cloud::provider::Instance) {
    running_under(spot_policy(), rebalance).await
}

async fn running_under(
    policy: EffectivePolicy,
    rebalance: RebalancePolicy,
) -> (Harness, capstan::cloud::provider::Instance) {
    let mut h = Harness::new(&policy);
    h.lp = h
        .world
        .capacity_loop(rules(&policy, "main@sha1:0000000000000000000000000000000000000001"))
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
async fn a_rebalance_recommendation_under_replace_replaces_the_node_voluntarily_until_a_warning_comes() {
    let (mut h, old) = running(RebalancePolicy::Replace).await;
    let t0 = h.world.now();
    h.world.cloud.send_notice(&rebalance(&old.id));
    let ev = h.world.step(&mut h.lp).await;
    h.events.extend(ev);
    assert_eq!(h.world.cloud.queued(), 0);
    let rebalanced = |h: &Harness| {
        h.lp.status()
            .recent_decisions
            .iter()
            .filter(|d| d.action == "launch" && d.reason == "replace-rebalance-recommendation")
            .count()
    };
    assert_eq!(rebalanced(&h), 1, "{}", h.timeline());
    assert_eq!(replacement_launches(&h), 0, "not an interruption");
    let d = h.lp.status().recent_decisions.iter().find(|d| d.action == "interruption-replace").unwrap();
    assert_eq!(d.reason, "rebalance-recommendation");
    assert!(d.detail["unavailable"].is_null(), "the offering stays available: {d:?}");
    let snap = h.world.cluster.snapshot().await.unwrap();
    let n = snap.nodes.iter().find(|n| n.instance_id() == Some(old.id.as_str())).unwrap();
    assert!(capstan::disruption::candidate::disrupting(n));
    assert_eq!(n.annotations.get("capstan.io/disruption-reason").map(String::as_str), Some("rebalance-recommendation"));
    // Nothing is evicted while the replacement is launching (a node turns Ready ~2 min after).
    h.watch(60, |_, _| {}).await;
    assert!(h.of("evict").is_empty(), "{}", h.timeline());
    // The warning comes: the node is drained at once, and now the offering is avoided.
    h.world.cloud.interrupt(&old.id);
    let ev = h.world.step(&mut h.lp).await;
    h.events.extend(ev);
    assert_eq!(h.world.cloud.queued(), 0);
    let d = h.lp.status().recent_decisions.iter().find(|d| d.action == "interruption-drain-now").expect("hastened");
    assert_eq!(d.detail["unavailable"]["instanceType"], old.instance_type.as_str());
    assert_eq!(rebalanced(&h), 1, "no second replacement");
    h.watch(30, |_, _| {}).await;
    assert!(h.of("evict").iter().any(|e| e.at < t0 + Duration::from_secs(120)), "{}", h.timeline());
}

#[tokio::test]
async fn a_rebalance_recommendation_waits_for_the_disruption_budget() {
    let policy = spot_policy_with("\n    budgets:\n    - nodes: \"0\"");
    let (mut h, old) = running_under(policy, RebalancePolicy::Replace).await;
    h.world.cloud.send_notice(&rebalance(&old.id));
    h.world.step(&mut h.lp).await;
    assert_eq!(h.world.cloud.queued(), 1, "put off: the message stays for later");
    let snap = h.world.cluster.snapshot().await.unwrap();
    assert_eq!(disrupting(&snap), 0, "{}", h.timeline());
    assert!(h.lp.status().recent_decisions.iter().all(|d| !d.action.starts_with("interruption")));
    // A spot warning is not held back by the budget.
    h.world.cloud.interrupt(&old.id);
    h.world.clock.advance(capstan::sim::STEP);
    h.world.step(&mut h.lp).await;
    assert_eq!(decisions(&h, "interruption-replace"), 1, "{}", h.timeline());
    assert_eq!(replacement_launches(&h), 1);
    let snap = h.world.cluster.snapshot().await.unwrap();
    assert_eq!(disrupting(&snap), 1);
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
    looked_up(case, notices, rebalance, &[])
}

/// The verdicts, with `fetched` as `get`'s answers for instances the listing does not hold.
fn looked_up(
    case: &Case,
    notices: &[Notice],
    rebalance: RebalancePolicy,
    fetched: &[(&str, Fetched)],
) -> Vec<capstan::disruption::interrupt::Verdict> {
    let view = capstan::provisioning::Request {
        snapshot: &case.snapshot,
        instances: &case.instances,
        rules: &case.rules,
        catalog: &case.catalog,
    };
    let req = capstan::disruption::Request { view, now: case.now, wall: case.wall };
    let fetched = fetched.iter().map(|(id, f)| (id.to_string(), f.clone())).collect();
    decide(notices, req, rebalance, &fetched)
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
    let mut kops = case.instances[0].clone();
    (kops.id, kops.claim) = ("i-kops".into(), String::new());
    let fetched = [("i-gone", Fetched::NotFound), ("i-kops", Fetched::Found { instance: kops, ours: false })];
    let out = looked_up(&case, &notices, RebalancePolicy::Record, &fetched);
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
    assert_eq!(out[2].items[1].action, Action::Hasten { node: "c".into(), replacements: vec!["claim-x".into()] });
}

fn marked(b: crate::disruption::NodeBuilder, reason: &str, replacements: &str) -> crate::disruption::NodeBuilder {
    b.disrupting()
        .annotation("capstan.io/disruption-reason", reason)
        .annotation("capstan.io/disruption-revision", "main@sha1:1")
        .annotation("capstan.io/disruption-replacements", replacements)
}

#[test]
fn a_rebalance_recommendation_is_a_voluntary_replacement() {
    let mut case = Case::new();
    spot(&mut case, "a");
    case.node(node("b").do_not_disrupt());
    case.instances.iter_mut().find(|i| i.id == "i-b").unwrap().capacity_type = CapacityType::Spot;
    case.pods("a", 2, capstan::scheduling::pod::pod().cpu("1"));
    let notices = [notice(1, Kind::RebalanceRecommendation, &["i-a", "i-b"], None)];
    let out = verdicts(&case, &notices, RebalancePolicy::Replace);
    let [a, b] = out[0].items.as_slice() else { panic!("{out:?}") };
    let Action::Replace(cmd) = &a.action else { panic!("{a:?}") };
    assert_eq!(cmd.reason, capstan::rules::Reason::Rebalance);
    assert_eq!(cmd.targets[0].pods, 2);
    assert!(cmd.replacements.is_empty(), "b, which stays, holds a's pods: {cmd:?}");
    assert_eq!(a.unavailable, None, "a recommendation marks no offering unavailable");
    assert!(matches!(&b.action, Action::Kept(why) if why.contains("do-not-disrupt")), "{b:?}");
    // A budget used up puts it off: the message stays.
    case.pool().budgets = vec![crate::disruption::budget(capstan::policy::nodepool::BudgetNodes::Count(0))];
    let out = verdicts(&case, &notices, RebalancePolicy::Replace);
    assert!(matches!(&out[0].items[0].action, Action::Later(why) if why.contains("budget")), "{out:?}");
}

#[test]
fn a_spot_warning_hastens_a_rebalanced_node_and_marks_the_offering_even_when_draining() {
    let mut case = Case::new();
    case.node(marked(node("a"), "rebalance-recommendation", "claim-r"));
    case.node(marked(node("b"), "interrupted", ""));
    for i in &mut case.instances {
        i.capacity_type = CapacityType::Spot;
    }
    let notices = [
        notice(1, Kind::SpotInterruption, &["i-a"], None),
        notice(2, Kind::SpotInterruption, &["i-b"], None),
        notice(3, Kind::RebalanceRecommendation, &["i-b"], None),
    ];
    let out = verdicts(&case, &notices, RebalancePolicy::Replace);
    assert_eq!(out[0].items[0].action, Action::Hasten { node: "a".into(), replacements: vec!["claim-r".into()] });
    assert!(out[0].items[0].unavailable.is_some());
    assert_eq!(out[1].items[0].action, Action::AlreadyDraining);
    let b = OfferingKey::new("m6i.xlarge", "us-east-1a", CapacityType::Spot);
    assert_eq!(out[1].items[0].unavailable, Some(b), "a second warning for a draining node still marks it");
    assert_eq!(out[2].items[0].action, Action::AlreadyDraining);
    assert_eq!(out[2].items[0].unavailable, None);
}

#[test]
fn a_capacity_reservation_warning_marks_the_reserved_offering() {
    let mut case = Case::new();
    case.node(node("a"));
    case.instances[0].capacity_type = CapacityType::Reserved;
    let out =
        verdicts(&case, &[notice(1, Kind::CapacityReservationInterruption, &["i-a"], None)], RebalancePolicy::Replace);
    assert!(matches!(out[0].items[0].action, Action::Replace(_)), "{out:?}");
    assert_eq!(out[0].items[0].unavailable, Some(OfferingKey::new("m6i.xlarge", "us-east-1a", CapacityType::Reserved)));
}

#[test]
fn a_storm_is_solved_once_without_the_pods_of_nodes_already_draining() {
    let mut case = Case::new();
    for n in ["a", "b", "c"] {
        spot(&mut case, n);
        case.pods(n, 1, capstan::scheduling::pod::pod().cpu("1"));
    }
    case.node(marked(node("d"), "underutilized", "claim-d"));
    case.pods("d", 3, capstan::scheduling::pod::pod().cpu("1"));
    let notices: Vec<Notice> = ["i-a", "i-b", "i-c"]
        .iter()
        .enumerate()
        .map(|(n, id)| notice(n, Kind::SpotInterruption, &[id], None))
        .collect();
    let out = verdicts(&case, &notices, RebalancePolicy::Replace);
    let mut claims = std::collections::BTreeSet::new();
    let mut pods = 0;
    for v in &out {
        let Action::Replace(cmd) = &v.items[0].action else { panic!("{out:?}") };
        assert!(!cmd.replacements.is_empty(), "{cmd:?}");
        for l in &cmd.replacements {
            if claims.insert(l.claim.name.clone()) {
                pods += l.plan.pods.len();
            }
        }
    }
    assert_eq!(pods, 3, "one solve for the three nodes' pods, none of d's: {out:?}");
    // The same batch decided again names the same claims: a repeat launches nothing twice.
    let again = verdicts(&case, &notices, RebalancePolicy::Replace);
    assert_eq!(again, out);
}

#[test]
fn a_state_change_of_an_instance_capstan_terminated_is_acknowledged_quietly() {
    let mut case = Case::new();
    spot(&mut case, "a");
    let mut gone = case.instances[0].clone();
    gone.id = "i-gone".into();
    gone.state = InstanceState::Terminated;
    let notices = [
        notice(1, Kind::StateChange, &["i-gone"], Some("terminated")),
        notice(2, Kind::SpotInterruption, &["i-new"], None),
        notice(3, Kind::SpotInterruption, &["i-unknown"], None),
    ];
    let mut new = case.instances[0].clone();
    new.id = "i-new".into();
    let fetched = [
        ("i-gone", Fetched::Found { instance: gone, ours: true }),
        ("i-new", Fetched::Found { instance: new, ours: true }),
        ("i-unknown", Fetched::Failed("throttled".into())),
    ];
    let out = looked_up(&case, &notices, RebalancePolicy::Replace, &fetched);
    assert!(matches!(out[0].items[0].action, Action::Ignore(_)), "{out:?}");
    // Launched but not listed yet: capstan's all the same, terminated as it has no node.
    assert_eq!(out[1].items[0].action, Action::Terminate);
    assert!(matches!(out[2].items[0].action, Action::Later(_)), "{out:?}");
}

fn state_change(id: &str, state: &str) -> String {
    serde_json::json!({
        "version": "0", "id": "s-1", "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
        "account": "123456789012", "time": "2026-01-05T06:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {"instance-id": id, "state": state},
    })
    .to_string()
}

#[tokio::test]
async fn the_state_change_of_capstans_own_scale_down_is_acknowledged_quietly() {
    use capstan::cloud::provider::CloudProvider;
    let (mut h, old) = running(RebalancePolicy::Replace).await;
    // capstan terminated the instance and deleted its node; EC2 reports it afterwards.
    h.world.cloud.delete(&old.id).await.unwrap();
    let snap = h.world.cluster.snapshot().await.unwrap();
    let node = snap.nodes.iter().find(|n| n.instance_id() == Some(old.id.as_str())).unwrap().name.clone();
    h.world.cluster.delete_node(&node).await.unwrap();
    let deletes = |h: &Harness| {
        h.world.cloud.calls().iter().filter(|c| matches!(c, capstan::cloud::sim::Call::Delete { .. })).count()
    };
    let before = (h.lp.status().recent_decisions.len(), deletes(&h));
    h.world.cloud.send_notice(&state_change(&old.id, "shutting-down"));
    h.world.cloud.send_notice(&state_change(&old.id, "terminated"));
    h.world.clock.advance(capstan::sim::STEP);
    h.world.step(&mut h.lp).await;
    assert_eq!(h.world.cloud.queued(), 0);
    let decided: Vec<_> = h.lp.status().recent_decisions.iter().skip(before.0).map(|d| d.action.clone()).collect();
    assert!(decided.iter().all(|a| !a.starts_with("interruption")), "{decided:?}");
    assert_eq!(deletes(&h), before.1, "no second TerminateInstances");
}

#[tokio::test]
async fn a_warning_for_an_instance_not_listed_yet_is_looked_up() {
    use capstan::cloud::provider::{Avoid, CloudProvider, NodeClaim};
    let (mut h, old) = running(RebalancePolicy::Replace).await;
    h.world.clock.advance(capstan::sim::STEP);
    h.world.step(&mut h.lp).await;
    // Launched just now (by capstan, say by another replica), after the listing the loop reuses.
    let claim = NodeClaim {
        name: "late-claim".into(),
        node_pool: old.node_pool.clone(),
        node_class: "default".into(),
        options: vec![capstan::scheduling::plan::LaunchOption {
            instance_type: old.instance_type.clone(),
            zone: old.zone.clone(),
            capacity_type: CapacityType::Spot,
            price: old.price,
        }],
        policy_revision: "main@sha1:1".into(),
        tags: Default::default(),
    };
    let late = h.world.cloud.create(&claim, &Avoid::new()).await.unwrap().instance;
    h.world.cloud.interrupt(&late.id);
    h.world.clock.advance(capstan::sim::STEP);
    h.world.step(&mut h.lp).await;
    assert!(h.world.cloud.calls().contains(&capstan::cloud::sim::Call::Get { id: late.id.clone() }));
    assert_eq!(h.world.cloud.queued(), 0, "capstan's: acted on, not dropped as another's");
    assert_eq!(decisions(&h, "interruption-terminate"), 1, "{}", h.timeline());
}

#[tokio::test]
async fn a_disruption_validated_in_the_pass_of_a_warning_does_not_overwrite_its_marks() {
    let (mut h, _) = running(RebalancePolicy::Replace).await;
    h.scale("web", 0);
    // Step until an emptiness decision waits for validation.
    let mut decided = None;
    for _ in 0..600 {
        let ev = h.world.step(&mut h.lp).await;
        decided = ev.iter().find(|e| e.event == "disruption-decision").cloned();
        h.events.extend(ev);
        if decided.is_some() {
            break;
        }
        h.world.clock.advance(capstan::sim::STEP);
    }
    let decided = decided.unwrap_or_else(|| panic!("no disruption decided: {}", h.timeline()));
    let node = decided.detail["nodes"][0]["node"].as_str().unwrap().to_string();
    let id = decided.detail["nodes"][0]["instance"].as_str().unwrap().to_string();
    // The pass that validates it reads a spot warning for the same node first.
    h.world.clock.set(decided.at + capstan::disruption::VALIDATION_DELAY);
    h.world.cloud.interrupt(&id);
    let ev = h.world.step(&mut h.lp).await;
    h.events.extend(ev);
    assert_eq!(decisions(&h, "interruption-replace"), 1, "{}", h.timeline());
    assert!(!h.of("disruption-cancelled").is_empty(), "{}", h.timeline());
    let snap = h.world.cluster.snapshot().await.unwrap();
    let n = snap.nodes.iter().find(|n| n.name == node).unwrap();
    assert_eq!(n.annotations.get("capstan.io/disruption-reason").map(String::as_str), Some("interrupted"));
}
