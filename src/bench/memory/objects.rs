//! Kubernetes objects shaped like a real cluster's: Deployment pods (managedFields, a
//! last-applied annotation, env, probes, volume mounts, a status with conditions and container
//! statuses) on kOps nodes (an images list, conditions, addresses, node info).

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Map, Value, json};

/// Deployments the pods come from.
pub const APPS: usize = 40;
const TYPES: [(&str, &str, &str); 3] = [
    ("m6i.4xlarge", "15890m", "60055952Ki"),
    ("c6i.4xlarge", "15890m", "28669408Ki"),
    ("r6i.2xlarge", "7910m", "61812700Ki"),
];
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const TIME: &str = "2026-11-02T09:14:07Z";

/// What a server-side apply manager records for `v`: every field path, as `fieldsV1`.
fn fields_v1(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (format!("f:{k}"), fields_v1(v))).collect::<Map<String, Value>>())
        }
        Value::Array(items) => {
            let mut out = Map::new();
            for item in items {
                let key = match item.get("name").or_else(|| item.get("type")).and_then(Value::as_str) {
                    Some(name) => format!("k:{{\"name\":\"{name}\"}}"),
                    None => format!("v:{item}"),
                };
                out.insert(key, json!({".": {}}));
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}

fn hex(seed: usize, len: usize) -> String {
    let mut x = (seed as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).expect("hex digit")
        })
        .collect()
}

fn uid(seed: usize) -> String {
    let h = hex(seed, 32);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The node name of node `n` (kOps on AWS names nodes by instance ID).
pub fn node_name(n: usize) -> String {
    format!("i-{n:017x}")
}

/// Node `n` as the kubelet of a kOps instance group reports it.
pub fn node(n: usize) -> Node {
    let (t, cpu, memory) = TYPES[n % TYPES.len()];
    let zone = ZONES[n % ZONES.len()];
    let name = node_name(n);
    let ip = format!("172.20.{}.{}", (n / 250) % 250, n % 250 + 2);
    let images: Vec<Value> = (0..40)
        .map(|i| {
            let repo = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/app-{i}");
            json!({"names": [format!("{repo}@sha256:{}", hex(i, 64)), format!("{repo}:v1.{i}.0")], "sizeBytes": 50_000_000 + i * 1_000_003})
        })
        .collect();
    let conditions: Vec<Value> = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
        ("Ready", "True", "KubeletReady"),
    ]
    .iter()
    .map(|(ty, status, reason)| json!({"type": ty, "status": status, "reason": reason, "message": format!("kubelet is posting {reason}"), "lastHeartbeatTime": TIME, "lastTransitionTime": TIME}))
    .collect();
    let status = json!({
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name},
                      {"type": "InternalDNS", "address": format!("ip-{}.ec2.internal", ip.replace('.', "-"))}],
        "allocatable": {"cpu": cpu, "ephemeral-storage": "118810327458", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": memory, "pods": "110"},
        "capacity": {"cpu": "16", "ephemeral-storage": "128901104Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": memory, "pods": "110"},
        "conditions": conditions,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "images": images,
        "nodeInfo": {"architecture": "amd64", "bootID": uid(n + 7), "containerRuntimeVersion": "containerd://1.7.22",
                     "kernelVersion": "6.8.0-1016-aws", "kubeProxyVersion": "", "kubeletVersion": "v1.31.4",
                     "machineID": hex(n + 11, 32), "operatingSystem": "linux", "osImage": "Ubuntu 24.04.1 LTS", "systemUUID": uid(n + 13)},
    });
    let spec = json!({"providerID": format!("aws:///{zone}/{name}"), "podCIDR": format!("100.96.{}.0/24", n % 250), "podCIDRs": [format!("100.96.{}.0/24", n % 250)]});
    let labels = json!({
        "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/instance-type": t, "beta.kubernetes.io/os": "linux",
        "failure-domain.beta.kubernetes.io/region": "us-east-1", "failure-domain.beta.kubernetes.io/zone": zone,
        "kops.k8s.io/instancegroup": format!("nodes-{zone}"), "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux", "node-role.kubernetes.io/node": "", "node.kubernetes.io/instance-type": t,
        "topology.ebs.csi.aws.com/zone": zone, "topology.kubernetes.io/region": "us-east-1", "topology.kubernetes.io/zone": zone,
    });
    let managed = json!([
        {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": TIME, "fieldsType": "FieldsV1", "fieldsV1": fields_v1(&json!({"metadata": {"labels": labels}, "spec": spec}))},
        {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": TIME, "fieldsType": "FieldsV1", "subresource": "status", "fieldsV1": fields_v1(&json!({"status": status}))},
        {"manager": "kops-controller", "operation": "Update", "apiVersion": "v1", "time": TIME, "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:kops.k8s.io/instancegroup": {}, "f:node-role.kubernetes.io/node": {}}}}},
    ]);
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": uid(n), "resourceVersion": format!("{}", 4_000_000 + n), "creationTimestamp": TIME, "labels": labels,
                     "annotations": {"alpha.kubernetes.io/provided-node-ip": ip, "csi.volume.kubernetes.io/nodeid": format!("{{\"ebs.csi.aws.com\":\"{name}\"}}"),
                                     "node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
                     "managedFields": managed},
        "spec": spec,
        "status": status,
    }))
    .expect("a valid node")
}

/// The pod template of Deployment `app`, as `kubectl apply` sent it.
fn template(app: usize) -> Value {
    let name = format!("app-{app}");
    let cpu = ["50m", "100m", "200m", "250m"][app % 4];
    let memory = ["64Mi", "128Mi", "256Mi", "512Mi"][app / 4 % 4];
    let probe = |path: &str| json!({"httpGet": {"path": path, "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3});
    let env = json!([{"name": "APP_NAME", "value": name}, {"name": "LOG_FORMAT", "value": "json"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
        {"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}}}]);
    json!({
        "metadata": {"labels": {"app": name, "app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop", "version": "v1.4.2"},
                     "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}},
        "spec": {
            "containers": [{
                "name": "app", "image": format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/{name}:v1.4.2"), "imagePullPolicy": "IfNotPresent",
                "args": ["--port=8080", "--metrics-port=9090", "--log-level=info"], "env": env,
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}, {"containerPort": 9090, "name": "metrics", "protocol": "TCP"}],
                "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
                "livenessProbe": probe("/healthz"), "readinessProbe": probe("/ready"),
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true}],
            }],
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "shop", "effect": "NoSchedule"}],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
                                           "labelSelector": {"matchLabels": {"app": name}}}],
            "volumes": [{"name": "config", "configMap": {"name": format!("{name}-config"), "defaultMode": 420}}],
        },
    })
}

/// Pod `i` of Deployment `app` (ReplicaSet `app-<hash>`), bound to `node`.
pub fn pod(app: usize, i: usize, node: &str) -> Pod {
    let mut p = replica(app);
    name_pod(&mut p, app, i, node);
    p
}

/// Gives a copy of [`replica`]`(app)` the identity of pod `i` on `node`: name, uid, node, IP,
/// container ID.
pub fn name_pod(p: &mut Pod, app: usize, i: usize, node: &str) {
    let rs = format!("app-{app}-{}", hex(app, 10));
    p.metadata.name = Some(format!("{rs}-{i:05x}"));
    p.metadata.uid = Some(uid(i));
    p.metadata.resource_version = Some(format!("{}", 5_000_000 + i));
    if let Some(spec) = p.spec.as_mut() {
        spec.node_name = Some(node.to_string());
    }
    if let Some(status) = p.status.as_mut() {
        let ip = format!("100.96.{}.{}", i % 250, i / 250 % 250);
        status.pod_ip = Some(ip.clone());
        status.pod_ips = Some(vec![k8s_openapi::api::core::v1::PodIP { ip }]);
        for c in status.container_statuses.iter_mut().flatten() {
            c.container_id = Some(format!("containerd://{}", hex(i + 3, 64)));
        }
    }
}

/// A pod of Deployment `app`, before [`name_pod`] gives it its own identity.
pub fn replica(app: usize) -> Pod {
    let (i, node) = (0, "");
    let mut v = template(app);
    let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": format!("app-{app}"), "namespace": format!("team-{}", app % 8)}, "spec": {"replicas": 3750, "template": v.clone()}});
    let hash = hex(app, 10);
    let rs = format!("app-{app}-{hash}");
    let name = format!("{rs}-{i:05x}");
    let token = format!("kube-api-access-{}", hex(i + 7, 5));
    v["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    v["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json!(applied.to_string());
    let spec = &mut v["spec"];
    spec["containers"][0]["volumeMounts"]
        .as_array_mut()
        .expect("mounts")
        .push(json!({"name": token, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}));
    spec["volumes"].as_array_mut().expect("volumes").push(json!({"name": token, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}));
    spec["tolerations"].as_array_mut().expect("tolerations").extend([
        json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}),
        json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}),
    ]);
    for (k, val) in [
        ("nodeName", json!(node)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("enableServiceLinks", json!(true)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
        ("priority", json!(0)),
        ("restartPolicy", json!("Always")),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
        ("serviceAccount", json!("default")),
        ("serviceAccountName", json!("default")),
        ("terminationGracePeriodSeconds", json!(30)),
    ] {
        spec[k] = val;
    }
    let conditions: Vec<Value> =
        ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
            .iter()
            .map(|t| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": TIME}))
            .collect();
    let ip = format!("100.96.{}.{}", i % 250, i / 250 % 250);
    let status = json!({
        "phase": "Running", "conditions": conditions, "hostIP": "172.20.1.2", "hostIPs": [{"ip": "172.20.1.2"}],
        "podIP": ip, "podIPs": [{"ip": ip}], "qosClass": "Burstable", "startTime": TIME,
        "containerStatuses": [{"name": "app", "containerID": format!("containerd://{}", hex(i + 3, 64)),
            "image": format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/app-{app}:v1.4.2"),
            "imageID": format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/app-{app}@sha256:{}", hex(app, 64)),
            "lastState": {}, "ready": true, "restartCount": 0, "started": true, "state": {"running": {"startedAt": TIME}}}],
    });
    let managed = json!([
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": TIME, "fieldsType": "FieldsV1",
         "fieldsV1": fields_v1(&json!({"metadata": {"generateName": rs, "labels": v["metadata"]["labels"], "annotations": v["metadata"]["annotations"], "ownerReferences": [{"name": rs}]}, "spec": v["spec"]}))},
        {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": TIME, "fieldsType": "FieldsV1", "subresource": "status", "fieldsV1": fields_v1(&json!({"status": status}))},
    ]);
    let meta = v["metadata"].as_object_mut().expect("metadata");
    for (k, val) in [
        ("name", json!(name)),
        ("generateName", json!(format!("{rs}-"))),
        ("namespace", json!(format!("team-{}", app % 8))),
        ("uid", json!(uid(i))),
        ("resourceVersion", json!(format!("{}", 5_000_000 + i))),
        ("creationTimestamp", json!(TIME)),
        (
            "ownerReferences",
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": uid(app + 99), "controller": true, "blockOwnerDeletion": true}]),
        ),
        ("managedFields", managed),
    ] {
        meta.insert(k.into(), val);
    }
    v["status"] = status;
    serde_json::from_value(v).expect("a valid pod")
}
