//! What the capacity loop costs EC2: counted with `Metered` over the simulated cloud, pass by
//! pass as the daemon runs them (every 500 ms), on an idle cluster and during a scale-up.

use capstan::capacity::CapacityLoop;
use capstan::cloud::metered::{CloudMetrics, Metered, OpLabels};
use prometheus_client::registry::Registry;

use super::*;

const WHEN_EMPTY: &str = "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30s";
/// The daemon's pass interval on the real backends.
const PASS: Duration = Duration::from_millis(500);

fn calls(m: &CloudMetrics) -> u64 {
    let ops = ["list", "create", "delete", "get", "catalog"];
    ops.iter().map(|op| m.calls.get_or_create(&OpLabels { operation: op }).get()).sum()
}

/// Passes every 500 ms for `secs` of virtual time.
async fn run<C: capstan::cloud::provider::CloudProvider>(
    world: &World,
    lp: &mut CapacityLoop<C, capstan::cluster::sim::SimCluster>,
    secs: u64,
) {
    let end = world.now() + Duration::from_secs(secs);
    while world.now() < end {
        world.step(lp).await;
        world.clock.advance(PASS);
    }
}

type MeteredLoop = CapacityLoop<Metered<capstan::cloud::sim::SimCloud>, capstan::cluster::sim::SimCluster>;

/// A world running `inflate` (4 pods of 1 cpu), and a loop whose cloud calls are counted.
fn metered() -> (World, CloudMetrics, MeteredLoop) {
    let p = base(&[pool("general", &["c6i", "m6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let world = World::new("test.example.com", START);
    let metrics = CloudMetrics::register(&mut Registry::default());
    let cloud = Metered::new(world.cloud.clone(), metrics.clone());
    let lp = CapacityLoop::new(
        cloud,
        world.cluster.clone(),
        rules(&p, "main@sha1:0000000000000000000000000000000000000001"),
    );
    world.cluster.apply(workload::parse("w.yaml", &deployment("inflate", 4, "1", "", "")).unwrap());
    (world, metrics, lp)
}

#[tokio::test]
async fn an_idle_cluster_costs_at_most_one_call_per_ten_seconds_and_a_scale_up_still_launches() {
    let (world, metrics, mut lp) = metered();
    run(&world, &mut lp, 300).await;
    assert_eq!(world.cluster.running("default", "inflate"), 4, "the pods are served first");

    // Ten idle minutes: the instance list is reused while nothing changes.
    let before = calls(&metrics);
    run(&world, &mut lp, 600).await;
    let idle = calls(&metrics) - before;
    eprintln!("cloud calls in 10 idle minutes at a 500 ms pass: {idle}");
    assert!(idle <= 60, "{idle} cloud calls in 10 idle minutes (at most one per 10 s)");

    // A scale-up lists again at once and launches.
    world.cluster.scale("default", "inflate", 24).unwrap();
    let before_list = metrics.calls.get_or_create(&OpLabels { operation: "list" }).get();
    run(&world, &mut lp, 5).await;
    let listed = metrics.calls.get_or_create(&OpLabels { operation: "list" }).get() - before_list;
    assert!(listed >= 5, "pending pods: the list is fresh every pass ({listed} lists in 5 s)");
    assert!(metrics.calls.get_or_create(&OpLabels { operation: "create" }).get() > 0, "a launch");
    run(&world, &mut lp, 300).await;
    assert_eq!(world.cluster.running("default", "inflate"), 24);
}

#[tokio::test]
async fn a_throttled_cloud_is_answered_with_a_growing_back_off() {
    use capstan::cloud::CloudError;
    let (world, metrics, mut lp) = metered();
    for _ in 0..3 {
        world.cloud.fail_next(CloudError::Throttled("RequestLimitExceeded".into()));
    }
    // Three throttled passes, 1 s then 2 s then 4 s apart; passes in between call nothing.
    let start = world.now();
    let mut throttled_at = Vec::new();
    while world.now() < start + Duration::from_secs(10) {
        let before = metrics
            .errors
            .get_or_create(&capstan::cloud::metered::ErrorLabels { operation: "list", kind: "throttled" })
            .get();
        world.step(&mut lp).await;
        let after = metrics
            .errors
            .get_or_create(&capstan::cloud::metered::ErrorLabels { operation: "list", kind: "throttled" })
            .get();
        if after > before {
            throttled_at.push((world.now() - start).as_millis());
        }
        world.clock.advance(PASS);
    }
    assert_eq!(throttled_at, vec![0, 1000, 3000], "throttled passes at {throttled_at:?} ms");
    run(&world, &mut lp, 300).await;
    assert_eq!(world.cluster.running("default", "inflate"), 4, "the loop recovers");
}
