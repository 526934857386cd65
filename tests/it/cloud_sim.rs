//! The simulated cloud: timing model, idempotent create, injected faults, the avoided set, and
//! the decorators (`Metered`, `DryRun`).

use std::time::Duration;

use capstan::cloud::dry_run::{Acting, DryRun};
use capstan::cloud::metered::{CloudMetrics, Metered};
use capstan::cloud::provider::{Avoid, CloudProvider, Instance, InstanceState, NodeClaim, tags};
use capstan::cloud::sim::{Call, SimCloud, Timing, VirtualClock};
use capstan::cloud::{CloudError, OfferingKey};
use capstan::scheduling::catalog::CapacityType;
use capstan::scheduling::plan::LaunchOption;

fn block<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn option(t: &str, zone: &str, price: f64) -> LaunchOption {
    LaunchOption { instance_type: t.into(), zone: zone.into(), capacity_type: CapacityType::OnDemand, price }
}

/// Creates with nothing avoided and returns the instance.
async fn create(cloud: &impl CloudProvider, claim: &NodeClaim) -> Result<Instance, CloudError> {
    cloud.create(claim, &Avoid::new()).await.map(|c| c.instance)
}

fn on_demand(t: &str, zone: &str) -> OfferingKey {
    OfferingKey::new(t, zone, CapacityType::OnDemand)
}

fn claim(name: &str) -> NodeClaim {
    NodeClaim {
        name: name.into(),
        node_pool: "default".into(),
        node_class: "default".into(),
        options: vec![option("m6i.xlarge", "us-east-1a", 0.192), option("m6a.xlarge", "us-east-1b", 0.1728)],
        policy_revision: "main@sha1:abc".into(),
        tags: Default::default(),
    }
}

#[test]
fn launch_runs_then_becomes_ready_about_two_minutes_later() {
    let clock = VirtualClock::default();
    clock.advance(Duration::from_secs(1000));
    let cloud = SimCloud::new("dev.example.com", clock.clone());
    let i = block(create(&cloud, &claim("c1"))).unwrap();
    assert_eq!(
        (i.state, i.instance_type.as_str(), i.zone.as_str()),
        (InstanceState::Pending, "m6i.xlarge", "us-east-1a")
    );
    assert_eq!(i.provider_id(), format!("aws:///us-east-1a/{}", i.id));
    assert_eq!(i.tags[&tags::cluster("dev.example.com")], "owned");
    assert_eq!(i.tags[tags::NODE_CLAIM], "c1");
    assert_eq!(i.tags[tags::POLICY_REVISION], "main@sha1:abc");
    clock.advance(Duration::from_secs(14));
    assert_eq!(block(cloud.get(&i.id)).unwrap().state, InstanceState::Pending);
    clock.advance(Duration::from_secs(1));
    assert_eq!(block(cloud.get(&i.id)).unwrap().state, InstanceState::Running);
    assert_eq!(cloud.ready_at(&i), Duration::from_secs(1120));
    let custom = SimCloud::new("dev", VirtualClock::default())
        .with_timing(Timing { running_after: Duration::from_secs(1), ready_after: Duration::from_secs(30) });
    let j = block(create(&custom, &claim("c"))).unwrap();
    assert_eq!(custom.ready_at(&j), Duration::from_secs(30));
}

#[test]
fn create_is_idempotent_by_claim_name() {
    let cloud = SimCloud::new("dev", VirtualClock::default());
    let a = block(create(&cloud, &claim("same"))).unwrap();
    let b = block(create(&cloud, &claim("same"))).unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(block(cloud.list()).unwrap().len(), 1);
}

#[test]
fn insufficient_capacity_falls_back_then_names_every_failed_offering() {
    let cloud = SimCloud::new("dev", VirtualClock::default());
    cloud.exhaust("m6i.xlarge", "us-east-1a", CapacityType::OnDemand);
    let created = block(cloud.create(&claim("c1"), &Avoid::new())).unwrap();
    assert_eq!(created.instance.instance_type, "m6a.xlarge", "the second option");
    assert_eq!(created.refused, [on_demand("m6i.xlarge", "us-east-1a")], "the refusal is reported, typed");
    // Like EC2, the catalog says nothing of capacity: the caller learns it from `create`.
    let cat = block(cloud.catalog()).unwrap();
    let off = cat
        .get("m6i.xlarge")
        .unwrap()
        .offerings
        .iter()
        .find(|o| o.zone == "us-east-1a" && o.capacity_type == CapacityType::OnDemand)
        .unwrap();
    assert!(off.available, "the catalog does not reveal capacity");
    cloud.exhaust("m6a.xlarge", "us-east-1b", CapacityType::OnDemand);
    match block(create(&cloud, &claim("c2"))) {
        Err(CloudError::InsufficientCapacity { offerings }) => {
            assert_eq!(offerings, [on_demand("m6i.xlarge", "us-east-1a"), on_demand("m6a.xlarge", "us-east-1b")])
        }
        other => panic!("{other:?}"),
    }
    cloud.restore_capacity();
    assert!(block(create(&cloud, &claim("c2"))).is_ok());
}

#[test]
fn injected_failures_and_spot_interruptions() {
    let clock = VirtualClock::default();
    let cloud = SimCloud::new("dev", clock.clone());
    cloud.fail_next(CloudError::Throttled("slow down".into()));
    assert!(matches!(block(create(&cloud, &claim("c1"))), Err(CloudError::Throttled(_))));
    let i = block(create(&cloud, &claim("c1"))).unwrap();
    clock.advance(Duration::from_secs(30));
    cloud.interrupt(&i.id);
    let notices = block(cloud.notices()).unwrap();
    assert_eq!(notices.len(), 1, "the interruption is announced on the queue");
    let event = notices[0].event.as_ref().unwrap();
    assert_eq!(event.instance_ids, vec![i.id.clone()]);
    assert_eq!(event.kind, capstan::cloud::interruption::Kind::SpotInterruption);
    clock.advance(capstan::cloud::sim::INTERRUPTION_NOTICE - Duration::from_secs(1));
    assert_eq!(block(cloud.get(&i.id)).unwrap().state, InstanceState::Running, "two minutes of notice");
    clock.advance(Duration::from_secs(1));
    assert_eq!(block(cloud.get(&i.id)).unwrap().state, InstanceState::Terminated);
    assert!(block(cloud.list()).unwrap().is_empty(), "terminated instances are not listed");
    assert!(block(cloud.delete(&i.id)).is_ok(), "deleting what is gone succeeds");
    assert!(block(cloud.delete("i-unknown")).is_ok());
    assert!(matches!(block(cloud.get("i-unknown")), Err(CloudError::NotFound(_))));
    let mut bad = claim("c9");
    bad.options = vec![option("z9.huge", "us-east-1a", 1.0)];
    assert!(matches!(block(create(&cloud, &bad)), Err(CloudError::InvalidConfig(m)) if m.contains("z9.huge")));
    assert_eq!(cloud.calls()[..2], [Call::Create { claim: "c1".into() }, Call::Create { claim: "c1".into() }]);
}

#[test]
fn metered_counts_calls_errors_and_latency() {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = CloudMetrics::register(&mut registry);
    let sim = SimCloud::new("dev", VirtualClock::default());
    let cloud = Metered::new(sim.clone(), metrics);
    block(create(&cloud, &claim("a"))).unwrap();
    sim.fail_next(CloudError::Throttled("x".into()));
    assert!(block(cloud.list()).is_err());
    block(cloud.list()).unwrap();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.contains("capstan_cloud_calls_total{operation=\"create\"} 1"), "{text}");
    assert!(text.contains("capstan_cloud_calls_total{operation=\"list\"} 2"), "{text}");
    assert!(text.contains("capstan_cloud_errors_total{operation=\"list\",kind=\"throttled\"} 1"), "{text}");
    assert!(text.contains("capstan_cloud_call_seconds_count{operation=\"create\"} 1"), "{text}");
}

#[test]
fn create_never_launches_an_avoided_offering() {
    let cloud = SimCloud::new("dev", VirtualClock::default());
    let avoid = Avoid::from([on_demand("m6i.xlarge", "us-east-1a")]);
    let created = block(cloud.create(&claim("c1"), &avoid)).unwrap();
    assert_eq!(created.instance.instance_type, "m6a.xlarge", "the avoided first option is skipped");
    assert!(created.refused.is_empty(), "an avoided offering is not reported as refused again");
    let all = Avoid::from([on_demand("m6i.xlarge", "us-east-1a"), on_demand("m6a.xlarge", "us-east-1b")]);
    match block(cloud.create(&claim("c2"), &all)) {
        Err(CloudError::InsufficientCapacity { offerings }) => assert_eq!(offerings.len(), 2, "{offerings:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(block(cloud.list()).unwrap().len(), 1, "nothing launched for c2");
}

#[test]
fn dry_run_reads_through_and_changes_nothing() {
    let sim = SimCloud::new("dev", VirtualClock::default());
    let live = block(create(&sim, &claim("real"))).unwrap();
    let dry = DryRun::new(sim.clone());
    assert!(matches!(
        block(create(&dry, &claim("c1"))),
        Err(CloudError::DryRun { operation: "create", ref target }) if target == "NodeClaim/c1"
    ));
    assert!(matches!(block(dry.delete(&live.id)), Err(CloudError::DryRun { operation: "delete", .. })));
    assert_eq!(block(dry.list()).unwrap().len(), 1, "reads go to the wrapped provider");
    assert_eq!(block(dry.get(&live.id)).unwrap().state, InstanceState::Pending, "not deleted");
    assert!(!block(dry.catalog()).unwrap().types.is_empty());
    assert!(
        !sim.calls().iter().any(|c| matches!(c, Call::Create { claim } if claim == "c1")),
        "never reached the cloud"
    );
    // Chosen once per policy; the live choice acts.
    assert!(block(create(&Acting::per_policy(&sim, false), &claim("c2"))).is_ok());
    assert!(matches!(block(create(&Acting::per_policy(&sim, true), &claim("c3"))), Err(CloudError::DryRun { .. })));
    assert_eq!(block(sim.list()).unwrap().len(), 2);
}

#[tokio::test]
async fn a_dry_run_policy_records_launch_decisions_and_launches_nothing() {
    use crate::capacity::{Harness, base, deployment, pool};
    let p = base(
        &[pool("general", &["c6i"], "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30s", "")],
        "  dryRun: true",
    );
    let mut h = Harness::new(&p);
    h.apply(&deployment("inflate", 4, "1", "", ""));
    h.until(30, |_| false).await;
    assert!(h.world.cloud.instances().is_empty(), "nothing launched: {}", h.timeline());
    let decisions = &h.lp.status().recent_decisions;
    assert!(decisions.iter().any(|d| d.action == "launch (dry run)" && d.reason == "provisioning"), "{decisions:?}");
    assert!(decisions.iter().all(|d| d.action != "launch"), "{decisions:?}");
    assert_eq!(h.count("launch-failed"), 0, "a dry run is not a failure: {}", h.timeline());
}
