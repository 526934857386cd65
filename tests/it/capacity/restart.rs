//! A daemon that restarts in the middle of a launch loses nothing and launches nothing twice:
//! the new process re-derives in-flight capacity from the cloud's instance tags.

use capstan::cloud::provider::CloudProvider;
use capstan::provisioning::{self, Request};

use super::*;

const WHEN_EMPTY: &str = "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30s";

#[tokio::test]
async fn restart_after_launch_launches_nothing_twice() {
    let p = base(&[pool("general", &["c6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&deployment("inflate", 16, "1", "", ""));
    assert!(h.until(30, |w| w.nodes() > 0).await, "{}", h.timeline());
    let launched = h.world.nodes();
    // The process dies; a new one starts with no memory.
    h.lp = h.world.capacity_loop(rules(&p, "main@sha1:0000000000000000000000000000000000000001"));
    assert!(h.until(300, |w| w.cluster.running("default", "inflate") == 16).await, "{}", h.timeline());
    assert_eq!(h.world.nodes(), launched, "no second launch for pods already served: {}", h.timeline());
}

#[tokio::test]
async fn restart_between_create_and_record_reuses_the_claim() {
    let p = base(&[pool("general", &["c6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let r = rules(&p, "main@sha1:0000000000000000000000000000000000000001");
    let mut h = Harness::new(&p);
    h.apply(&deployment("inflate", 16, "1", "", ""));
    // Let the scheduler mark the pods unschedulable, without the loop acting.
    h.world.cluster.tick();
    // The old process decided and called CreateFleet, then died before anything was recorded.
    let snap = h.world.cluster.snapshot().await.unwrap();
    let catalog = h.world.cloud.catalog().await.unwrap();
    let decided = provisioning::provision(Request { snapshot: &snap, instances: &[], rules: &r, catalog: &catalog });
    assert!(!decided.launches.is_empty());
    for l in &decided.launches {
        h.world.cloud.create(&l.claim, &Default::default()).await.unwrap();
    }
    let before = h.world.nodes();
    // Deciding again from the same state names the same claims, so a retried CreateFleet
    // returns the instance it already made.
    let again = provisioning::provision(Request { snapshot: &snap, instances: &[], rules: &r, catalog: &catalog });
    let names = |p: &provisioning::Provision| p.launches.iter().map(|l| l.claim.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&decided), names(&again));
    for l in &again.launches {
        h.world.cloud.create(&l.claim, &Default::default()).await.unwrap();
    }
    assert_eq!(h.world.nodes(), before);
    // The new process sees the instances in flight and launches nothing more.
    assert!(h.until(300, |w| w.cluster.running("default", "inflate") == 16).await, "{}", h.timeline());
    assert_eq!(h.count("launch"), 0, "{}", h.timeline());
    assert_eq!(h.world.nodes(), before);
}
