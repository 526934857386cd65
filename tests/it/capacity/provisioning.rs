//! Scale-up: from zero, around insufficient capacity, up to NodePool limits, and an instance
//! that never becomes a node.

use capstan::cloud::sim::Call;
use capstan::scheduling::catalog::CapacityType;

use super::*;

const WHEN_EMPTY: &str = "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30s";

#[tokio::test]
async fn scale_up_from_zero_batches_pods_into_one_decision() {
    let p = base(&[pool("general", &["c6i", "m6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&deployment("inflate", 0, "1", "", ""));
    h.until(3, |_| false).await;
    assert_eq!(h.count("launch"), 0, "nothing pending, nothing launched");
    h.scale("inflate", 16);
    let t0 = h.world.now();
    assert!(h.until(300, |w| w.cluster.running("default", "inflate") == 16).await, "{}", h.timeline());
    let decisions = h.of("scale-up-decision");
    assert_eq!(decisions.len(), 1, "one batch: {}", h.timeline());
    let d = decisions[0];
    assert!(d.at >= t0 + Duration::from_secs(1), "the batch waits 1s of idle time");
    assert!(d.at <= t0 + Duration::from_secs(3), "{:?}", d.at - t0);
    let launched: usize =
        d.detail["claims"].as_array().unwrap().iter().map(|c| c["pods"].as_u64().unwrap() as usize).sum();
    assert_eq!(launched, 16);
    let ready = h.of("node-ready");
    assert!(!ready.is_empty());
    let up = ready[0].at - t0;
    assert!(
        up >= Duration::from_secs(115) && up <= Duration::from_secs(130),
        "node Ready in about two minutes: {up:?}"
    );
    for t in h.live_types() {
        assert!(t.starts_with("c6i.") || t.starts_with("m6i."), "{t} is outside the pool's families");
    }
    // Nodes carry the pool's labels, applied on registration.
    let snap = h.world.cluster.snapshot().await.unwrap();
    for n in &snap.nodes {
        assert_eq!(n.labels.get("karpenter.sh/nodepool").map(String::as_str), Some("general"));
        assert_eq!(n.labels.get("karpenter.sh/capacity-type").map(String::as_str), Some("on-demand"));
        assert!(n.labels.contains_key("karpenter.k8s.aws/instance-family"));
    }
    // The pods were told which NodeClaim serves them.
    let nominated = h.world.cluster.events().iter().filter(|e| e.reason == "Nominated").count();
    assert_eq!(nominated, 16);
}

#[tokio::test]
async fn insufficient_capacity_falls_back_to_other_types() {
    let p = base(&[pool("general", &["c6i", "m6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    // Every c6i offering is out of capacity: the cheaper family cannot be had.
    let catalog = capstan::scheduling::builtin::catalog();
    for t in catalog.types.iter().filter(|t| t.name.starts_with("c6i.")) {
        for o in &t.offerings {
            h.world.cloud.exhaust(&t.name, &o.zone, CapacityType::OnDemand);
        }
    }
    h.apply(&deployment("inflate", 6, "1", "", ""));
    assert!(h.until(300, |w| w.cluster.running("default", "inflate") == 6).await, "{}", h.timeline());
    let types = h.live_types();
    assert!(!types.is_empty());
    assert!(types.iter().all(|t| t.starts_with("m6i.")), "fell back to m6i: {types:?}");
}

#[tokio::test]
async fn an_offering_out_of_capacity_is_avoided_and_the_pods_still_run() {
    let p = base(&[pool("general", &["c6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    // Only c6i.2xlarge may be used, and us-east-1a has none: the launch must go elsewhere.
    let catalog = capstan::scheduling::builtin::catalog();
    for t in catalog.types.iter().filter(|t| t.name.starts_with("c6i.")) {
        h.world.cloud.exhaust(&t.name, "us-east-1a", CapacityType::OnDemand);
    }
    h.apply(&deployment(
        "inflate",
        4,
        "1",
        "      nodeSelector: {node.kubernetes.io/instance-type: c6i.2xlarge}\n",
        "",
    ));
    assert!(h.until(300, |w| w.cluster.running("default", "inflate") == 4).await, "{}", h.timeline());
    let zones: Vec<String> = h.world.cloud.instances().iter().map(|i| i.zone.clone()).collect();
    assert!(!zones.is_empty() && zones.iter().all(|z| z != "us-east-1a"), "{zones:?}");
}

#[tokio::test]
async fn node_pool_limits_stop_scale_up_with_a_clear_reason() {
    let p = base(&[pool("small", &["c6i"], WHEN_EMPTY, "  limits:\n    cpu: \"8\"")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&deployment("inflate", 20, "1", "", ""));
    h.until(300, |_| false).await;
    let cpus: u32 = h.live_types().iter().map(|t| capstan::scheduling::builtin::catalog().get(t).unwrap().vcpu).sum();
    assert!(cpus > 0 && cpus <= 8, "launched {cpus} vCPUs against a limit of 8");
    let why = h.of("unschedulable");
    assert!(!why.is_empty(), "{}", h.timeline());
    let reason = why[0].detail["reason"].as_str().unwrap();
    assert!(reason.contains("NodePool small limit on cpu reached"), "{reason}");
    let warned = h.world.cluster.events().iter().filter(|e| e.reason == "FailedScaleUp").count();
    assert_eq!(warned, why.len(), "each waiting pod gets one event, not one per pass");
    assert!(h.running("inflate") < 20);
}

#[tokio::test]
async fn an_instance_that_never_registers_is_terminated_after_15_minutes() {
    let p = base(&[pool("general", &["c6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.world.cluster.break_kubelets(true);
    h.apply(&deployment("inflate", 2, "1", "", ""));
    let started = h.world.now();
    assert!(!h.until(1000, |_| false).await);
    let timeouts = h.of("registration-timeout");
    assert_eq!(timeouts.len(), 1, "{}", h.timeline());
    let after = timeouts[0].at - started;
    assert!(after >= Duration::from_secs(900) && after <= Duration::from_secs(905), "{after:?}");
    let first = h.of("launch")[0].detail["instance"].as_str().unwrap().to_string();
    assert!(h.world.cloud.calls().contains(&Call::Delete { id: first.clone() }));
    // The pods are still pending, so a new node is launched; the kubelets work again.
    h.world.cluster.break_kubelets(false);
    assert!(h.until(400, |w| w.cluster.running("default", "inflate") == 2).await, "{}", h.timeline());
    assert!(h.count("launch") >= 2);
}
