//! Passes driven by change, as the simulated daemon runs them (`app::drive`): a 20 ms tick in
//! which the cluster converges and the loop passes only when `app::wake::Wake` wants it. Run on
//! virtual time: an idle cluster gets a pass about every 10 s, a scale-up still launches right
//! after the batch window.

use std::sync::Mutex;

use capstan::app::drive::{TICK, converge_and_pass};
use capstan::app::wake::{IDLE_PASS_BOUND, Wake};
use capstan::capacity::{CapacityLoop, fingerprint};
use capstan::cloud::metered::{CloudMetrics, Metered, OpLabels};
use capstan::cloud::sim::SimCloud;
use capstan::cluster::sim::SimCluster;
use prometheus_client::registry::Registry;

use super::*;

const WHEN_EMPTY: &str = "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30s";

type Loop = CapacityLoop<Metered<SimCloud>, SimCluster>;

/// Ticks for `d` of virtual time; the passes run.
async fn run(world: &World, lp: &mut Loop, wake: &Mutex<Wake>, d: Duration) -> u64 {
    let end = world.now() + d;
    let mut passes = 0;
    while world.now() < end {
        passes += u64::from(converge_and_pass(world, lp, wake).await);
        world.clock.advance(TICK);
    }
    passes
}

fn creates(m: &CloudMetrics) -> u64 {
    m.calls.get_or_create(&OpLabels { operation: "create" }).get()
}

#[tokio::test]
async fn an_idle_cluster_gets_a_pass_per_idle_bound_and_a_scale_up_launches_after_the_batch_window() {
    let p = base(&[pool("general", &["c6i", "m6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let world = World::new("test.example.com", START);
    let metrics = CloudMetrics::register(&mut Registry::default());
    let rules = rules(&p, "main@sha1:0000000000000000000000000000000000000001");
    let idle = rules.cluster.batch_idle;
    let mut lp = CapacityLoop::new(Metered::new(world.cloud.clone(), metrics.clone()), world.cluster.clone(), rules);
    let wake = Mutex::new(Wake::default());
    world.cluster.apply(workload::parse("w.yaml", &deployment("inflate", 4, "1", "", "")).unwrap());
    run(&world, &mut lp, &wake, Duration::from_secs(300)).await;
    assert_eq!(world.cluster.running("default", "inflate"), 4, "the pods are served first");
    assert!(!lp.in_flight(), "the launch has landed");

    // Ten idle minutes: a pass per idle bound (the disruption poll has the same period), where
    // a pass per tick would be 30,000.
    let minutes = Duration::from_secs(600);
    let passes = run(&world, &mut lp, &wake, minutes).await;
    let bound = minutes.as_secs() / IDLE_PASS_BOUND.as_secs() + 2;
    eprintln!("passes in 10 idle minutes: {passes}");
    assert!(passes <= bound, "{passes} passes in 10 idle minutes; at most {bound}");
    assert!(passes >= bound - 4, "{passes} passes in 10 idle minutes: the idle bound should run about {bound}");
    let quiet = fingerprint(&world.cluster.snapshot().await.unwrap());
    assert_eq!(quiet, fingerprint(&world.cluster.snapshot().await.unwrap()), "a quiet cluster digests the same");

    // A scale-up: the pods turning pending run a pass at once, and the launch follows the
    // batch window by at most a tick or two.
    let before = creates(&metrics);
    world.cluster.scale("default", "inflate", 24).unwrap();
    let scaled = world.now();
    while creates(&metrics) == before {
        assert!(world.now() < scaled + Duration::from_secs(30), "no launch within 30 s");
        converge_and_pass(&world, &mut lp, &wake).await;
        world.clock.advance(TICK);
    }
    let latency = world.now() - scaled;
    eprintln!("scale-up → CreateFleet: {latency:?} (batch idle {idle:?})");
    assert!(latency <= idle + Duration::from_millis(100), "{latency:?} from pending to CreateFleet");
}
