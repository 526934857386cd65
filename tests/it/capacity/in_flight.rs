//! Capacity in flight: a NodeClaim launched for pending pods keeps counting for them until
//! its node is initialized, so the loop neither asks for the same claim again nor lets other
//! pods take the node it launched for them.

use std::collections::BTreeMap;

use capstan::cloud::sim::Call;

use super::*;

const WHEN_EMPTY: &str = "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30s";

/// Spot capacity behind a taint only tolerating pods may use.
const SPOT: &str = "apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: spot
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      requirements:
        - key: karpenter.k8s.aws/instance-family
          operator: In
          values: [c6i]
        - key: karpenter.sh/capacity-type
          operator: In
          values: [spot]
      taints:
        - {key: example.com/spot, effect: NoSchedule}
  disruption:
    consolidationPolicy: WhenEmpty
    consolidateAfter: 30s
  limits: {cpu: \"1000\"}
";

/// Pods of 1 cpu on c6i.large (1.93 cpu allocatable): one pod per node.
const LARGE: &str = "      nodeSelector: {node.kubernetes.io/instance-type: c6i.large}\n";

const ZONE_SPREAD: &str = "      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: DoNotSchedule
          labelSelector:
            matchLabels: {app: checkout}
";

const TOLERATES_SPOT: &str = "      tolerations:
        - {key: example.com/spot, operator: Exists, effect: NoSchedule}
";

/// How many times each claim was asked of the cloud.
fn creates(h: &Harness) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in h.world.cloud.calls() {
        if let Call::Create { claim } = c {
            *out.entry(claim).or_default() += 1;
        }
    }
    out
}

#[tokio::test]
async fn a_zone_spread_pod_keeps_the_node_launched_for_it_while_it_is_in_flight() {
    let p = base(&[pool("general", &["c6i"], WHEN_EMPTY, ""), SPOT.to_string()], "  dryRun: false");
    let mut h = Harness::new(&p);
    // Each pod needs a c6i.large of its own: the spread pod on-demand, the other on cheaper
    // spot; the other would also fit the spread pod's node, which must stay the spread pod's.
    h.apply(&deployment("checkout", 1, "1", &format!("{LARGE}{ZONE_SPREAD}"), ""));
    h.apply(&deployment("worker", 1, "1", &format!("{LARGE}{TOLERATES_SPOT}"), ""));
    let t0 = h.world.now();
    let served = h
        .until(300, |w| w.cluster.running("default", "checkout") == 1 && w.cluster.running("default", "worker") == 1)
        .await;
    assert!(served, "both pods run once their nodes are Ready:\n{}", h.timeline());
    let waited = h.world.now() - t0;
    assert!(waited <= Duration::from_secs(130), "served {waited:?} after creation:\n{}", h.timeline());
    let asked = creates(&h);
    assert_eq!(asked.len(), 2, "one claim per pod: {asked:?}\n{}", h.timeline());
    assert!(asked.values().all(|n| *n == 1), "a claim in flight is not asked for again: {asked:?}\n{}", h.timeline());
    assert_eq!(h.count("scale-up-decision"), 1, "{}", h.timeline());
}

#[tokio::test]
async fn a_node_keeps_counting_for_its_pods_until_its_startup_taints_are_gone() {
    let startup = "      startupTaints:\n        - {key: example.com/agent-not-ready, effect: NoExecute}\n";
    let general = pool("general", &["c6i"], WHEN_EMPTY, "").replace(
        "      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}\n",
        &format!("      nodeClassRef: {{group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}}\n{startup}"),
    );
    assert!(general.contains("startupTaints"), "{general}");
    let p = base(&[general], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&deployment("inflate", 1, "1", "", ""));
    // Nothing here removes the startup taint, so the node stays uninitialized (and empty, so
    // it is consolidated after 130 s: the check ends before).
    h.until(125, |_| false).await;
    let asked = creates(&h);
    assert_eq!(asked.len(), 1, "{asked:?}\n{}", h.timeline());
    assert!(asked.values().all(|n| *n == 1), "the claim is not asked for again: {asked:?}\n{}", h.timeline());
    let snap = h.world.cluster.snapshot().await.unwrap();
    assert!(
        snap.nodes.iter().all(|n| n.taints.iter().any(|t| t.key == "example.com/agent-not-ready")),
        "the startup taint is on the node"
    );
}

#[tokio::test]
async fn a_node_its_kubelet_registered_has_its_pool_taints_before_capstan_applies_them() {
    let p = base(&[pool("general", &["c6i"], WHEN_EMPTY, ""), SPOT.to_string()], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&deployment("worker", 1, "1", &format!("{LARGE}{TOLERATES_SPOT}"), ""));
    let t0 = h.world.now();
    // Until the step before the spot node's kubelet registers it (15 s after the launch).
    h.until(30, |w| w.now() >= t0 + Duration::from_secs(15)).await;
    assert_eq!(h.world.cluster.snapshot().await.unwrap().nodes.len(), 0, "{}", h.timeline());
    // A pod that does not tolerate spot arrives; its batch is decided in the step the node
    // appears, before capstan has given the node its taint.
    h.apply(&deployment("api", 1, "1", LARGE, ""));
    h.until(300, |w| w.cluster.running("default", "worker") == 1 && w.cluster.running("default", "api") == 1).await;
    let asked = creates(&h);
    assert_eq!(asked.len(), 2, "{asked:?}\n{}", h.timeline());
    assert!(asked.values().all(|n| *n == 1), "no claim is asked for twice: {asked:?}\n{}", h.timeline());
    let api = h
        .of("launch")
        .iter()
        .find(|e| e.detail["claim"].as_str().is_some_and(|c| c.starts_with("general-")))
        .map(|e| e.at);
    assert_eq!(
        api,
        Some(t0 + Duration::from_secs(16)),
        "the api pod's claim is launched in its first pass:\n{}",
        h.timeline()
    );
}

#[tokio::test]
async fn a_node_its_kubelet_registered_counts_towards_its_pool_limits() {
    let limited = pool("limited", &["r5a"], WHEN_EMPTY, "  limits:\n    cpu: \"8\"");
    let p = base(&[limited], "  dryRun: false");
    let mut h = Harness::new(&p);
    h.apply(&deployment("web", 16, "1", "", ""));
    let t0 = h.world.now();
    h.until(30, |w| w.now() >= t0 + Duration::from_secs(15)).await;
    // One more pod: its batch is decided in the step the first node appears.
    h.scale("web", 17);
    h.until(200, |_| false).await;
    let catalog = capstan::scheduling::builtin::catalog();
    let cpus: u32 = h.live_types().iter().map(|t| catalog.get(t).unwrap().vcpu).sum();
    assert!(cpus > 0 && cpus <= 8, "launched {cpus} vCPUs against a limit of 8:\n{}", h.timeline());
}
