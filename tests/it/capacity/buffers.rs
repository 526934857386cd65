//! Capacity buffers and headroom: placeholder pods that exist only in capstan's simulation make
//! it launch and keep spare room; the cluster never sees them.

use super::*;

const EMPTY_30S: &str = "    consolidationPolicy: WhenEmpty\n    consolidateAfter: 30s";
const UNDER_30S: &str = "    consolidationPolicy: WhenEmptyOrUnderutilized\n    consolidateAfter: 30s";

/// A PodTemplate `chunk` of one pause container requesting `cpu`.
fn template(cpu: &str) -> String {
    format!(
        "apiVersion: v1
kind: PodTemplate
metadata:
  name: chunk
template:
  spec:
    containers:
      - name: pause
        image: pause
        resources:
          requests: {{cpu: \"{cpu}\", memory: 256Mi}}
"
    )
}

/// A CapacityBuffer `warm` with `spec` (YAML under `spec`) and `annotations` (under metadata).
fn buffer(spec: &str, annotations: &str) -> String {
    format!(
        "apiVersion: autoscaling.x-k8s.io/v1beta1\nkind: CapacityBuffer\nmetadata:\n  name: warm\n  annotations: {{{annotations}}}\nspec:\n{spec}"
    )
}

/// The repository: one c6i pool with `disruption`, the buffer file and the ClusterPolicy.
fn repo(disruption: &str, buffers: Option<String>, policy_spec: &str) -> EffectivePolicy {
    let mut files = vec![
        ("base/nodeclasses/default.yaml", CLASS.to_string()),
        ("base/nodepools/general.yaml", pool("general", &["c6i"], disruption, "")),
        ("base/policy.yaml", cluster_policy(policy_spec)),
    ];
    if let Some(text) = buffers {
        files.push(("base/capacitybuffers/warm.yaml", text));
    }
    policy(&files)
}

fn with_template(cpu: &str, spec: &str) -> Option<String> {
    Some(format!("{}---\n{}", buffer(&format!("  podTemplateRef: {{name: chunk}}\n{spec}"), ""), template(cpu)))
}

/// Free cpu (millicores) of each Ready node: allocatable less its pods' requests.
fn free(s: &Snapshot) -> Vec<i64> {
    let used = |n: &str| s.pods_on(n).map(|p| p.spec.requests.cpu).sum::<i64>();
    s.nodes.iter().filter(|n| n.ready && !n.unschedulable).map(|n| n.allocatable.cpu - used(&n.name)).collect()
}

/// How many pods of `cpu` millicores the free room takes.
fn slots(s: &Snapshot, cpu: i64) -> i64 {
    free(s).into_iter().map(|f| f / cpu).sum()
}

fn no_placeholder_seen(h: &Harness) {
    let status = h.lp.status();
    assert_eq!(status.pending_pods, 0);
    assert!(status.seen.planned.keys().chain(status.seen.unplaced.keys()).all(|p| !p.contains("capacitybuffer")));
    assert_eq!(h.world.cluster.evictions(), 0);
    assert!(h.world.cluster.events().iter().all(|e| !format!("{:?}", e.subject).contains("capacitybuffer")));
}

#[tokio::test]
async fn a_buffer_launches_a_node_with_no_real_pods_and_keeps_it() {
    let mut h = Harness::new(&repo(EMPTY_30S, with_template("2", "  replicas: 1\n"), "  dryRun: false"));
    assert!(h.until(300, |w| w.nodes() == 1).await, "{}", h.timeline());
    let mut most = 0;
    let mut bound = 0;
    h.watch(600, |s, _| {
        most = most.max(s.nodes.len());
        bound += s.pods.len();
    })
    .await;
    assert_eq!(bound, 0, "the cluster never sees a placeholder");
    assert_eq!((h.world.nodes(), most, h.count("launch")), (1, 1, 1), "{}", h.timeline());
    assert_eq!(h.count("disruption-decision"), 0, "the empty node holds the buffer: {}", h.timeline());
    let s = h.world.cluster.snapshot().await.unwrap();
    assert!(free(&s)[0] >= 2000);
    no_placeholder_seen(&h);
}

#[tokio::test]
async fn a_real_pod_takes_the_room_at_once_and_the_buffer_is_refilled() {
    let mut h = Harness::new(&repo(EMPTY_30S, with_template("2", "  replicas: 1\n"), "  dryRun: false"));
    assert!(h.until(300, |w| w.nodes() == 1).await, "{}", h.timeline());
    while h.count("node-ready") == 0 && h.world.now() < START + Duration::from_secs(300) {
        h.watch(1, |_, _| {}).await;
    }
    h.watch(30, |_, _| {}).await;
    h.apply(&deployment("web", 1, "2", "", ""));
    let applied = h.world.now();
    assert!(h.until(30, |w| w.cluster.running("default", "web") == 1).await, "{}", h.timeline());
    assert!(h.world.now() - applied <= Duration::from_secs(10), "the pod waited for no launch");
    assert!(h.until(300, |w| w.nodes() == 2).await, "{}", h.timeline());
    h.watch(300, |_, _| {}).await;
    let s = h.world.cluster.snapshot().await.unwrap();
    assert_eq!((s.nodes.len(), h.count("launch")), (2, 2), "{}", h.timeline());
    assert_eq!(s.pods.len(), 1, "only the real pod is in the cluster");
    assert_eq!(slots(&s, 2000), 1, "room for one chunk again: {:?}", free(&s));
    no_placeholder_seen(&h);
}

#[tokio::test]
async fn consolidation_keeps_the_room_a_buffer_needs() {
    let mut h = Harness::new(&repo(UNDER_30S, with_template("2", "  replicas: 1\n"), "  dryRun: false"));
    h.apply(&deployment("a", 3, "1", "", ""));
    assert!(h.until(300, |w| w.cluster.running("default", "a") == 3).await, "{}", h.timeline());
    h.watch(120, |_, _| {}).await;
    h.scale("a", 1);
    let mut least = i64::MAX;
    h.watch(900, |s, _| {
        if !s.nodes.is_empty() && s.nodes.iter().all(|n| n.ready) {
            least = least.min(free(s).into_iter().max().unwrap_or(0));
        }
    })
    .await;
    assert!(least >= 2000, "the buffer's 2 cpu stayed free on some node (least {least}m): {}", h.timeline());
    assert!(h.count("launch") <= 3, "no churn: {}", h.timeline());
    assert_eq!(h.world.cluster.running("default", "a"), 1);
    no_placeholder_seen(&h);
}

#[tokio::test]
async fn a_window_keeps_the_buffer_only_inside_it() {
    // The world starts on Monday 06:00 UTC; the window opens at 06:05 for 10 minutes.
    let notes = "capstan.io/buffer-schedule: \"5 6 * * mon-fri\", capstan.io/buffer-duration: 10m";
    let text = format!("{}---\n{}", buffer("  podTemplateRef: {name: chunk}\n  replicas: 1\n", notes), template("2"));
    let mut h = Harness::new(&repo(EMPTY_30S, Some(text), "  dryRun: false"));
    h.watch(290, |_, _| {}).await;
    assert_eq!((h.world.nodes(), h.count("launch")), (0, 0), "outside the window: {}", h.timeline());
    assert!(h.until(300, |w| w.nodes() == 1).await, "inside the window: {}", h.timeline());
    let launched = h.of("launch")[0].at - START;
    assert!(launched >= Duration::from_secs(300) && launched < Duration::from_secs(320), "{launched:?}");
    // After 06:15 the buffer is gone and its empty node with it.
    assert!(h.until(900, |w| w.nodes() == 0).await, "{}", h.timeline());
    assert!(h.of("disruption-decision")[0].at - START >= Duration::from_secs(900), "{}", h.timeline());
}

#[tokio::test]
async fn a_percentage_of_a_workload_follows_its_pods() {
    let spec = "  scalableRef: {apiGroup: apps, kind: Deployment, name: api}\n  percentage: 50\n";
    let mut h = Harness::new(&repo(EMPTY_30S, Some(buffer(spec, "")), "  dryRun: false"));
    h.apply(&deployment("api", 4, "1500m", "", ""));
    assert!(h.until(300, |w| w.cluster.running("default", "api") == 4).await, "{}", h.timeline());
    h.watch(300, |_, _| {}).await;
    let s = h.world.cluster.snapshot().await.unwrap();
    assert!(slots(&s, 1500) >= 2, "room for 2 more pods of api: {:?} {}", free(&s), h.timeline());
    h.scale("api", 8);
    assert!(h.until(300, |w| w.cluster.running("default", "api") == 8).await, "{}", h.timeline());
    h.watch(300, |_, _| {}).await;
    let s = h.world.cluster.snapshot().await.unwrap();
    assert!(slots(&s, 1500) >= 4, "room for 4 more: {:?} {}", free(&s), h.timeline());
    assert_eq!(s.pods.len(), 8);
    no_placeholder_seen(&h);
}

#[tokio::test]
async fn limits_cap_the_buffer() {
    let mut h = Harness::new(&repo(
        EMPTY_30S,
        with_template("1", "  replicas: 10\n  limits: {cpu: \"3\"}\n"),
        "  dryRun: false",
    ));
    assert!(h.until(300, |w| w.nodes() >= 1).await, "{}", h.timeline());
    h.watch(300, |_, _| {}).await;
    let s = h.world.cluster.snapshot().await.unwrap();
    let room = slots(&s, 1000);
    assert!((3..10).contains(&room), "3 chunks of 1 cpu, not 10: {:?} {}", free(&s), h.timeline());
}

#[tokio::test]
async fn headroom_in_the_cluster_policy_keeps_room_in_its_pool() {
    let files = vec![
        ("base/nodeclasses/default.yaml", CLASS.to_string()),
        ("base/nodepools/general.yaml", pool("general", &["c6i"], EMPTY_30S, "  weight: 10\n")),
        ("base/nodepools/spare.yaml", pool("spare", &["m6i"], EMPTY_30S, "")),
        ("base/policy.yaml", cluster_policy("  headroom: {cpu: \"3\", memory: 2Gi, nodePool: spare}\n")),
    ];
    let mut h = Harness::new(&policy(&files));
    assert!(h.until(300, |w| w.nodes() == 1).await, "{}", h.timeline());
    h.watch(300, |_, _| {}).await;
    assert_eq!(h.count("launch"), 1, "{}", h.timeline());
    assert!(h.live_types()[0].starts_with("m6i."), "{:?}", h.live_types());
    let s = h.world.cluster.snapshot().await.unwrap();
    assert!(free(&s)[0] >= 3000 && s.pods.is_empty());
    // Unnamed, the headroom goes to the highest-weight pool.
    let files = [&files[..3], &[("base/policy.yaml", cluster_policy("  headroom: {cpu: \"3\"}\n"))]].concat();
    let mut h = Harness::new(&policy(&files));
    assert!(h.until(300, |w| w.nodes() == 1).await, "{}", h.timeline());
    assert!(h.live_types()[0].starts_with("c6i."), "{:?}", h.live_types());
    no_placeholder_seen(&h);
}

#[tokio::test]
async fn headroom_never_goes_to_a_static_pool() {
    let files = vec![
        ("base/nodeclasses/default.yaml", CLASS.to_string()),
        ("base/nodepools/fixed.yaml", pool("fixed", &["c6i"], EMPTY_30S, "  replicas: 1\n  limits: {nodes: \"5\"}\n")),
        ("base/nodepools/spare.yaml", pool("spare", &["m6i"], EMPTY_30S, "")),
        ("base/policy.yaml", cluster_policy("  headroom: {cpu: \"3\"}\n")),
    ];
    let mut h = Harness::new(&policy(&files));
    assert!(h.until(300, |w| w.nodes() == 2).await, "{}", h.timeline());
    let types = h.live_types();
    assert!(types.iter().any(|t| t.starts_with("m6i.")), "headroom in the dynamic pool: {types:?}");
    no_placeholder_seen(&h);
}

/// A placeholder of buffer `warm` on `node` of a planner case, labelled like workload `web`.
fn placeholder(case: &mut crate::disruption::Case, node: Option<&str>, cpu: &str) {
    use capstan::scheduling::pod::pod;
    let p = match node {
        Some(n) => case.pod(n, pod().cpu(cpu).label("app", "web")),
        None => case.pending(pod().cpu(cpu).label("app", "web")),
    };
    p.name = format!("capacitybuffer:capacitybuffer-warm:0:{}", p.name);
    p.spec.name = format!("default/{}", p.name);
    assert!(capstan::provisioning::buffer::is_placeholder(&p.key()));
}

#[test]
fn a_placeholder_with_no_room_does_not_hold_consolidation_back() {
    use crate::disruption::{Case, node, only, targets};
    use capstan::scheduling::pod::pod;
    let mut case = Case::new();
    case.node(node("a")).node(node("big").unmanaged().of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu("1"));
    placeholder(&mut case, None, "64");
    assert_eq!(targets(only(&case.plan())), ["a"]);
    // A real pod pending still holds it back.
    case.pending(pod().cpu("64"));
    assert!(case.plan().commands.is_empty());
}

#[test]
fn a_placeholder_is_not_held_by_a_pdb_nor_counted_as_a_pod() {
    use crate::disruption::{Case, node, only, targets};
    use capstan::scheduling::pod::pod;
    let mut case = Case::new();
    case.node(node("a")).node(node("big").unmanaged().of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu("1"));
    placeholder(&mut case, Some("a"), "500m");
    case.pdb("web", 0);
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(targets(c), ["a"]);
    assert_eq!(c.targets[0].pods, 1, "the placeholder is not a pod to evict");
}
