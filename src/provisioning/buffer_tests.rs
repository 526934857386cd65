use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::cloud::provider::InstanceState;
use crate::policy::meta::CronSchedule;
use crate::rules::buffers::Window;
use crate::scheduling::pod::pod;

fn template(cpu: &str) -> Buffer {
    Buffer {
        name: "CapacityBuffer/web".into(),
        namespace: "default".into(),
        chunk: Chunk::Template(pod().name("default/web").cpu(cpu).memory("1Gi").build()),
        replicas: None,
        percentage: None,
        limits: None,
        window: None,
    }
}

fn workload(percentage: u32) -> Buffer {
    let chunk = Chunk::Workload { kind: "Deployment".into(), name: "api".into() };
    Buffer { chunk, percentage: Some(percentage), ..template("1") }
}

fn monday(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, hour, minute, 0).unwrap()
}

fn running(name: &str, owner: &str, labels: &[(&str, &str)]) -> ClusterPod {
    let mut b = pod().name(&format!("default/{name}")).cpu("500m");
    for (k, v) in labels {
        b = b.label(k, v);
    }
    ClusterPod {
        namespace: "default".into(),
        name: name.into(),
        owner: Owner::Controller(owner.into()),
        node: Some("n1".into()),
        phase: Phase::Running,
        unschedulable: false,
        spec: b.build(),
        do_not_disrupt: false,
        created_at: Duration::from_secs(name.len() as u64),
        eviction: Default::default(),
    }
}

fn buffers(list: Vec<Buffer>) -> Buffers {
    Buffers { buffers: list }
}

#[test]
fn counts_follow_replicas_percentage_and_limits() {
    let chunk = Resources::new(1000, 1 << 30);
    let b = Buffer { replicas: Some(3), ..template("1") };
    assert_eq!(chunks(&b, 0, &chunk), 3);
    // The larger of replicas and the percentage, which rounds up.
    let b = Buffer { replicas: Some(1), percentage: Some(25), ..template("1") };
    assert_eq!(chunks(&b, 10, &chunk), 3);
    let b = Buffer { replicas: Some(5), percentage: Some(25), ..template("1") };
    assert_eq!(chunks(&b, 10, &chunk), 5);
    let b = Buffer { replicas: Some(5), percentage: Some(0), ..template("1") };
    assert_eq!(chunks(&b, 10, &chunk), 5, "percentage 0 asks for none; replicas still count");
    let b = Buffer { percentage: Some(0), ..template("1") };
    assert_eq!(chunks(&b, 10, &chunk), 0, "percentage 0 alone keeps none");
    let b = Buffer { replicas: Some(1), percentage: Some(25), ..template("1") };
    assert_eq!(chunks(&b, 0, &chunk), 1, "no pods: the percentage asks for none");
    let b = Buffer { percentage: Some(1), ..template("1") };
    assert_eq!(chunks(&b, 3, &chunk), 1, "a percentage above zero of some pods keeps at least one");
    // Limits cap, and alone they fill.
    let limits = Some(vec![("cpu".to_string(), 2500), ("memory".to_string(), 8 << 30)]);
    let b = Buffer { replicas: Some(5), limits: limits.clone(), ..template("1") };
    assert_eq!(chunks(&b, 0, &chunk), 2);
    let b = Buffer { limits, ..template("1") };
    assert_eq!(chunks(&b, 0, &chunk), 2);
    // A limit on a resource the chunk does not request caps nothing.
    let b = Buffer { replicas: Some(4), limits: Some(vec![("nvidia.com/gpu".into(), 0)]), ..template("1") };
    assert_eq!(chunks(&b, 0, &chunk), 4);
    assert_eq!(chunks(&template("1"), 0, &chunk), 0, "neither count nor limits: no chunks");
    let b = Buffer { replicas: Some(u32::MAX), ..template("1") };
    assert_eq!(chunks(&b, 0, &chunk), MAX_CHUNKS);
}

#[test]
fn placeholders_are_pending_marked_and_named_per_generation() {
    let snap = Snapshot::default();
    let list = buffers(vec![Buffer { replicas: Some(2), ..template("1") }]);
    let got = placeholders(&list, &snap, &[], monday(9, 0));
    assert_eq!(got.len(), 2);
    for p in &got {
        assert!(p.is_pending() && p.node.is_none());
        assert!(is_placeholder(&p.key()) && is_placeholder(&p.spec.name));
        assert_eq!(p.owner, Owner::Controller("CapacityBuffer/web".into()));
        assert_eq!(p.spec.requests.cpu, 1000);
    }
    assert_ne!(got[0].name, got[1].name);
    let i = Instance {
        id: "i-1".into(),
        claim: "c".into(),
        node_pool: "default".into(),
        instance_type: "m5.large".into(),
        zone: "us-east-1a".into(),
        capacity_type: crate::scheduling::catalog::CapacityType::OnDemand,
        price: 0.1,
        state: InstanceState::Running,
        launched_at: Duration::ZERO,
        tags: Default::default(),
    };
    let again = placeholders(&list, &snap, std::slice::from_ref(&i), monday(9, 0));
    assert_ne!(got[0].name, again[0].name, "a launch changes the names, so a refill is a new claim");
    assert_eq!(again[0].name, placeholders(&list, &snap, &[i], monday(9, 0))[0].name);
    assert!(!is_placeholder("default/web-1") && !is_placeholder("capacitybuffer:web"));
}

#[test]
fn a_window_keeps_the_buffer_only_inside_it() {
    let window =
        Window { schedule: CronSchedule::parse("0 8 * * mon-fri").unwrap(), duration: Duration::from_secs(36_000) };
    let list = buffers(vec![Buffer { replicas: Some(1), window: Some(window), ..template("1") }]);
    let snap = Snapshot::default();
    assert!(placeholders(&list, &snap, &[], monday(7, 59)).is_empty());
    assert_eq!(placeholders(&list, &snap, &[], monday(8, 0)).len(), 1);
    assert_eq!(placeholders(&list, &snap, &[], monday(17, 59)).len(), 1);
    assert!(placeholders(&list, &snap, &[], monday(18, 0)).is_empty());
    let saturday = Utc.with_ymd_and_hms(2026, 1, 10, 9, 0, 0).unwrap();
    assert!(placeholders(&list, &snap, &[], saturday).is_empty());
}

#[test]
fn a_percentage_counts_the_workloads_pods_and_takes_their_shape() {
    let mut snap = Snapshot::default();
    let hash = [("pod-template-hash", "5d9f")];
    for n in ["api-5d9f-a", "api-5d9f-b", "api-5d9f-c", "api-5d9f-d"] {
        snap.pods.push(running(n, "ReplicaSet/api-5d9f", &hash));
    }
    snap.pods.push(running("other-1", "ReplicaSet/apiary-5d9f", &hash));
    snap.pods.push(running("web-1", "Deployment/api-x", &[]));
    let got = placeholders(&buffers(vec![workload(50)]), &snap, &[], monday(9, 0));
    assert_eq!(got.len(), 2, "50% of the 4 pods of Deployment api");
    assert_eq!(got[0].spec.requests.cpu, 500, "shaped like the workload's pods");
    // The simulated cluster names the Deployment itself as owner.
    snap.pods.push(running("api-sim", "Deployment/api", &[]));
    assert_eq!(placeholders(&buffers(vec![workload(100)]), &snap, &[], monday(9, 0)).len(), 5);
    // Placeholders never count as the workload's pods.
    let mut with = snap.clone();
    with.pods.extend(placeholders(&buffers(vec![workload(100)]), &snap, &[], monday(9, 0)));
    assert_eq!(placeholders(&buffers(vec![workload(100)]), &with, &[], monday(9, 0)).len(), 5);
    let none = Buffer { chunk: Chunk::Workload { kind: "StatefulSet".into(), name: "db".into() }, ..workload(100) };
    assert!(placeholders(&buffers(vec![none]), &snap, &[], monday(9, 0)).is_empty());
}

#[test]
fn strip_leaves_launches_and_drops_what_only_placeholders_need() {
    use crate::scheduling::plan::{Binding, Unschedulable};
    let mut decided = crate::provisioning::Provision {
        pending: 3,
        launches: Vec::new(),
        nominated: vec![
            Binding { pod: "default/capacitybuffer:web:0:0".into(), node: "n1".into() },
            Binding { pod: "default/real".into(), node: "n1".into() },
        ],
        unschedulable: vec![Unschedulable { pod: "default/capacitybuffer:web:0:1".into(), reason: "no".into() }],
    };
    let displaced = decided.clone();
    strip(&mut decided, 2, None);
    assert_eq!(decided.pending, 1);
    assert_eq!(decided.nominated.len(), 1);
    assert!(decided.unschedulable.is_empty());
    // A real pod the placeholders took the room of is placed as if they were not there: the
    // decision over the real pods alone is this pass's, launches included.
    let mut decided = displaced.clone();
    decided.unschedulable.push(Unschedulable { pod: "default/real".into(), reason: "pool limit".into() });
    let alone = crate::provisioning::Provision {
        pending: 1,
        nominated: vec![Binding { pod: "default/real".into(), node: "i-new".into() }],
        ..Default::default()
    };
    strip(&mut decided, 2, Some(alone.clone()));
    assert_eq!(decided, alone);
    // A real pod with no place even alone is unschedulable; the placeholders' launches stay.
    let mut decided = displaced;
    decided.unschedulable.push(Unschedulable { pod: "default/real".into(), reason: "pool limit".into() });
    let alone = crate::provisioning::Provision {
        pending: 1,
        unschedulable: vec![Unschedulable { pod: "default/real".into(), reason: "pool limit".into() }],
        ..Default::default()
    };
    strip(&mut decided, 2, Some(alone));
    assert_eq!(decided.pending, 1);
    assert_eq!(decided.unschedulable.len(), 1);
}

#[test]
fn a_buffer_named_headroom_does_not_share_the_headroom_names() {
    let snap = Snapshot::default();
    let named = Buffer { name: "CapacityBuffer/headroom".into(), replicas: Some(1), ..template("1") };
    let headroom = Buffer { name: crate::rules::buffers::HEADROOM.into(), replicas: Some(1), ..template("1") };
    let got = placeholders(&buffers(vec![named, headroom]), &snap, &[], monday(9, 0));
    assert_eq!(got.len(), 2);
    assert_ne!(got[0].name, got[1].name);
}

#[test]
fn a_termination_changes_the_generation_so_names_never_come_back() {
    let running = |id: &str, state| Instance {
        id: id.into(),
        claim: id.into(),
        node_pool: "default".into(),
        instance_type: "m5.large".into(),
        zone: "us-east-1a".into(),
        capacity_type: crate::scheduling::catalog::CapacityType::OnDemand,
        price: 0.1,
        state,
        launched_at: Duration::ZERO,
        tags: Default::default(),
    };
    let before = [running("i-1", InstanceState::Running)];
    let after = [running("i-1", InstanceState::Running), running("i-2", InstanceState::Terminated)];
    assert_ne!(generation(&before), generation(&after), "a launch that died is not named again");
}
