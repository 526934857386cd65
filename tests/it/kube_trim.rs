//! What the reflectors keep of each object: the snapshot assembled from what the stores keep
//! (pods converted, other objects trimmed) is the one converting the whole objects gives, and
//! the fixtures exercise every field the trim keeps.

use std::sync::Arc;

use capstan::bench::memory::objects;
use capstan::cluster::kube::stored::Sharing;
use capstan::cluster::kube::{StoredPod, objects as convert, snapshot_of, trim};
use capstan::cluster::model::{PodDoNotDisrupt, Snapshot};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::core::DynamicObject;
use serde_json::{Value, json};

const TIME: &str = "2026-11-02T09:14:07Z";

/// A pod using everything the conversion reads, with what it does not read around it.
fn rich_pod(name: &str, node: Option<&str>) -> Value {
    let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]});
    let term = json!({"topologyKey": "kubernetes.io/hostname", "labelSelector": sel, "namespaces": ["shop"]});
    json!({
        "metadata": {
            "name": name, "namespace": "shop", "uid": "u-1", "resourceVersion": "42", "generateName": "web-",
            "creationTimestamp": TIME, "labels": {"app": "web", "tier": "a"},
            "annotations": {"kubernetes.io/config.mirror": "x", "controller.kubernetes.io/pod-deletion-cost": "-5",
                            "karpenter.sh/do-not-disrupt": "10m", "kubectl.kubernetes.io/last-applied-configuration": "{\"big\":true}"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "u0"},
                                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u2", "controller": true}],
            "managedFields": [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}],
            "finalizers": ["f"],
        },
        "spec": {
            "nodeName": node, "priority": 1000, "nodeSelector": {"disk": "ssd"},
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 5, "preference": {"matchExpressions": [{"key": "spot", "operator": "Exists"}]}}],
                },
                "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term],
                                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 3, "podAffinityTerm": term}]},
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term],
                                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 7, "podAffinityTerm": term}]},
            },
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}, {"key": "d", "value": "x"}],
            "topologySpreadConstraints": [{"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": sel}],
            "containers": [
                {"name": "app", "image": "web:1", "env": [{"name": "A", "value": "b"}], "command": ["run"],
                 "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}, {"containerPort": 81}],
                 "resources": {"requests": {"cpu": "250m", "memory": "1Gi", "nvidia.com/gpu": "1"}, "limits": {"cpu": "4"}},
                 "livenessProbe": {"httpGet": {"path": "/", "port": 80}}},
                {"name": "side", "image": "side:1", "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}},
            ],
            "initContainers": [{"name": "init", "image": "i:1", "resources": {"requests": {"cpu": "3", "memory": "64Mi"}}}],
            "overhead": {"cpu": "10m", "memory": "1Mi"},
            "volumes": [{"name": "v", "emptyDir": {}}], "serviceAccountName": "sa", "schedulerName": "default-scheduler",
        },
        "status": {
            "phase": "Running", "startTime": TIME, "podIP": "10.0.0.1", "qosClass": "Burstable",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": TIME},
                           {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes", "lastTransitionTime": TIME}],
            "containerStatuses": [{"name": "app", "image": "web:1", "imageID": "x", "ready": true, "restartCount": 0}],
        },
    })
}

fn pods() -> Vec<Pod> {
    let mut out: Vec<Pod> = (0..objects::APPS).map(|app| objects::pod(app, app * 7, "i-1")).collect();
    out.push(serde_json::from_value(rich_pod("bound", Some("i-1"))).unwrap());
    let mut pending = rich_pod("pending", None);
    pending["status"]["phase"] = json!("Pending");
    pending["metadata"]["annotations"].as_object_mut().unwrap().remove("kubernetes.io/config.mirror");
    out.push(serde_json::from_value(pending).unwrap());
    let mut leaving = rich_pod("leaving", None);
    leaving["metadata"]["deletionTimestamp"] = json!(TIME);
    out.push(serde_json::from_value(leaving).unwrap());
    let mut ds = rich_pod("ds-pod", Some("i-2"));
    ds["metadata"]["annotations"] = json!({"karpenter.sh/do-not-disrupt": "true"});
    ds["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "u3", "controller": true}]);
    out.push(serde_json::from_value(ds).unwrap());
    out
}

fn nodes() -> Vec<Node> {
    let mut out: Vec<Node> = (0..3).map(objects::node).collect();
    let mut cordoned = serde_json::to_value(objects::node(3)).unwrap();
    cordoned["spec"]["unschedulable"] = json!(true);
    cordoned["spec"]["taints"] =
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule", "timeAdded": TIME}]);
    cordoned["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"] = json!("true");
    cordoned["status"]["conditions"][3]["status"] = json!("False");
    out.push(serde_json::from_value(cordoned).unwrap());
    out
}

fn daemonsets() -> Vec<DaemonSet> {
    let mut template = rich_pod("unused", None);
    template["metadata"].as_object_mut().unwrap().retain(|k, _| k == "labels" || k == "annotations");
    template.as_object_mut().unwrap().remove("status");
    vec![
        serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "kube-system", "uid": "u9", "managedFields": [{"manager": "m"}]},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template, "updateStrategy": {"type": "RollingUpdate"}},
            "status": {"currentNumberScheduled": 3, "desiredNumberScheduled": 3, "numberMisscheduled": 0, "numberReady": 3},
        }))
        .unwrap(),
    ]
}

fn pdbs() -> Vec<DynamicObject> {
    vec![
        serde_json::from_value(json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "shop", "annotations": {"a": "b"}},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3},
        }))
        .unwrap(),
    ]
}

/// The snapshot converted from whole objects, one by one, with no store in between.
fn snapshot(pods: &[Pod], nodes: &[Node], ds: &[DaemonSet], pdbs: &[DynamicObject]) -> Snapshot {
    let until = |p: &Pod| match convert::do_not_disrupt(p) {
        PodDoNotDisrupt::Until(t) => {
            Some((format!("{}/{}", p.metadata.namespace.as_deref()?, p.metadata.name.as_deref()?), t))
        }
        _ => None,
    };
    Snapshot {
        pods: pods.iter().filter_map(convert::pod).collect(),
        nodes: nodes.iter().map(convert::node).collect(),
        daemonsets: ds.iter().filter_map(convert::daemonset).collect(),
        pdbs: pdbs
            .iter()
            .map(|o| {
                let (ns, name) = (o.metadata.namespace.as_deref().unwrap(), o.metadata.name.as_deref().unwrap());
                convert::pdb(ns, name, &o.data["spec"], &o.data["status"])
            })
            .collect(),
        do_not_disrupt_until: pods.iter().filter_map(until).collect(),
    }
}

/// The snapshot assembled from what the daemon's stores keep of the same objects.
fn stored_snapshot(pods: &[Pod], nodes: &[Node], ds: &[DaemonSet], pdbs: &[DynamicObject]) -> Snapshot {
    let mut sharing = Sharing::default();
    let stored: Vec<_> = pods.iter().map(|p| Arc::new(StoredPod::of(p, &mut sharing))).collect();
    fn arcs<K: Clone>(v: &[K], f: fn(&mut K)) -> Vec<Arc<K>> {
        trimmed(v, f).into_iter().map(Arc::new).collect()
    }
    snapshot_of(&stored, &arcs(nodes, trim::node), &arcs(ds, trim::daemonset), &arcs(pdbs, trim::pdb))
}

fn assert_same(a: &Snapshot, b: &Snapshot) {
    assert_eq!(a.pods, b.pods);
    assert_eq!(a.nodes, b.nodes);
    assert_eq!(a.daemonsets, b.daemonsets);
    assert_eq!(a.pdbs, b.pdbs);
    assert_eq!(a.do_not_disrupt_until, b.do_not_disrupt_until);
}

fn trimmed<K: Clone>(v: &[K], f: fn(&mut K)) -> Vec<K> {
    v.iter()
        .cloned()
        .map(|mut k| {
            f(&mut k);
            k
        })
        .collect()
}

#[test]
fn the_stores_give_the_snapshot_the_whole_objects_give() {
    let (p, n, d, b) = (pods(), nodes(), daemonsets(), pdbs());
    let full = snapshot(&p, &n, &d, &b);
    assert_eq!(full.pods.len(), p.len() - 1, "the pod being deleted unbound is left out");
    assert!(!full.do_not_disrupt_until.is_empty() && full.pods.iter().any(|p| p.unschedulable));
    assert_same(&full, &stored_snapshot(&p, &n, &d, &b));
}

#[test]
fn a_trimmed_object_converts_as_the_whole_one() {
    let (p, n, d, b) = (pods(), nodes(), daemonsets(), pdbs());
    let full = snapshot(&p, &n, &d, &b);
    let small = snapshot(
        &trimmed(&p, trim::pod),
        &trimmed(&n, trim::node),
        &trimmed(&d, trim::daemonset),
        &trimmed(&b, trim::pdb),
    );
    assert_same(&full, &small);
}

#[test]
fn pods_of_one_controller_share_their_constraints() {
    let p: Vec<Pod> = (0..4).map(|i| capstan::bench::memory::objects::pod(1, i, "i-1")).collect();
    let s = stored_snapshot(&p, &[], &[], &[]);
    assert!(s.pods.windows(2).all(|w| Arc::ptr_eq(&w[0].spec.constraints, &w[1].spec.constraints)));
    let mut other = p[0].clone();
    other.metadata.labels.as_mut().unwrap().insert("canary".into(), "yes".into());
    let s = stored_snapshot(&[p[0].clone(), other], &[], &[], &[]);
    assert_ne!(s.pods[0].spec.constraints, s.pods[1].spec.constraints, "unequal constraints stay apart");
}

#[test]
fn trimming_keeps_the_store_keys_and_drops_the_bulk() {
    for p in pods() {
        let size = serde_json::to_vec(&p).unwrap().len();
        let mut t = p.clone();
        trim::pod(&mut t);
        assert_eq!(
            (&t.metadata.name, &t.metadata.namespace, &t.metadata.uid),
            (&p.metadata.name, &p.metadata.namespace, &p.metadata.uid)
        );
        assert_eq!(t.metadata.resource_version, p.metadata.resource_version);
        assert!(t.metadata.managed_fields.is_none() && t.status.as_ref().unwrap().container_statuses.is_none());
        assert!(serde_json::to_vec(&t).unwrap().len() < size);
    }
    for app in 0..objects::APPS {
        let p = objects::pod(app, app, "i-1");
        let mut t = p.clone();
        trim::pod(&mut t);
        let (full, small) = (serde_json::to_vec(&p).unwrap().len(), serde_json::to_vec(&t).unwrap().len());
        assert!(small * 5 < full, "a trimmed Deployment pod is a fraction of the full one: {small} of {full} bytes");
    }
    for n in nodes() {
        let mut t = n.clone();
        trim::node(&mut t);
        assert_eq!(t.metadata.name, n.metadata.name);
        assert!(t.status.as_ref().unwrap().images.is_none() && t.metadata.managed_fields.is_none());
    }
}

/// A field's name and an edit that removes it.
type Edit<K> = (&'static str, fn(&mut K));

/// Each edit removes one field the trim keeps; the snapshot must notice it, or the first test
/// could not catch a trim that dropped that field.
#[test]
fn the_fixtures_exercise_every_field_the_trim_keeps() {
    let (p, n, d, b) = (pods(), nodes(), daemonsets(), pdbs());
    let full = snapshot(&p, &n, &d, &b);
    let pod_edits: [Edit<Pod>; 14] = [
        ("labels", |p| p.metadata.labels = None),
        ("annotations", |p| p.metadata.annotations = None),
        ("ownerReferences", |p| p.metadata.owner_references = None),
        ("creationTimestamp", |p| p.metadata.creation_timestamp = None),
        ("nodeName", |p| p.spec.as_mut().unwrap().node_name = None),
        ("priority", |p| p.spec.as_mut().unwrap().priority = None),
        ("nodeSelector", |p| p.spec.as_mut().unwrap().node_selector = None),
        ("affinity", |p| p.spec.as_mut().unwrap().affinity = None),
        ("tolerations", |p| p.spec.as_mut().unwrap().tolerations = None),
        ("topologySpreadConstraints", |p| p.spec.as_mut().unwrap().topology_spread_constraints = None),
        ("ports", |p| p.spec.as_mut().unwrap().containers.iter_mut().for_each(|c| c.ports = None)),
        ("initContainers", |p| p.spec.as_mut().unwrap().init_containers = None),
        ("overhead", |p| p.spec.as_mut().unwrap().overhead = None),
        ("status", |p| p.status.as_mut().unwrap().conditions = None),
    ];
    for (field, edit) in pod_edits {
        let edited = snapshot(&trimmed(&p, edit), &n, &d, &b);
        assert_ne!(edited.pods, full.pods, "pods without {field}");
    }
    let mut no_limits = p.clone();
    no_limits.iter_mut().for_each(|p| {
        p.spec.as_mut().unwrap().containers.iter_mut().for_each(|c| {
            c.resources.as_mut().unwrap().limits = None;
        })
    });
    assert_ne!(snapshot(&no_limits, &n, &d, &b).pods, full.pods, "limits stand for missing requests");
    let mut no_start = p.clone();
    no_start.iter_mut().for_each(|p| p.status.as_mut().unwrap().start_time = None);
    assert_ne!(snapshot(&no_start, &n, &d, &b).do_not_disrupt_until, full.do_not_disrupt_until, "startTime");
    let node_edits: [Edit<Node>; 6] = [
        ("labels", |n| n.metadata.labels = None),
        ("annotations", |n| n.metadata.annotations = None),
        ("taints", |n| n.spec.as_mut().unwrap().taints = None),
        ("unschedulable", |n| n.spec.as_mut().unwrap().unschedulable = None),
        ("allocatable", |n| n.status.as_mut().unwrap().allocatable = None),
        ("conditions", |n| n.status.as_mut().unwrap().conditions = None),
    ];
    for (field, edit) in node_edits {
        assert_ne!(snapshot(&p, &trimmed(&n, edit), &d, &b).nodes, full.nodes, "nodes without {field}");
    }
    let mut no_template_labels = d.clone();
    no_template_labels[0].spec.as_mut().unwrap().template.metadata = None;
    assert_ne!(snapshot(&p, &n, &no_template_labels, &b).daemonsets, full.daemonsets);
    let mut no_allowed = b.clone();
    no_allowed[0].data["status"] = json!({});
    assert_ne!(snapshot(&p, &n, &d, &no_allowed).pdbs, full.pdbs);
}
