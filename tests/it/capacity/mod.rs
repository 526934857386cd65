//! The capacity loop on the simulated world: provisioning, lifecycle and disruption scenarios.
//! Policies are written as YAML like a config repository's, workloads as Kubernetes YAML.

mod buffers;
mod capacity_shortage;
mod cloud_calls;
mod disruption;
mod drain_protocol;
mod drift;
mod in_flight;
mod interruption;
mod provisioning;
mod reserved;
mod restart;
mod seen;
mod wake;

use std::sync::Arc;
use std::time::Duration;

use capstan::capacity::report::LoopEvent;
use capstan::cluster::workload;
use capstan::cluster::{ClusterApi, Snapshot};
use capstan::policy::{self, EffectivePolicy};
use capstan::rules::Rules;
use capstan::sim::demo::START;
use capstan::sim::{SimLoop, World};

pub const CLASS: &str = "apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata:
  name: default
spec:
  role: nodes.test.example.com
  amiSelectorTerms:
    - alias: al2023@latest
  subnetSelectorTerms:
    - tags: {KubernetesCluster: test.example.com}
  securityGroupSelectorTerms:
    - tags: {KubernetesCluster: test.example.com}
";

/// A NodePool `name` limited to `families`, with `disruption` (YAML under `spec.disruption`)
/// and `extra` (YAML under `spec`, e.g. limits).
pub fn pool(name: &str, families: &[&str], disruption: &str, extra: &str) -> String {
    let limits = if extra.contains("limits") { String::new() } else { "  limits: {cpu: \"1000\"}\n".to_string() };
    let families = families.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", ");
    format!(
        "apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: {name}
spec:
  template:
    spec:
      nodeClassRef: {{group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}}
      requirements:
        - key: karpenter.k8s.aws/instance-family
          operator: In
          values: [{families}]
        - key: karpenter.sh/capacity-type
          operator: In
          values: [on-demand]
  disruption:
{disruption}
{limits}{extra}"
    )
}

/// The effective policy of a one-cluster repository made of `files` (path, YAML).
pub fn policy(files: &[(&str, String)]) -> EffectivePolicy {
    let mut snap = policy::Snapshot::default();
    let fleet = "apiVersion: capstan.io/v1alpha1\nkind: Fleet\nmetadata: {name: test}\nspec:\n  clusters:\n    - {name: test, kopsName: test.example.com, stateStore: \"file:///tmp/test-state\", region: us-east-1}\n";
    snap.insert("fleet.yaml", fleet.as_bytes().to_vec());
    for (path, text) in files {
        snap.insert(*path, text.as_bytes().to_vec());
    }
    let v = policy::validate(&snap, Some("test")).expect("validates");
    assert!(!v.diagnostics.has_errors(), "{:?}", v.diagnostics.sorted());
    v.policies.into_iter().next().unwrap()
}

pub fn rules(policy: &EffectivePolicy, revision: &str) -> Arc<Rules> {
    Arc::new(Rules::from_policy(policy, revision.into()))
}

/// A ClusterPolicy file.
pub fn cluster_policy(spec: &str) -> String {
    format!("apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata:\n  name: default\nspec:\n{spec}")
}

/// A Deployment of `replicas` pods requesting `cpu`; `extra` is YAML under the pod template's
/// `spec` (indented 6), `annotations` under its metadata.
pub fn deployment(name: &str, replicas: u32, cpu: &str, extra: &str, annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: default
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{{annotations}}}
    spec:
      containers:
        - name: c
          image: pause
          resources:
            requests: {{cpu: \"{cpu}\"}}
{extra}"
    )
}

/// Pod anti-affinity on hostname against its own pods: one per node.
pub fn one_per_node(app: &str) -> String {
    format!(
        "      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            - topologyKey: kubernetes.io/hostname
              labelSelector:
                matchLabels: {{app: {app}}}
"
    )
}

pub struct Harness {
    pub world: World,
    pub lp: SimLoop,
    pub events: Vec<LoopEvent>,
}

impl Harness {
    pub fn new(policy: &EffectivePolicy) -> Harness {
        let world = World::new("test.example.com", START);
        let lp = world.capacity_loop(rules(policy, "main@sha1:0000000000000000000000000000000000000001"));
        Harness { world, lp, events: Vec::new() }
    }

    pub fn apply(&self, yaml: &str) {
        self.world.cluster.apply(workload::parse("test.yaml", yaml).expect("workload parses"));
    }

    pub fn scale(&self, name: &str, replicas: u32) {
        self.world.cluster.scale("default", name, replicas).unwrap();
    }

    pub fn running(&self, name: &str) -> usize {
        self.world.cluster.running("default", name)
    }

    pub async fn until(&mut self, limit_secs: u64, done: impl FnMut(&World) -> bool) -> bool {
        self.world.run_until(&mut self.lp, Duration::from_secs(limit_secs), &mut self.events, done).await
    }

    /// Steps for `secs`, checking `each` after every step.
    pub async fn watch(&mut self, secs: u64, mut each: impl FnMut(&Snapshot, &[LoopEvent])) {
        let end = self.world.now() + Duration::from_secs(secs);
        while self.world.now() < end {
            let ev = self.world.step(&mut self.lp).await;
            let snap = self.world.cluster.snapshot().await.unwrap();
            each(&snap, &ev);
            self.events.extend(ev);
            self.world.clock.advance(capstan::sim::STEP);
        }
    }

    pub fn count(&self, event: &str) -> usize {
        self.events.iter().filter(|e| e.event == event).count()
    }

    pub fn of(&self, event: &str) -> Vec<&LoopEvent> {
        self.events.iter().filter(|e| e.event == event).collect()
    }

    pub fn live_types(&self) -> Vec<String> {
        use capstan::cloud::provider::InstanceState;
        self.world
            .cloud
            .instances()
            .into_iter()
            .filter(|i| i.state != InstanceState::Terminated)
            .map(|i| i.instance_type)
            .collect()
    }

    pub fn timeline(&self) -> String {
        self.events.iter().map(|e| format!("{:>6}s {} {}\n", (e.at - START).as_secs(), e.event, e.message)).collect()
    }
}

/// Nodes cordoned for disruption in a snapshot.
pub fn disrupting(s: &Snapshot) -> usize {
    s.nodes.iter().filter(|n| capstan::disruption::candidate::disrupting(n)).count()
}

pub fn base(pools: &[String], policy_spec: &str) -> EffectivePolicy {
    let mut files: Vec<(&str, String)> = vec![("base/nodeclasses/default.yaml", CLASS.to_string())];
    let names: Vec<String> = (0..pools.len()).map(|i| format!("base/nodepools/p{i}.yaml")).collect();
    for (i, p) in pools.iter().enumerate() {
        files.push((names[i].as_str(), p.clone()));
    }
    files.push(("base/policy.yaml", cluster_policy(policy_spec)));
    policy(&files)
}
