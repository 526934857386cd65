//! What the loop publishes for the status board (`LoopStatus::seen`), read right after the
//! pass that acted: pods of a launch that failed or was only a dry run carry the reason, pods
//! of a launch wait for its NodeClaim, a launched instance is listed at once, and a terminated
//! one is shutting down at once.

use capstan::capacity::CapacityLoop;
use capstan::cloud::CloudError;
use capstan::cloud::provider::{Avoid, CloudProvider, Created, Instance, InstanceState, NodeClaim};
use capstan::cloud::sim::SimCloud;
use capstan::cluster::sim::SimCluster;
use capstan::scheduling::catalog::Catalog;

use super::*;

const WHEN_EMPTY: &str = "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30s";

/// The simulated cloud with every launch refused for lack of permission.
#[derive(Clone)]
struct Refusing(SimCloud);

impl CloudProvider for Refusing {
    async fn catalog(&self) -> Result<Catalog, CloudError> {
        self.0.catalog().await
    }
    async fn create(&self, _claim: &NodeClaim, _avoid: &Avoid) -> Result<Created, CloudError> {
        Err(CloudError::Unauthorized(
            "CreateFleet: UnauthorizedOperation: You are not authorized to perform this operation.".into(),
        ))
    }
    async fn delete(&self, id: &str) -> Result<(), CloudError> {
        self.0.delete(id).await
    }
    async fn get(&self, id: &str) -> Result<Instance, CloudError> {
        self.0.get(id).await
    }
    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        self.0.list().await
    }
}

/// Steps (one second apart) until a pass emits `event`, for at most `secs`; the loop's status
/// is then that pass's.
async fn until_event<C: CloudProvider>(
    world: &World,
    lp: &mut CapacityLoop<C, SimCluster>,
    event: &str,
    secs: u64,
) -> Option<LoopEvent> {
    let end = world.now() + Duration::from_secs(secs);
    while world.now() < end {
        let events = world.step(lp).await;
        if let Some(e) = events.into_iter().find(|e| e.event == event) {
            return Some(e);
        }
        world.clock.advance(capstan::sim::STEP);
    }
    None
}

fn pods(prefix: &str, map: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    map.keys().filter(|k| k.starts_with(prefix)).cloned().collect()
}

#[tokio::test]
async fn pods_of_a_refused_launch_are_unplaced_with_the_error() {
    let p = base(&[pool("general", &["c6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let world = World::new("test.example.com", START);
    let mut lp = CapacityLoop::new(
        Refusing(world.cloud.clone()),
        world.cluster.clone(),
        rules(&p, "main@sha1:0000000000000000000000000000000000000001"),
    );
    world.cluster.apply(workload::parse("w.yaml", &deployment("inflate", 2, "1", "", "")).unwrap());
    let failed = until_event(&world, &mut lp, "launch-failed", 30).await.expect("a launch is tried");
    let seen = &lp.status().seen;
    let unplaced = pods("default/inflate-", &seen.unplaced);
    assert_eq!(unplaced.len(), 2, "{:?}", seen.unplaced);
    let ty = failed.detail["instanceType"].as_str().unwrap();
    for p in &unplaced {
        assert_eq!(
            seen.unplaced[p],
            format!(
                "launching a {ty} for it failed: not authorised: CreateFleet: UnauthorizedOperation: You are not authorized to perform this operation."
            )
        );
    }
    assert!(seen.planned.is_empty(), "{:?}", seen.planned);
}

#[tokio::test]
async fn pods_of_a_dry_run_launch_say_what_would_have_launched() {
    let p = base(&[pool("general", &["c6i"], WHEN_EMPTY, "")], "  dryRun: true");
    let mut h = Harness::new(&p);
    h.apply(&deployment("inflate", 2, "1", "", ""));
    let decided = until_event(&h.world, &mut h.lp, "scale-up-decision", 30).await.expect("a decision");
    let claim = &decided.detail["claims"][0];
    let why = format!(
        "dry run: capstan would launch a {} (on-demand, {}) for it",
        claim["instanceType"].as_str().unwrap(),
        claim["zone"].as_str().unwrap()
    );
    let seen = &h.lp.status().seen;
    let unplaced = pods("default/inflate-", &seen.unplaced);
    assert_eq!(unplaced.len(), 2, "{:?}", seen.unplaced);
    assert!(unplaced.iter().all(|p| seen.unplaced[p] == why), "{:?}", seen.unplaced);
    assert!(h.world.cloud.current().is_empty(), "nothing launched in a dry run");
}

#[tokio::test]
async fn pods_of_a_launch_wait_for_its_claim_and_then_are_nominated_to_it() {
    let p = base(&[pool("general", &["c6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&deployment("inflate", 2, "1", "", ""));
    let launched = until_event(&h.world, &mut h.lp, "launch", 30).await.expect("a launch");
    let claim = launched.detail["claim"].as_str().unwrap().to_string();
    let ty = launched.detail["instanceType"].as_str().unwrap().to_string();
    let seen = h.lp.status().seen.clone();
    let planned = pods("default/inflate-", &seen.planned);
    assert_eq!(planned.len(), 2, "{:?}", seen.planned);
    for p in &planned {
        assert_eq!(seen.planned[p], format!("NodeClaim {claim} ({ty}) launching"));
    }
    assert!(seen.unplaced.is_empty(), "{:?}", seen.unplaced);

    // Passes while the node boots nominate the pods to the claim being launched, and once the
    // pods run they are in neither map.
    h.world.step(&mut h.lp).await;
    h.world.clock.advance(Duration::from_secs(10));
    h.world.step(&mut h.lp).await;
    let seen = h.lp.status().seen.clone();
    for p in &planned {
        assert_eq!(seen.planned.get(p), Some(&format!("nominated to NodeClaim {claim} ({ty}) launching")));
    }
    assert!(h.until(300, |w| w.cluster.running("default", "inflate") == 2).await, "{}", h.timeline());
    h.world.step(&mut h.lp).await;
    let seen = &h.lp.status().seen;
    assert!(seen.planned.is_empty() && seen.unplaced.is_empty(), "{:?} {:?}", seen.planned, seen.unplaced);
}

#[tokio::test]
async fn a_launched_instance_is_seen_in_the_pass_that_launched_it() {
    let p = base(&[pool("general", &["c6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&deployment("inflate", 2, "1", "", ""));
    let launched = until_event(&h.world, &mut h.lp, "launch", 30).await.expect("a launch");
    let id = launched.detail["instance"].as_str().unwrap();
    let seen = &h.lp.status().seen;
    let i = seen.instances.iter().find(|i| i.id == id).unwrap_or_else(|| panic!("{id} not in {:?}", seen.instances));
    assert_eq!(i.claim, launched.detail["claim"].as_str().unwrap());
    assert_eq!(i.state, InstanceState::Pending);
    assert_eq!(seen.instances.iter().filter(|i| i.id == id).count(), 1);
}

#[tokio::test]
async fn a_terminated_instance_is_shutting_down_in_the_pass_that_terminated_it() {
    let p = base(&[pool("general", &["c6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&deployment("inflate", 2, "1", "", ""));
    assert!(h.until(300, |w| w.cluster.running("default", "inflate") == 2).await, "{}", h.timeline());
    h.scale("inflate", 0);
    let terminated = until_event(&h.world, &mut h.lp, "terminate", 300).await.expect("the empty node goes");
    let id = terminated.detail["instance"].as_str().unwrap();
    let seen = &h.lp.status().seen;
    let i = seen.instances.iter().find(|i| i.id == id).unwrap_or_else(|| panic!("{id} not in {:?}", seen.instances));
    assert_eq!(i.state, InstanceState::ShuttingDown);
}

#[tokio::test]
async fn an_instance_timed_out_for_registration_is_shutting_down_at_once() {
    let p = base(&[pool("general", &["c6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.world.cluster.break_kubelets(true);
    h.apply(&deployment("inflate", 2, "1", "", ""));
    let timeout = until_event(&h.world, &mut h.lp, "registration-timeout", 1000).await.expect("a timeout");
    let id = timeout.detail["instance"].as_str().unwrap();
    let seen = &h.lp.status().seen;
    let i = seen.instances.iter().find(|i| i.id == id).unwrap_or_else(|| panic!("{id} not in {:?}", seen.instances));
    assert_eq!(i.state, InstanceState::ShuttingDown);
}
