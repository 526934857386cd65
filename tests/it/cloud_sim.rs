//! The simulated cloud: timing model, idempotent create, injected faults, and the metrics
//! wrapper.

use std::time::Duration;

use capstan::cloud::CloudError;
use capstan::cloud::metered::{CloudMetrics, Metered};
use capstan::cloud::provider::{CloudProvider, InstanceState, NodeClaim, tags};
use capstan::cloud::sim::{Call, SimCloud, Timing, VirtualClock};
use capstan::scheduling::catalog::CapacityType;
use capstan::scheduling::plan::LaunchOption;

fn block<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn option(t: &str, zone: &str, price: f64) -> LaunchOption {
    LaunchOption { instance_type: t.into(), zone: zone.into(), capacity_type: CapacityType::OnDemand, price }
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
    let i = block(cloud.create(&claim("c1"))).unwrap();
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
    let j = block(custom.create(&claim("c"))).unwrap();
    assert_eq!(custom.ready_at(&j), Duration::from_secs(30));
}

#[test]
fn create_is_idempotent_by_claim_name() {
    let cloud = SimCloud::new("dev", VirtualClock::default());
    let a = block(cloud.create(&claim("same"))).unwrap();
    let b = block(cloud.create(&claim("same"))).unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(block(cloud.list()).unwrap().len(), 1);
}

#[test]
fn insufficient_capacity_falls_back_then_names_every_failed_offering() {
    let cloud = SimCloud::new("dev", VirtualClock::default());
    cloud.exhaust("m6i.xlarge", "us-east-1a", CapacityType::OnDemand);
    let i = block(cloud.create(&claim("c1"))).unwrap();
    assert_eq!(i.instance_type, "m6a.xlarge", "the second option");
    let cat = block(cloud.catalog()).unwrap();
    let off = cat
        .get("m6i.xlarge")
        .unwrap()
        .offerings
        .iter()
        .find(|o| o.zone == "us-east-1a" && o.capacity_type == CapacityType::OnDemand)
        .unwrap();
    assert!(!off.available, "the catalog shows the offering unavailable");
    cloud.exhaust("m6a.xlarge", "us-east-1b", CapacityType::OnDemand);
    match block(cloud.create(&claim("c2"))) {
        Err(CloudError::InsufficientCapacity { offerings }) => {
            assert_eq!(offerings, ["m6i.xlarge/us-east-1a/on-demand", "m6a.xlarge/us-east-1b/on-demand"])
        }
        other => panic!("{other:?}"),
    }
    cloud.restore_capacity();
    assert!(block(cloud.create(&claim("c2"))).is_ok());
}

#[test]
fn injected_failures_and_spot_interruptions() {
    let cloud = SimCloud::new("dev", VirtualClock::default());
    cloud.fail_next(CloudError::Throttled("slow down".into()));
    assert!(matches!(block(cloud.create(&claim("c1"))), Err(CloudError::Throttled(_))));
    let i = block(cloud.create(&claim("c1"))).unwrap();
    cloud.interrupt(&i.id);
    assert_eq!(block(cloud.get(&i.id)).unwrap().state, InstanceState::Terminated);
    assert!(block(cloud.list()).unwrap().is_empty(), "terminated instances are not listed");
    assert!(block(cloud.delete(&i.id)).is_ok(), "deleting what is gone succeeds");
    assert!(block(cloud.delete("i-unknown")).is_ok());
    assert!(matches!(block(cloud.get("i-unknown")), Err(CloudError::NotFound(_))));
    let mut bad = claim("c9");
    bad.options = vec![option("z9.huge", "us-east-1a", 1.0)];
    assert!(matches!(block(cloud.create(&bad)), Err(CloudError::InvalidConfig(m)) if m.contains("z9.huge")));
    assert_eq!(cloud.calls()[..2], [Call::Create { claim: "c1".into() }, Call::Create { claim: "c1".into() }]);
}

#[test]
fn metered_counts_calls_errors_and_latency() {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = CloudMetrics::register(&mut registry);
    let sim = SimCloud::new("dev", VirtualClock::default());
    let cloud = Metered::new(sim.clone(), metrics);
    block(cloud.create(&claim("a"))).unwrap();
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
