//! Out of capacity, at the level of the capacity loop: the offerings the cloud refuses are
//! marked by the loop (the one owner of that memory), the loop re-solves and launches on
//! another type or zone, avoids them in later launches, and tries them again after three
//! minutes. On the simulator, and with `AwsCloud` on moto behind the fault proxy (EC2's
//! per-override `Errors[]` answers).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use capstan::capacity::CapacityLoop;
use capstan::capacity::report::LoopEvent;
use capstan::cloud::provider::{CloudProvider, InstanceState};
use capstan::cloud::unavailable::UNAVAILABLE_FOR;
use capstan::cluster::sim::SimCluster;
use capstan::cluster::workload;
use capstan::scheduling::catalog::CapacityType;
use capstan::sim::demo::START;
use capstan::sim::{STEP, World};

use super::{CLASS, Harness, base, cluster_policy, deployment, one_per_node, policy, pool, rules};

const WHEN_EMPTY: &str = "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30s";

/// Pods of 1.5 vCPU, one per node: each replica needs a node of its own.
fn web(replicas: u32) -> String {
    deployment("web", replicas, "1500m", &one_per_node("web"), "")
}

/// (instance type, zone) of a launch event.
fn launched(e: &LoopEvent) -> (String, String) {
    let s = |k: &str| e.detail[k].as_str().unwrap_or_default().to_string();
    (s("instanceType"), s("zone"))
}

#[tokio::test]
async fn on_the_simulator_refused_offerings_are_avoided_then_tried_again_after_three_minutes() {
    let p = base(&[pool("general", &["c6i", "m6i"], WHEN_EMPTY, "")], "  dryRun: false");
    let mut h = Harness::new(&p);
    // The cheapest type has no capacity anywhere.
    for zone in capstan::scheduling::builtin::ZONES {
        h.world.cloud.exhaust("c6i.large", zone, CapacityType::OnDemand);
    }
    h.apply(&web(1));
    assert!(h.until(60, |w| !w.cloud.instances().is_empty()).await, "{}", h.timeline());
    let first = h.of("launch")[0];
    let refused_at = first.at;
    assert_ne!(launched(first).0, "c6i.large", "launched on another type: {}", h.timeline());
    // Capacity is back, but the loop still avoids what it learned (the catalog never said).
    h.world.cloud.restore_capacity();
    h.world.clock.advance(Duration::from_secs(60));
    h.scale("web", 2);
    assert!(h.until(60, |w| w.cloud.instances().len() == 2).await, "{}", h.timeline());
    let second = launched(h.of("launch")[1]);
    assert!(
        !(second.0 == "c6i.large" && (second.1 == "us-east-1a" || second.1 == "us-east-1b")),
        "the refused offerings are avoided for three minutes: {second:?}"
    );
    // Three minutes after the refusal, the cheapest offering is tried again.
    let wait = (refused_at + UNAVAILABLE_FOR).saturating_sub(h.world.now());
    h.world.clock.advance(wait);
    h.scale("web", 3);
    assert!(h.until(60, |w| w.cloud.instances().len() == 3).await, "{}", h.timeline());
    assert_eq!(launched(h.of("launch")[2]), ("c6i.large".into(), "us-east-1a".into()), "{}", h.timeline());
}

/// A NodePool of several x86 families in the two zones the moto network has subnets in: more
/// offerings than one NodeClaim carries (60), so there is something left to re-solve onto.
fn aws_pool() -> String {
    "apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: general
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      requirements:
        - key: karpenter.k8s.aws/instance-family
          operator: In
          values: [c5, c6i, m5, m6i, r5, r6i]
        - key: karpenter.sh/capacity-type
          operator: In
          values: [on-demand]
        - key: topology.kubernetes.io/zone
          operator: In
          values: [us-east-1a, us-east-1b]
  disruption:
    consolidationPolicy: WhenEmpty
    consolidateAfter: 30s
  limits: {cpu: \"1000\"}
"
    .to_string()
}

/// The capacity loop acting on moto through the fault proxy, over a simulated cluster.
struct OnMoto {
    world: World,
    lp: CapacityLoop<capstan::cloud::aws::provider::AwsCloud, SimCluster>,
    proxy: crate::fault_proxy::Proxy,
    /// Subnet id → zone, to read the proxy's record of CreateFleet overrides.
    zones: BTreeMap<String, String>,
    events: Vec<LoopEvent>,
}

impl OnMoto {
    async fn new() -> OnMoto {
        let cluster = crate::aws_resolve::unique("shortage");
        let (mut cloud, proxy) = crate::aws_cloud::behind_proxy(&cluster).await;
        // The policy's NodePool names EC2NodeClass `default`.
        let class = cloud.classes["nodes"].clone();
        cloud.classes.insert("default".into(), class);
        let subnets = cloud.ec2.describe_subnets().send().await.unwrap();
        let zones = subnets
            .subnets()
            .iter()
            .filter_map(|s| Some((s.subnet_id()?.to_string(), s.availability_zone()?.to_string())))
            .collect();
        let p = policy(&[
            ("base/nodeclasses/default.yaml", CLASS.to_string()),
            ("base/nodepools/general.yaml", aws_pool()),
            ("base/policy.yaml", cluster_policy("  dryRun: false")),
        ]);
        let world = World::new("test.example.com", START);
        let lp = CapacityLoop::new(
            cloud,
            world.cluster.clone(),
            rules(&p, "main@sha1:00000000000000000000000000000000000000aa"),
        );
        OnMoto { world, lp, proxy, zones, events: Vec::new() }
    }

    fn apply(&self, yaml: &str) {
        self.world.cluster.apply(workload::parse("test.yaml", yaml).expect("workload parses"));
    }

    /// Steps (one virtual second each) until `launches` launch events were seen, at most
    /// `limit` steps.
    async fn until_launches(&mut self, launches: usize, limit: u32) -> bool {
        for _ in 0..limit {
            let ev = self.world.step(&mut self.lp).await;
            self.events.extend(ev);
            if self.launches().len() >= launches {
                return true;
            }
            self.world.clock.advance(STEP);
        }
        false
    }

    fn launches(&self) -> Vec<&LoopEvent> {
        self.events.iter().filter(|e| e.event == "launch").collect()
    }

    /// The (type, zone) overrides of every CreateFleet seen so far.
    fn fleets(&self) -> Vec<BTreeSet<(String, String)>> {
        let f = self.proxy.faults.lock().unwrap();
        f.fleets.iter().map(|o| o.iter().map(|(t, s)| (t.clone(), self.zones[s].clone())).collect()).collect()
    }

    fn timeline(&self) -> String {
        self.events.iter().map(|e| format!("{:>6}s {} {}\n", (e.at - START).as_secs(), e.event, e.message)).collect()
    }
}

#[test]
fn with_aws_on_moto_refused_offerings_are_marked_re_solved_around_and_tried_again_after_three_minutes() {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
        let mut m = OnMoto::new().await;
        // EC2 refuses every override of the first CreateFleet in Errors[] (per override, with
        // InsufficientInstanceCapacity, as it does).
        m.proxy.faults.lock().unwrap().refuse_fleets = 1;
        m.apply(&web(1));
        assert!(m.until_launches(1, 60).await, "{}", m.timeline());
        let refused_at = m.launches()[0].at;
        let fleets = m.fleets();
        assert_eq!(fleets.len(), 2, "refused once, then re-solved in the same pass: {}", m.timeline());
        let (refused, second) = (&fleets[0], &fleets[1]);
        assert!(refused.is_disjoint(second), "the re-solve offers none of the refused offerings");
        let cheapest = m.proxy.faults.lock().unwrap().fleets[0][0].clone();
        let cheapest = (cheapest.0, m.zones[&cheapest.1].clone());
        let first = launched(m.launches()[0]);
        assert!(!refused.contains(&first), "launched on another type or zone: {first:?}");
        assert!(
            m.events.iter().any(|e| e.event == "launch-failed"
                && e.detail["error"].as_str().is_some_and(|s| s.contains("insufficient capacity"))),
            "{}",
            m.timeline()
        );
        // A minute later another pod: the refused offerings are still avoided, not even
        // offered to EC2.
        m.world.clock.advance(Duration::from_secs(60));
        m.world.cluster.scale("default", "web", 2).unwrap();
        assert!(m.until_launches(2, 60).await, "{}", m.timeline());
        let fleets = m.fleets();
        assert_eq!(fleets.len(), 3, "{}", m.timeline());
        assert!(fleets[2].is_disjoint(refused), "avoided within three minutes: {:?}", fleets[2]);
        // Three minutes after the refusal the cheapest offering is offered to EC2 again (and
        // moto, with capacity now, launches it).
        let wait = (refused_at + UNAVAILABLE_FOR).saturating_sub(m.world.now());
        m.world.clock.advance(wait);
        m.world.cluster.scale("default", "web", 3).unwrap();
        assert!(m.until_launches(3, 60).await, "{}", m.timeline());
        let fleets = m.fleets();
        assert_eq!(fleets.len(), 4, "{}", m.timeline());
        assert!(fleets[3].contains(&cheapest), "tried again: {cheapest:?} in {:?}", fleets[3]);
        assert_eq!(launched(m.launches()[2]), cheapest, "{}", m.timeline());
        let live = m.lp.cloud().list().await.unwrap();
        assert_eq!(live.iter().filter(|i| i.state != InstanceState::Terminated).count(), 3, "{live:?}");
    });
}
