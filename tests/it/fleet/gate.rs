//! One test per rule of the rollout gate: what it puts in force, the steps it reports and the
//! phase it leaves, from small records built by hand.

use capstan::fleet::health::Health;
use capstan::fleet::record::{Phase, Record, Soak};

use super::*;

fn apply(sha: &str) -> Action {
    Action::Apply { sha: sha.into(), rollback: false }
}

fn unhealthy() -> Health {
    Health::Unhealthy(vec!["pod default/a has waited 400s for capacity (maxPendingTime 300s)".into()])
}

#[test]
fn wave_0_takes_the_tip_at_once() {
    let g = Gate::new(rules(0, &[], 600), &[cand("a", "d1")]).health(Health::Unknown("nothing in force".into()));
    let mut rec = Record::default();
    let out = g.pass(&mut rec, 0);
    assert_eq!(out.action, apply("a"));
    assert_eq!(kinds(&out), [StepKind::Applied]);
    let f = rec.in_force.as_ref().unwrap();
    assert_eq!((f.sha.as_str(), f.epoch.as_str(), f.since), ("a", "a", t(0)));
    assert_eq!(rec.phase, Phase::Soaking);
    assert_eq!(rec.accepted.as_deref(), Some("main@sha1:a"));
}

#[test]
fn the_own_soak_completes_into_last_known_good() {
    let mut g = Gate::new(rules(0, &[], 60), &[cand("a", "d1")]).health(Health::Unknown("not run yet".into()));
    let mut rec = Record::default();
    assert_eq!(g.pass(&mut rec, 0).action, apply("a"));
    g.health = Health::Healthy;
    assert_eq!(kinds(&g.pass(&mut rec, 10)), [StepKind::Soaking]);
    assert_eq!(rec.soak.healthy_since, Some(t(10)));
    let out = g.pass(&mut rec, 69);
    assert_eq!((out.action.clone(), kinds(&out), rec.phase), (Action::Hold, vec![], Phase::Soaking));
    assert!(rec.last_known_good.is_none());
    assert_eq!(kinds(&g.pass(&mut rec, 70)), [StepKind::Healthy]);
    assert_eq!(rec.last_known_good.as_ref().map(|g| g.sha.as_str()), Some("a"));
    assert_eq!(rec.phase, Phase::Healthy);
}

#[test]
fn wave_1_waits_for_a_peer_whose_heartbeat_it_never_saw_change() {
    let mut g = Gate::new(rules(1, &["up"], 60), &[cand("w", "d0"), cand("a", "d1")]);
    g.put(peer_record("up", "a", "d1"));
    let mut rec = settled("w", "d0");
    for now in [0, 100, 1000] {
        assert_eq!(g.pass(&mut rec, now).action, Action::Hold);
        assert_eq!(rec.phase, Phase::Waiting);
        assert!(rec.reason.contains("up's heartbeat has not been seen to change"), "{}", rec.reason);
    }
    // Seen to change at 1010: the soak counts from there.
    let (at, out) = g.run(&mut rec, 1010, 3000, 10).unwrap();
    assert_eq!(at, 1070);
    assert_eq!(out.action, apply("a"));
    assert_eq!(kinds(&out), [StepKind::Promoted, StepKind::Applied]);
}

#[test]
fn the_soak_is_counted_on_the_deciders_clock_whatever_the_peer_wrote() {
    let mut g = Gate::new(rules(1, &["up"], 300), &[cand("w", "d0"), cand("a", "d1")]);
    // The peer's clock is a day behind: by its times it has been healthy for a day.
    let mut p = peer_record("up", "a", "d1");
    let day_ago = t(-86_400);
    p.time = Some(day_ago);
    p.soak.healthy_since = Some(day_ago);
    p.in_force.as_mut().unwrap().since = day_ago;
    g.put(p);
    let mut rec = settled("w", "d0");
    g.pass(&mut rec, 0);
    g.beat();
    g.pass(&mut rec, 10);
    assert!(rec.reason.contains("up soaking main@sha1:a: healthy for 0s of 300s"), "{}", rec.reason);
    let (at, _) = g.run(&mut rec, 20, 3000, 10).unwrap();
    assert_eq!(at, 310, "300 s after this daemon first saw it healthy and alive");
}

#[test]
fn a_stale_heartbeat_restarts_the_count_and_holds() {
    let mut g = Gate::new(rules(1, &["up"], 300), &[cand("w", "d0"), cand("a", "d1")]);
    g.put(peer_record("up", "a", "d1"));
    let mut rec = settled("w", "d0");
    g.pass(&mut rec, 0);
    assert!(g.run(&mut rec, 10, 100, 10).is_none(), "counting since 10");
    // The peer stops writing.
    assert_eq!(g.pass(&mut rec, 150).action, Action::Hold);
    assert!(rec.reason.contains("healthy for 140s of 300s"), "{}", rec.reason);
    assert_eq!(g.pass(&mut rec, 221).action, Action::Hold);
    assert!(rec.reason.contains("up has not written its status for 121s (heartbeatTimeout 120s)"), "{}", rec.reason);
    assert_eq!(g.pass(&mut rec, 400).action, Action::Hold, "the old count would be done by 310");
    // Writing again: counted afresh (the first write seen after the stale spell counts like a
    // first sight).
    let (at, _) = g.run(&mut rec, 410, 3000, 10).unwrap();
    assert!((710..=720).contains(&at), "{at}");
}

#[test]
fn a_peer_restart_restarts_the_count() {
    let mut g = Gate::new(rules(1, &["up"], 300), &[cand("w", "d0"), cand("a", "d1")]);
    g.put(peer_record("up", "a", "d1"));
    let mut rec = settled("w", "d0");
    g.pass(&mut rec, 0);
    assert!(g.run(&mut rec, 10, 200, 10).is_none());
    // Same epoch, same healthySince, but a new incarnation.
    g.peer("up").incarnation = "up-2".into();
    g.peer("up").heartbeat = 0;
    let (at, _) = g.run(&mut rec, 210, 3000, 10).unwrap();
    assert_eq!(at, 510);
}

#[test]
fn a_revision_with_the_same_policy_here_is_taken_at_once_by_the_first_wave_without_approval_or_soak() {
    let mut r = rules(0, &[], 600);
    r.requires_approval = true;
    let g = Gate::new(r, &[cand("a", "d1"), cand("b", "d1")]);
    let mut rec = settled("a", "d1");
    rec.last_known_good = None;
    rec.soak = Soak { healthy_since: Some(t(5)), completed: false };
    let out = g.pass(&mut rec, 100);
    assert_eq!(out.action, apply("b"));
    assert_eq!(kinds(&out), [StepKind::Applied]);
    let f = rec.in_force.as_ref().unwrap();
    assert_eq!((f.sha.as_str(), f.epoch.as_str(), f.since), ("b", "a", t(0)), "epoch kept");
    assert_eq!(rec.soak, Soak { healthy_since: Some(t(5)), completed: false }, "the soak carries over");
    assert_eq!(rec.phase, Phase::Soaking);
}

/// Wave 0 on last-known-good `w`; `x` applied, then unhealthy in its soak.
fn rolled_back() -> (Gate, Record) {
    let mut g = Gate::new(rules(0, &[], 60), &[cand("w", "d1"), cand("x", "d2")]);
    let mut rec = settled("w", "d1");
    assert_eq!(g.pass(&mut rec, 0).action, apply("x"));
    g.health = unhealthy();
    let out = g.pass(&mut rec, 10);
    assert_eq!(kinds(&out), [StepKind::Halted, StepKind::RolledBack]);
    assert_eq!(out.action, Action::Apply { sha: "w".into(), rollback: true });
    (g, rec)
}

#[test]
fn unhealthy_in_its_soak_halts_and_rolls_back_to_last_known_good() {
    let (mut g, mut rec) = rolled_back();
    assert_eq!(rec.phase, Phase::RolledBack);
    assert_eq!(rec.in_force.as_ref().map(|f| f.sha.as_str()), Some("w"));
    assert_eq!(rec.in_force.as_ref().map(|f| &f.sha), rec.last_known_good.as_ref().map(|g| &g.sha));
    assert!(rec.soak.completed);
    let h = rec.is_halted("x").expect("x halted for the fleet");
    assert_eq!((h.cluster.as_str(), h.digest.as_str()), ("me", "d2"));
    assert!(!rec.healthy, "the pass measured the cluster unhealthy");
    assert!(rec.health_reasons[0].contains("default/a"), "{:?}", rec.health_reasons);
    // x is still the tip: it stays halted, and so does the phase.
    g.health = Health::Healthy;
    for now in [20, 200] {
        let out = g.pass(&mut rec, now);
        assert_eq!((out.action.clone(), kinds(&out)), (Action::Hold, vec![]));
        assert_eq!(rec.phase, Phase::RolledBack);
        assert_eq!(rec.in_force.as_ref().map(|f| f.sha.as_str()), Some("w"));
    }
}

#[test]
fn without_last_known_good_a_halt_stays_on_the_revision() {
    let mut g = Gate::new(rules(0, &[], 60), &[cand("x", "d2")]).health(Health::Unknown("not run yet".into()));
    let mut rec = Record::default();
    assert_eq!(g.pass(&mut rec, 0).action, apply("x"));
    g.health = unhealthy();
    let out = g.pass(&mut rec, 10);
    assert_eq!((out.action.clone(), kinds(&out)), (Action::Hold, vec![StepKind::Halted]));
    assert_eq!(rec.phase, Phase::Halted);
    assert!(rec.is_halted("x").is_some());
    for (now, h) in [(20, unhealthy()), (30, Health::Healthy)] {
        g.health = h;
        let out = g.pass(&mut rec, now);
        assert_eq!((out.action.clone(), kinds(&out)), (Action::Hold, vec![]));
        assert_eq!(rec.phase, Phase::Halted);
        assert_eq!(rec.in_force.as_ref().map(|f| f.sha.as_str()), Some("x"));
        assert!(!rec.healthy);
    }
}

#[test]
fn a_halted_revision_never_reaches_the_next_wave_even_when_a_peer_holds_it() {
    let mut g = Gate::new(rules(1, &["up1", "up2"], 60), &[cand("w", "d1"), cand("x", "d2")]);
    g.put(peer_record("up1", "x", "d2"));
    let mut up2 = peer_record("up2", "x", "d2");
    up2.halted.push(halted("x", "d0", "wave0-b"));
    g.put(up2);
    let mut rec = settled("w", "d1");
    assert!(g.run(&mut rec, 0, 2000, 10).is_none());
    assert_eq!(rec.phase, Phase::Waiting);
    assert!(rec.reason.contains("main@sha1:x was halted on wave0-b"), "{}", rec.reason);
    assert!(rec.is_halted("x").is_some(), "propagated to this cluster's readers");
}

#[test]
fn a_newer_commit_after_a_halt_starts_a_new_rollout_at_wave_0() {
    let (g, mut rec) = rolled_back();
    let g = Gate::new(g.rules.clone(), &[cand("w", "d1"), cand("x", "d2"), cand("y", "d3")]);
    let out = g.pass(&mut rec, 30);
    assert_eq!(out.action, apply("y"));
    assert_eq!(kinds(&out), [StepKind::Applied]);
    assert_eq!(rec.phase, Phase::Soaking);
    // A commit that brings the halted policy back is not taken.
    let g = Gate::new(g.rules.clone(), &[cand("w", "d1"), cand("x", "d2"), cand("z", "d2")]);
    let (_, mut rec) = rolled_back();
    assert_eq!(g.pass(&mut rec, 30).action, Action::Hold);
    assert_eq!(rec.in_force.as_ref().map(|f| f.sha.as_str()), Some("w"));
    assert_eq!(rec.phase, Phase::RolledBack);
}

#[test]
fn a_pause_holds_changes_but_not_a_revision_with_the_same_policy() {
    let mut r = rules(0, &[], 60);
    r.paused = true;
    let history = [cand("w", "d1"), cand("x", "d2"), cand("y", "d1")];
    let mut rec = settled("w", "d1");
    let g = Gate::new(r.clone(), &history).tip("x");
    assert_eq!(g.pass(&mut rec, 0).action, Action::Hold);
    assert_eq!(rec.phase, Phase::Paused);
    assert!(rec.reason.contains("paused"), "{}", rec.reason);
    let g = Gate::new(r, &history);
    let out = g.pass(&mut rec, 10);
    assert_eq!(out.action, apply("y"));
    assert_eq!(rec.in_force.as_ref().map(|f| f.epoch.as_str()), Some("w"));
}

/// Wave 1 on `w`, approval required; wave 0 holds `held_up` (history w < x < y; tip y).
fn approval(held_up: &str) -> (Gate, Record) {
    let mut r = rules(1, &["up"], 60);
    r.requires_approval = true;
    let mut g = Gate::new(r, &[cand("w", "d1"), cand("x", "d2"), cand("y", "d3")]);
    let digest = g.known[held_up].digest.clone().unwrap();
    g.put(peer_record("up", held_up, &digest));
    (g, settled("w", "d1"))
}

#[test]
fn approval_holds_until_an_approved_commit_covers_the_revision() {
    let (mut g, mut rec) = approval("x");
    assert!(g.run(&mut rec, 0, 300, 10).is_none());
    assert_eq!(rec.phase, Phase::AwaitingApproval);
    assert!(rec.reason.contains("revision: x}"), "{}", rec.reason);
    g.rules.approved = vec!["x".into()];
    g.beat();
    let out = g.pass(&mut rec, 310);
    assert_eq!(out.action, apply("x"));
    assert_eq!(kinds(&out), [StepKind::Promoted, StepKind::Applied]);

    // An approval of a later commit covers it too.
    let (mut g, mut rec) = approval("x");
    g.rules.approved = vec!["y".into()];
    assert_eq!(g.run(&mut rec, 0, 300, 10).map(|(_, o)| o.action), Some(apply("x")));
}

#[test]
fn an_approval_of_an_older_commit_takes_that_commit() {
    let (mut g, mut rec) = approval("y");
    g.rules.approved = vec!["x".into()];
    let (_, out) = g.run(&mut rec, 0, 300, 10).unwrap();
    assert_eq!(out.action, apply("x"));
    assert_eq!(rec.in_force.as_ref().map(|f| f.sha.as_str()), Some("x"));
}

#[test]
fn an_approval_of_a_halted_commit_takes_nothing() {
    let (mut g, mut rec) = approval("y");
    g.rules.approved = vec!["x".into()];
    g.peer("up").halted.push(halted("x", "d2", "up"));
    assert!(g.run(&mut rec, 0, 300, 10).is_none());
    assert_eq!(rec.phase, Phase::AwaitingApproval);
}

#[test]
fn a_peer_is_vouched_for_only_once_its_own_soak_completed() {
    // The peer's daemon writes less often than this one reads: this daemon's count can end
    // before the peer's own soak does, and the peer may still halt the revision.
    let mut g = Gate::new(rules(1, &["up"], 300), &[cand("w", "d1"), cand("x", "d2")]);
    let mut p = peer_record("up", "x", "d2");
    p.soak.completed = false;
    p.last_known_good = Some(held("w", "d1"));
    g.put(p);
    let mut rec = settled("w", "d1");
    g.pass(&mut rec, 0);
    assert!(g.run(&mut rec, 10, 400, 10).is_none());
    g.peer("up").soak.completed = true;
    let (at, _) = g.run(&mut rec, 410, 500, 10).unwrap();
    assert_eq!(at, 410);
}

#[test]
fn a_heartbeat_change_seen_after_a_long_absence_proves_nothing() {
    let mut g = Gate::new(rules(1, &["up"], 300), &[cand("w", "d0"), cand("a", "d1")]);
    g.put(peer_record("up", "a", "d1"));
    let mut rec = settled("w", "d0");
    g.pass(&mut rec, 0);
    assert!(g.run(&mut rec, 10, 100, 10).is_none(), "counting since 10");
    // This daemon does not run for a while; the peer writes once more, then dies.
    g.beat();
    for now in [1000, 1100, 2000] {
        assert_eq!(g.pass(&mut rec, now).action, Action::Hold, "at {now}");
    }
    let (at, _) = g.run(&mut rec, 2010, 3000, 10).unwrap();
    assert_eq!(at, 2310);
}

#[test]
fn a_later_wave_takes_a_revision_that_leaves_its_policy_alone_only_through_the_gate() {
    // This cluster (wave 1) below dev (wave 0). s01 changes dev's policy, not this cluster's: its
    // readers count this cluster's soak by epoch, so taking s01 at once would let them vouch for
    // it before dev soaked it.
    let mut g = Gate::new(rules(1, &["dev"], 300), &[cand("s00", "p1"), cand("s01", "p1")]);
    let soaking = Soak { healthy_since: Some(t(0)), completed: false };
    g.put(Record { soak: soaking, ..peer_record("dev", "s01", "d1") });
    let mut rec = settled("s00", "p1");
    assert!(g.run(&mut rec, 0, 290, 10).is_none(), "s01 taken while dev soaks it");
    g.peer("dev").soak.completed = true;
    let (at, out) = g.run(&mut rec, 300, 700, 10).expect("s01 taken once dev held it for the soak");
    assert!(at >= 300, "taken at {at}");
    assert_eq!(kinds(&out), vec![StepKind::Applied]);
    let f = rec.in_force.as_ref().unwrap();
    assert_eq!((f.sha.as_str(), f.epoch.as_str()), ("s01", "s00"), "the policy is unchanged: the epoch stays");
}

#[test]
fn a_peer_seen_to_change_once_after_a_long_absence_is_not_alive() {
    // A wave whose soakTime is not set soaks 0 s.
    let mut g = Gate::new(rules(1, &["up"], 0), &[cand("w", "d0"), cand("a", "d1")]);
    g.put(peer_record("up", "a", "d1"));
    let mut rec = settled("w", "d0");
    assert_eq!(g.pass(&mut rec, 0).action, Action::Hold, "first sight");
    // This daemon does not run for a while; the peer writes once, then dies.
    g.beat();
    assert_eq!(g.pass(&mut rec, 1000).action, Action::Hold, "the write seen may be 1000 s old");
}
