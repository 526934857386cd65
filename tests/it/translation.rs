//! One test per rule of the kOps InstanceGroup (manager: Karpenter) → NodePool + EC2NodeClass
//! translation.

use capstan::policy::document::{self, Origin};
use capstan::policy::kops::{Cluster, InstanceGroup, KopsRules};
use capstan::policy::nodeclass::VolumeType;
use capstan::policy::nodepool::Operator;
use capstan::policy::translate::{self, Translated};
use capstan::policy::{self, Snapshot};

const CLUSTER: &str = "dev.example.com";

fn ig(spec: &str) -> InstanceGroup {
    let text = format!(
        "apiVersion: kops.k8s.io/v1alpha2\nkind: InstanceGroup\nmetadata:\n  name: nodes-a\nspec:\n  role: Node\n  manager: Karpenter\n  image: ami-0abc\n  subnets: [us-east-1a]\n{spec}"
    );
    let docs = document::parse_file("ig.yaml", text.as_bytes()).unwrap();
    document::typed(&Origin::of(&docs[0]), "InstanceGroup/nodes-a", &docs[0].value).unwrap()
}

fn cluster() -> Cluster {
    let docs = document::parse_file("c.yaml", crate::common::CLUSTER_SPEC.as_bytes()).unwrap();
    document::typed(&Origin::of(&docs[0]), "Cluster/dev", &docs[0].value).unwrap()
}

fn tr(spec: &str) -> Translated {
    translate::translate(&ig(spec), CLUSTER, Some(&cluster())).unwrap()
}

fn tr_err(spec: &str) -> translate::TranslateError {
    translate::translate(&ig(spec), CLUSTER, Some(&cluster())).unwrap_err().remove(0)
}

fn req_values(t: &Translated, key: &str) -> Option<Vec<String>> {
    let reqs = &t.node_pool.spec.template.spec.requirements;
    reqs.iter().find(|r| r.key == key).map(|r| r.values.clone())
}

#[test]
fn one_node_pool_and_one_node_class_named_after_the_ig() {
    let t = tr("");
    assert_eq!(t.node_pool.metadata.name, "nodes-a");
    assert_eq!(t.node_class.metadata.name, "nodes-a");
    assert_eq!(t.node_pool.api_version, "karpenter.sh/v1");
    assert_eq!(t.node_class.api_version, "karpenter.k8s.aws/v1");
}

#[test]
fn only_karpenter_managed_node_igs_are_translated() {
    let mut snap = Snapshot::default();
    snap.insert("fleet.yaml", crate::common::FLEET);
    snap.insert("clusters/dev/cluster.yaml", crate::common::CLUSTER_SPEC);
    let plain = "apiVersion: kops.k8s.io/v1alpha2\nkind: InstanceGroup\nmetadata:\n  name: asg\nspec:\n  role: Node\n  machineType: m5.large\n  minSize: 1\n  maxSize: 2\n";
    snap.insert("clusters/dev/instancegroups/asg.yaml", plain);
    snap.insert(
        "clusters/dev/instancegroups/k.yaml",
        crate::common::karpenter_ig("k", "  image: ami-1\n  maxSize: 2\n  subnets: [us-east-1a]\n"),
    );
    let v = policy::validate(&snap, Some("dev")).unwrap();
    let names: Vec<&str> = v.policies[0].node_pools.iter().map(|p| p.value.metadata.name.as_str()).collect();
    assert_eq!(names, ["k"]);
    let bastion =
        crate::common::karpenter_ig("b", "  image: ami-1\n  maxSize: 1\n").replace("role: Node", "role: Bastion");
    snap.insert("clusters/dev/instancegroups/b.yaml", bastion);
    let v = policy::validate(&snap, Some("dev")).unwrap();
    assert!(v.diagnostics.iter().any(|d| d.message.contains("only role Node may be managed by Karpenter")));
}

#[test]
fn node_class_ref_points_at_the_translated_node_class() {
    let r = tr("").node_pool.spec.template.spec.node_class_ref;
    assert_eq!((r.group.as_str(), r.kind.as_str(), r.name.as_str()), ("karpenter.k8s.aws", "EC2NodeClass", "nodes-a"));
}

#[test]
fn requirements_are_os_then_instance_types_then_capacity_type() {
    let t = tr(
        "  machineType: m5.xlarge, c5.large ,m5.xlarge\n  mixedInstancesPolicy:\n    instances: [r5.large, c5.large]\n",
    );
    let reqs = &t.node_pool.spec.template.spec.requirements;
    let keys: Vec<&str> = reqs.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["kubernetes.io/os", "node.kubernetes.io/instance-type", "karpenter.sh/capacity-type"]);
    assert!(reqs.iter().all(|r| r.operator == Operator::In));
    assert_eq!(reqs[0].values, ["linux"]);
    assert_eq!(reqs[1].values, ["c5.large", "m5.xlarge", "r5.large"], "union, trimmed, de-duplicated, sorted");
}

#[test]
fn no_instance_type_requirement_when_the_ig_names_none() {
    let t = tr("");
    assert_eq!(req_values(&t, "node.kubernetes.io/instance-type"), None);
    assert_eq!(t.node_pool.spec.template.spec.requirements.len(), 2);
}

#[test]
fn capacity_type_spot_when_max_price_or_spot_duration_is_set() {
    assert_eq!(req_values(&tr("  maxPrice: \"0.10\"\n"), "karpenter.sh/capacity-type").unwrap(), ["spot"]);
    assert_eq!(req_values(&tr("  spotDurationInMinutes: 60\n"), "karpenter.sh/capacity-type").unwrap(), ["spot"]);
}

#[test]
fn capacity_type_both_when_on_demand_above_base_is_below_100() {
    let t = tr("  mixedInstancesPolicy:\n    onDemandAboveBase: 20\n");
    assert_eq!(req_values(&t, "karpenter.sh/capacity-type").unwrap(), ["on-demand", "spot"]);
    let t = tr("  mixedInstancesPolicy:\n    onDemandAboveBase: 100\n");
    assert_eq!(req_values(&t, "karpenter.sh/capacity-type").unwrap(), ["on-demand"]);
}

#[test]
fn capacity_type_on_demand_by_default() {
    assert_eq!(req_values(&tr(""), "karpenter.sh/capacity-type").unwrap(), ["on-demand"]);
}

#[test]
fn labels_are_node_role_plus_node_labels_minus_reserved_keys() {
    let t = tr(
        "  nodeLabels:\n    team: a\n    kubernetes.io/hostname: h\n    karpenter.sh/foo: x\n    sub.karpenter.sh/bar: x\n    karpenter.k8s.aws/instance-family: m5\n    karpenter.sh/capacity-type: spot\n",
    );
    let labels = &t.node_pool.spec.template.metadata.as_ref().unwrap().labels;
    let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
    assert_eq!(keys, ["karpenter.sh/capacity-type", "node-role.kubernetes.io/node", "team"]);
    assert_eq!(labels["node-role.kubernetes.io/node"], "");
}

#[test]
fn taints_become_key_value_effect() {
    let t = tr("  taints:\n    - dedicated=gpu:NoSchedule\n    - spot:PreferNoSchedule\n");
    let taints = &t.node_pool.spec.template.spec.taints;
    assert_eq!((taints[0].key.as_str(), taints[0].value.as_deref()), ("dedicated", Some("gpu")));
    assert_eq!(format!("{:?}", taints[0].effect), "NoSchedule");
    assert_eq!((taints[1].key.as_str(), taints[1].value.as_deref()), ("spot", None));
    assert_eq!(format!("{:?}", taints[1].effect), "PreferNoSchedule");
    assert!(tr_err("  taints: [\"dedicated=gpu:Sometimes\"]\n").field.starts_with("spec.taints[0]"));
    // As kOps's taint parser: one `:` and at most one `=`.
    assert!(tr_err("  taints: [\"a:b:NoSchedule\"]\n").field.starts_with("spec.taints[0]"));
    assert!(tr_err("  taints: [\"k=v=w:NoSchedule\"]\n").field.starts_with("spec.taints[0]"));
}

#[test]
fn min_size_becomes_replicas_and_max_size_becomes_node_limit() {
    let t = tr("  minSize: 2\n  maxSize: 7\n");
    assert_eq!(t.node_pool.spec.replicas, Some(2));
    let limits = t.node_pool.spec.limits.as_ref().unwrap();
    assert_eq!(limits["nodes"].as_str(), "7");
    let yaml = serde_yaml::to_string(&t.node_pool).unwrap();
    assert!(yaml.contains("nodes: '7'"), "limits.nodes is written as a string: {yaml}");
    let t = tr("  maxSize: 3\n");
    assert_eq!(t.node_pool.spec.replicas, None);
    assert_eq!(t.node_pool.spec.limits.unwrap()["nodes"].as_str(), "3");
    assert!(tr("").node_pool.spec.limits.is_none());
    // kOps's validation refuses a Karpenter IG with maxSize 0 or less.
    assert_eq!(tr_err("  maxSize: 0\n").field, "spec.maxSize");
    assert_eq!(tr_err("  maxSize: -2\n").field, "spec.maxSize");
}

#[test]
fn zero_or_negative_min_size_is_rejected() {
    assert_eq!(tr_err("  minSize: 0\n").field, "spec.minSize");
    assert_eq!(tr_err("  minSize: -1\n").field, "spec.minSize");
}

#[test]
fn ami_family_is_custom() {
    assert_eq!(format!("{:?}", tr("").node_class.spec.ami_family), "Some(Custom)");
}

#[test]
fn ami_selector_terms_from_the_image() {
    let spec_with = |image: &str| {
        let mut i = ig("");
        i.spec.image = Some(image.to_string());
        translate::ami_selector_terms(&i)
    };
    let t = spec_with("ami-0123").unwrap();
    assert_eq!(t[0].id.as_deref(), Some("ami-0123"));
    let t =
        spec_with("ssm:/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id").unwrap();
    assert!(t[0].ssm_parameter.as_deref().unwrap().starts_with("/aws/service/canonical"));
    let t = spec_with("my-golden-image").unwrap();
    assert_eq!((t[0].name.as_deref(), t[0].owner.as_deref()), (Some("my-golden-image"), Some("self")));
    for (alias, account) in [
        ("ubuntu", "099720109477"),
        ("amazon", "137112412989"),
        ("amazon.com", "137112412989"),
        ("redhat", "309956199498"),
        ("redhat.com", "309956199498"),
        ("debian", "136693071363"),
        ("debian11", "136693071363"),
        ("flatcar", "075585003325"),
        ("rocky", "792107900819"),
        ("rockylinux", "792107900819"),
    ] {
        let t = spec_with(&format!("{alias}/images/x-*")).unwrap();
        assert_eq!((t[0].owner.as_deref(), t[0].name.as_deref()), (Some(account), Some("images/x-*")), "{alias}");
    }
    let t = spec_with("123456789012/custom/image").unwrap();
    assert_eq!((t[0].owner.as_deref(), t[0].name.as_deref()), (Some("123456789012"), Some("custom/image")));
    assert_eq!(spec_with("https://example.com/img").unwrap_err().field, "spec.image");
    assert_eq!(spec_with("ssm:").unwrap_err().field, "spec.image");
}

#[test]
fn root_volume_defaults() {
    let t = tr("");
    assert_eq!(t.node_class.spec.block_device_mappings.len(), 1);
    let b = &t.node_class.spec.block_device_mappings[0];
    assert_eq!(b.root_volume, Some(true));
    assert_eq!(b.device_name.as_deref(), Some("/dev/xvda"));
    let ebs = b.ebs.as_ref().unwrap();
    assert_eq!(ebs.volume_size.as_ref().unwrap().as_str(), "128Gi");
    assert_eq!(ebs.volume_type, Some(VolumeType::Gp3));
    assert_eq!(ebs.delete_on_termination, Some(true));
    assert_eq!(ebs.encrypted, Some(true));
    assert_eq!((ebs.iops, ebs.throughput), (Some(3000), Some(125)));
    assert_eq!(ebs.kms_key_id, None);
}

#[test]
fn root_volume_size_type_and_encryption_from_the_ig() {
    let t = tr(
        "  rootVolumeSize: 64\n  rootVolumeType: gp3\n  rootVolumeIops: 6000\n  rootVolumeThroughput: 100\n  rootVolumeEncryption: true\n  rootVolumeEncryptionKey: arn:aws:kms:us-east-1:1:key/k\n",
    );
    let ebs = t.node_class.spec.block_device_mappings[0].ebs.clone().unwrap();
    assert_eq!(ebs.volume_size.unwrap().as_str(), "64Gi");
    assert_eq!((ebs.iops, ebs.throughput), (Some(6000), Some(125)), "gp3: iops at least 3000, throughput at least 125");
    assert_eq!(ebs.kms_key_id.as_deref(), Some("arn:aws:kms:us-east-1:1:key/k"));
    // A key without explicit encryption is dropped; explicit false turns encryption off.
    let ebs = tr("  rootVolumeEncryptionKey: k\n").node_class.spec.block_device_mappings[0].ebs.clone().unwrap();
    assert_eq!((ebs.encrypted, ebs.kms_key_id), (Some(true), None));
    let ebs = tr("  rootVolumeEncryption: false\n  rootVolumeEncryptionKey: k\n").node_class.spec.block_device_mappings
        [0]
    .ebs
    .clone()
    .unwrap();
    assert_eq!((ebs.encrypted, ebs.kms_key_id), (Some(false), None));
    // The nested rootVolume form carries the same data.
    let ebs = tr("  rootVolume:\n    size: 32\n    type: gp2\n").node_class.spec.block_device_mappings[0]
        .ebs
        .clone()
        .unwrap();
    assert_eq!(ebs.volume_size.unwrap().as_str(), "32Gi");
}

#[test]
fn zero_size_falls_back_to_the_role_default() {
    let size =
        |i: &InstanceGroup| translate::root_volume(i).unwrap().ebs.unwrap().volume_size.unwrap().as_str().to_string();
    assert_eq!(size(&ig("  rootVolumeSize: 0\n")), "128Gi");
    assert_eq!(size(&ig("  rootVolume:\n    size: 0\n")), "128Gi");
    let ebs = tr("  rootVolumeSize: 0\n").node_class.spec.block_device_mappings[0].ebs.clone().unwrap();
    assert_eq!(ebs.volume_size.unwrap().as_str(), "128Gi");
    for (role, default) in [("Node", "128Gi"), ("ControlPlane", "64Gi"), ("Master", "64Gi"), ("Bastion", "32Gi")] {
        let mut i = ig("  rootVolumeSize: 0\n");
        i.spec.role = Some(role.to_string());
        assert_eq!(size(&i), default, "{role}");
        i.spec.root_volume_size = None;
        assert_eq!(size(&i), default, "{role}, no size");
        i.spec.root_volume_size = Some(20);
        assert_eq!(size(&i), "20Gi", "{role}, size set");
    }
}

#[test]
fn kms_key_kept_only_with_explicit_encryption_and_a_non_empty_key() {
    let ebs = |spec: &str| tr(spec).node_class.spec.block_device_mappings[0].ebs.clone().unwrap();
    // Encryption key without explicit encryption is ignored.
    let e = ebs("  rootVolume:\n    encryptionKey: arn:aws:kms:us-east-1:1:key/k\n");
    assert_eq!((e.encrypted, e.kms_key_id), (Some(true), None));
    let e = ebs("  rootVolume:\n    encryption: true\n    encryptionKey: arn:aws:kms:us-east-1:1:key/k\n");
    assert_eq!((e.encrypted, e.kms_key_id.as_deref()), (Some(true), Some("arn:aws:kms:us-east-1:1:key/k")));
    // Empty encryption key is dropped.
    let e = ebs("  rootVolumeEncryption: true\n  rootVolumeEncryptionKey: \"\"\n");
    assert_eq!((e.encrypted, e.kms_key_id), (Some(true), None));
    let e = ebs("  rootVolume:\n    encryption: true\n    encryptionKey: \"\"\n");
    assert_eq!((e.encrypted, e.kms_key_id), (Some(true), None));
}

#[test]
fn iops_and_throughput_by_volume_type() {
    let ebs = |spec: &str| tr(spec).node_class.spec.block_device_mappings[0].ebs.clone().unwrap();
    let io1 = ebs("  rootVolumeType: io1\n  rootVolumeIops: 50\n  rootVolumeThroughput: 500\n");
    assert_eq!((io1.iops, io1.throughput), (Some(100), None));
    let io2 = ebs("  rootVolumeType: io2\n  rootVolumeIops: 4000\n");
    assert_eq!((io2.iops, io2.throughput), (Some(4000), None));
    let gp2 = ebs("  rootVolumeType: gp2\n  rootVolumeIops: 4000\n  rootVolumeThroughput: 500\n");
    assert_eq!((gp2.iops, gp2.throughput), (None, None));
}

#[test]
fn kubelet_from_the_ig_or_omitted() {
    assert!(tr("").node_class.spec.kubelet.is_none());
    assert!(tr("  kubelet:\n    anonymousAuth: false\n").node_class.spec.kubelet.is_none());
    let k =
        tr("  kubelet:\n    maxPods: 58\n    systemReserved:\n      cpu: 100m\n    kubeReserved:\n      memory: 1Gi\n")
            .node_class
            .spec
            .kubelet
            .unwrap();
    assert_eq!(k.max_pods, Some(58));
    assert_eq!(k.system_reserved.unwrap()["cpu"].as_str(), "100m");
    assert_eq!(k.kube_reserved.unwrap()["memory"].as_str(), "1Gi");
}

#[test]
fn instance_profile_is_nodes_dot_cluster() {
    assert_eq!(tr("").node_class.spec.instance_profile.as_deref(), Some("nodes.dev.example.com"));
    let t = tr("  iam:\n    profile: arn:aws:iam::123456789012:instance-profile/custom-nodes\n");
    assert_eq!(t.node_class.spec.instance_profile.as_deref(), Some("custom-nodes"));
}

#[test]
fn security_groups_by_cluster_tags_or_override_plus_additional() {
    let terms = tr("  additionalSecurityGroups: [sg-1, sg-2]\n").node_class.spec.security_group_selector_terms;
    assert_eq!(terms[0].tags["KubernetesCluster"], CLUSTER);
    assert_eq!(terms[0].tags["Name"], "nodes.dev.example.com");
    assert_eq!(terms.iter().skip(1).map(|t| t.id.clone().unwrap()).collect::<Vec<_>>(), ["sg-1", "sg-2"]);
    let terms = tr("  securityGroupOverride: sg-9\n").node_class.spec.security_group_selector_terms;
    assert_eq!(terms.len(), 1);
    assert_eq!(terms[0].id.as_deref(), Some("sg-9"));
}

#[test]
fn subnets_by_cluster_and_instance_group_tags() {
    let terms = tr("").node_class.spec.subnet_selector_terms;
    assert_eq!(terms.len(), 1);
    assert_eq!(terms[0].tags["KubernetesCluster"], CLUSTER);
    assert_eq!(terms[0].tags["kops.k8s.io/instance-group/nodes-a"], "true");
}

#[test]
fn public_ip_by_subnet_type() {
    let private = tr("");
    assert_eq!(private.node_class.spec.associate_public_ip_address, Some(false));
    let private_forced = tr("  associatePublicIp: true\n");
    assert_eq!(
        private_forced.node_class.spec.associate_public_ip_address,
        Some(false),
        "private subnets never get one"
    );
    let mut i = ig("");
    i.spec.subnets = Some(vec!["utility-us-east-1a".into()]);
    let t = translate::translate(&i, CLUSTER, Some(&cluster())).unwrap();
    assert_eq!(t.node_class.spec.associate_public_ip_address, Some(true), "public subnets default to true");
    i.spec.associate_public_ip = Some(false);
    let t = translate::translate(&i, CLUSTER, Some(&cluster())).unwrap();
    assert_eq!(t.node_class.spec.associate_public_ip_address, Some(false));
    i.spec.subnets = Some(vec!["nowhere".into()]);
    assert_eq!(translate::translate(&i, CLUSTER, Some(&cluster())).unwrap_err()[0].field, "spec.subnets[0]");
    let without_spec = translate::translate(&ig(""), CLUSTER, None).unwrap();
    assert_eq!(without_spec.node_class.spec.associate_public_ip_address, None);
    assert!(without_spec.notes.iter().any(|n| n.contains("Cluster spec")));
}

#[test]
fn tags_are_kops_cloud_tags_minus_reserved_keys() {
    let t = tr(
        "  nodeLabels:\n    team: a\n  taints: [\"dedicated=gpu:NoSchedule\"]\n  cloudLabels:\n    cost-center: \"42\"\n    kubernetes.io/cluster/dev: owned\n    karpenter.sh/nodepool: x\n    eks:eks-cluster-name: x\n",
    );
    let tags = &t.node_class.spec.tags;
    assert_eq!(tags["KubernetesCluster"], CLUSTER);
    assert_eq!(tags["Name"], "nodes-a.dev.example.com");
    assert_eq!(tags["k8s.io/role/node"], "1");
    assert_eq!(tags["kops.k8s.io/instancegroup"], "nodes-a");
    assert_eq!(tags["k8s.io/cluster-autoscaler/node-template/label/team"], "a");
    assert_eq!(tags["k8s.io/cluster-autoscaler/node-template/label/node-role.kubernetes.io/node"], "");
    assert_eq!(tags["k8s.io/cluster-autoscaler/node-template/taint/dedicated"], "gpu:NoSchedule");
    assert_eq!(tags["cost-center"], "42");
    for reserved in ["kubernetes.io/cluster/dev", "karpenter.sh/nodepool", "eks:eks-cluster-name"] {
        assert!(!tags.contains_key(reserved), "{reserved} must be dropped");
    }
}

#[test]
fn every_taint_with_an_effect_becomes_a_cluster_autoscaler_tag() {
    let t = tr("  taints:\n    - dedicated=gpu:NoSchedule\n    - foo:NoSchedule\n    - spot=:PreferNoSchedule\n");
    let tags = &t.node_class.spec.tags;
    assert_eq!(tags["k8s.io/cluster-autoscaler/node-template/taint/dedicated"], "gpu:NoSchedule");
    assert_eq!(tags["k8s.io/cluster-autoscaler/node-template/taint/foo"], ":NoSchedule");
    assert_eq!(tags["k8s.io/cluster-autoscaler/node-template/taint/spot"], ":PreferNoSchedule");
    // A taint without an effect gives no tag.
    let tags = translate::tags(&ig("  taints: [\"bar=baz\", \"qux\"]\n"), CLUSTER, None);
    assert!(!tags.keys().any(|k| k.starts_with("k8s.io/cluster-autoscaler/node-template/taint/")), "{tags:?}");
}

#[test]
fn user_data_is_reported_as_unresolved_until_read_from_the_state_store() {
    let t = tr("");
    assert_eq!(t.node_class.spec.user_data, None);
    assert!(
        t.notes.iter().any(|n| n.contains("userData not resolved")
            && n.contains("dev.example.com/igconfig/node/nodes-a/nodeupscript.sh"))
    );
    assert!(
        t.node_class.metadata.annotations[translate::USER_DATA_SOURCE]
            .ends_with("igconfig/node/nodes-a/nodeupscript.sh")
    );
}

// ---- kOps 1.36 / 1.37 rules ----

/// A Cluster spec: the shared test one plus `extra` lines under `spec:` and `annotations` under
/// `metadata:`.
fn cluster_with(annotations: &str, extra: &str) -> Cluster {
    let meta = if annotations.is_empty() { String::new() } else { format!("  annotations:\n{annotations}") };
    let text = crate::common::CLUSTER_SPEC
        .replace("  name: dev.example.com\n", &format!("  name: dev.example.com\n{meta}"))
        .replace("spec:\n", &format!("spec:\n{extra}"));
    let docs = document::parse_file("c.yaml", text.as_bytes()).unwrap();
    document::typed(&Origin::of(&docs[0]), "Cluster/dev", &docs[0].value).unwrap()
}

/// The documents of a kOps fixture file, by name.
fn kops_fixture(file: &str, name: &str) -> serde_json::Value {
    let bytes = std::fs::read(crate::common::root().join("tests/fixtures/kops").join(file)).unwrap();
    let docs = document::parse_file(file, &bytes).unwrap();
    docs.into_iter().map(|d| d.value).find(|v| v["metadata"]["name"] == name).unwrap()
}

fn requirement_lines(t: &Translated) -> Vec<String> {
    let reqs = &t.node_pool.spec.template.spec.requirements;
    reqs.iter().map(|r| format!("{} {:?} {}", r.key, r.operator, r.values.join(","))).collect()
}

#[test]
fn cluster_kubelet_is_merged_under_the_ig_kubelet() {
    // The IG kubelet of kOps's karpenter integration test (karpenter-nodes-default), over a
    // Cluster kubelet that sets the same fields and one the IG leaves alone.
    let cluster = cluster_with(
        "",
        "  kubelet:\n    anonymousAuth: false\n    maxPods: 110\n    systemReserved:\n      cpu: 100m\n      ephemeral-storage: 1Gi\n    kubeReserved:\n      memory: 256Mi\n",
    );
    let ig_kubelet = "  kubelet:\n    maxPods: 50\n    systemReserved:\n      cpu: 500m\n      memory: 1G\n    kubeReserved:\n      cpu: 500m\n      memory: 1G\n";
    let k = translate::translate(&ig(ig_kubelet), CLUSTER, Some(&cluster)).unwrap().node_class.spec.kubelet.unwrap();
    assert_eq!(k.max_pods, Some(50), "the IG's value wins");
    let system: Vec<(String, String)> =
        k.system_reserved.unwrap().into_iter().map(|(k, v)| (k, v.as_str().to_string())).collect();
    assert_eq!(
        system,
        [("cpu".into(), "500m".into()), ("ephemeral-storage".into(), "1Gi".into()), ("memory".into(), "1G".into())],
        "maps merge key by key"
    );
    let kube = k.kube_reserved.unwrap();
    assert_eq!((kube["cpu"].as_str(), kube["memory"].as_str()), ("500m", "1G"));
    // An IG without a kubelet block takes the Cluster's; a Cluster that sets none of the three
    // fields gives no kubelet block.
    let k = translate::translate(&ig(""), CLUSTER, Some(&cluster)).unwrap().node_class.spec.kubelet.unwrap();
    assert_eq!(k.max_pods, Some(110));
    assert_eq!(k.kube_reserved.unwrap()["memory"].as_str(), "256Mi");
    assert!(k.eviction_hard.is_none());
    let bare = cluster_with("", "  kubelet:\n    anonymousAuth: false\n    evictionHard: memory.available<100Mi\n");
    assert!(translate::translate(&ig(""), CLUSTER, Some(&bare)).unwrap().node_class.spec.kubelet.is_none());
    // An empty IG map leaves the Cluster's in place.
    let t = translate::translate(&ig("  kubelet:\n    systemReserved: {}\n"), CLUSTER, Some(&cluster)).unwrap();
    assert_eq!(t.node_class.spec.kubelet.unwrap().system_reserved.unwrap()["cpu"].as_str(), "100m");
    // A bad Cluster quantity is named as the Cluster's.
    let broken = cluster_with("", "  kubelet:\n    systemReserved:\n      cpu: lots\n");
    let e = translate::translate(&ig(""), CLUSTER, Some(&broken)).unwrap_err().remove(0);
    assert!(e.message.contains("Cluster's spec.kubelet.systemReserved.cpu"), "{e:?}");
}

#[test]
fn node_termination_handler_tag_when_the_handler_runs_in_queue_mode() {
    let tag = |annotations: &str, extra: &str, spec: &str| {
        let t = translate::translate(&ig(spec), CLUSTER, Some(&cluster_with(annotations, extra))).unwrap();
        let tags = t.node_class.spec.tags;
        tags.iter()
            .find(|(k, _)| k.contains("termination-handler") || k.as_str() == "custom/nth")
            .map(|(k, v)| (k.clone(), v.clone()))
    };
    let default = Some((translate::DEFAULT_NTH_MANAGED_TAG.to_string(), String::new()));
    // kOps's own Karpenter off (as capstan asks): the handler is on in queue mode by default.
    assert_eq!(tag("", "", ""), default);
    assert_eq!(tag("", "  nodeTerminationHandler:\n    enabled: true\n", ""), default);
    assert_eq!(tag("", "  nodeTerminationHandler:\n    enabled: false\n", ""), None);
    assert_eq!(tag("", "  nodeTerminationHandler:\n    enableSQSTerminationDraining: false\n", ""), None);
    assert_eq!(
        tag("", "  nodeTerminationHandler:\n    managedASGTag: custom/nth\n", ""),
        Some(("custom/nth".to_string(), String::new()))
    );
    // A cloud label that sets the key keeps its value.
    assert_eq!(
        tag("", "", "  cloudLabels:\n    aws-node-termination-handler/managed: \"yes\"\n"),
        Some((translate::DEFAULT_NTH_MANAGED_TAG.to_string(), "yes".to_string()))
    );
    // The newer API's place for the settings, and a cloud other than AWS.
    assert_eq!(
        tag("", "  cloudProvider:\n    aws:\n      nodeTerminationHandler:\n        enabled: false\n", ""),
        None
    );
    assert_eq!(tag("", "  cloudProvider: gce\n", ""), None);
    // kOps's own Karpenter on: no defaults are filled in, so no tag (as in kOps's output).
    let karpenter_on = |extra: &str| {
        let c = cluster_with("", extra);
        let mut c = c;
        c.spec.karpenter.as_mut().unwrap().enabled = Some(true);
        let t = translate::translate(&ig(""), CLUSTER, Some(&c)).unwrap();
        t.node_class.spec.tags.contains_key(translate::DEFAULT_NTH_MANAGED_TAG)
    };
    assert!(!karpenter_on(""));
    assert!(!karpenter_on("  nodeTerminationHandler:\n    enabled: true\n"), "no managedASGTag default either");
    // Without the Cluster spec nothing is known about the handler.
    assert!(!translate::tags(&ig(""), CLUSTER, None).contains_key(translate::DEFAULT_NTH_MANAGED_TAG));
}

#[test]
fn kops_version_annotation_selects_the_rules() {
    let wanted =
        "  machineType: m5.large\n  mixedInstancesPolicy:\n    instanceRequirements:\n      cpu:\n        min: \"4\"\n";
    let lines = |annotations: &str| {
        let t = translate::translate(&ig(wanted), CLUSTER, Some(&cluster_with(annotations, ""))).unwrap();
        (requirement_lines(&t), t.notes)
    };
    let with_bounds = [
        "kubernetes.io/os In linux",
        "node.kubernetes.io/instance-type In m5.large",
        "karpenter.k8s.aws/instance-cpu Gte 4",
        "karpenter.sh/capacity-type In on-demand",
    ];
    let without = [
        "kubernetes.io/os In linux",
        "node.kubernetes.io/instance-type In m5.large",
        "karpenter.sh/capacity-type In on-demand",
    ];
    assert_eq!(lines("").0, with_bounds, "1.37 by default");
    assert_eq!(lines("    capstan.io/kops-version: \"1.37\"\n").0, with_bounds);
    assert_eq!(lines("    capstan.io/kops-version: v1.36.2\n").0, without);
    assert_eq!(lines("    capstan.io/kops-version: \"1.36\"\n").0, without);
    let (reqs, notes) = lines("    capstan.io/kops-version: \"1.35\"\n");
    assert_eq!(reqs, with_bounds, "an unusable value falls back to the default");
    assert!(notes.iter().any(|n| n.contains("capstan.io/kops-version") && n.contains("1.35")), "{notes:?}");
    let none = translate::translate(&ig(wanted), CLUSTER, None).unwrap();
    assert_eq!(requirement_lines(&none), with_bounds, "no Cluster spec: 1.37");
    for (text, rules) in [
        ("1.36.0", Some(KopsRules::V1_36)),
        ("1.37.0-alpha.1", Some(KopsRules::V1_37)),
        ("1.38", Some(KopsRules::V1_37)),
        ("1.34", None),
        ("latest", None),
    ] {
        assert_eq!(KopsRules::parse(text), rules, "{text}");
    }
    // The validator warns about instanceRequirements only where they are not translated.
    let warned = |annotations: &str| {
        let mut snap = Snapshot::default();
        snap.insert("fleet.yaml", crate::common::FLEET);
        let spec = cluster_with(annotations, "");
        snap.insert("clusters/dev/cluster.yaml", serde_yaml::to_string(&spec).unwrap());
        snap.insert(
            "clusters/dev/instancegroups/k.yaml",
            crate::common::karpenter_ig(
                "k",
                &format!("  image: ami-1\n  maxSize: 2\n  subnets: [us-east-1a]\n{wanted}"),
            ),
        );
        let v = policy::validate(&snap, Some("dev")).unwrap();
        v.diagnostics.iter().any(|d| d.message.contains("does not translate instanceRequirements"))
    };
    assert!(warned("    capstan.io/kops-version: \"1.36\"\n"));
    assert!(!warned(""));
}

#[test]
fn instance_requirements_from_the_kops_integration_ig_under_1_37() {
    // IG karpenter-nodes-default of kOps's karpenter integration test. kOps's expected
    // NodePool lists: os, cpu Gte 2 / Lte 16, memory Gte 2048 / Lte 65536, family NotIn
    // [c3, m3], type NotIn [t2.nano], capacity type. kOps 1.37 keeps machineType as a
    // constraint next to the bounds.
    let value = kops_fixture("karpenter-full-in-v1alpha2.yaml", "karpenter-nodes-default");
    let ig: InstanceGroup = serde_json::from_value(value).unwrap();
    let cluster: Cluster =
        serde_json::from_value(kops_fixture("karpenter-full-in-v1alpha2.yaml", "minimal.example.com")).unwrap();
    let t = translate::translate_with(&ig, "minimal.example.com", Some(&cluster), KopsRules::V1_37).unwrap();
    assert_eq!(
        requirement_lines(&t),
        [
            "kubernetes.io/os In linux",
            "node.kubernetes.io/instance-type In t2.medium",
            "karpenter.k8s.aws/instance-cpu Gte 2",
            "karpenter.k8s.aws/instance-cpu Lte 16",
            "karpenter.k8s.aws/instance-memory Gte 2048",
            "karpenter.k8s.aws/instance-memory Lte 65536",
            "karpenter.k8s.aws/instance-family NotIn c3,m3",
            "node.kubernetes.io/instance-type NotIn t2.nano",
            "karpenter.sh/capacity-type In on-demand",
        ]
    );
    let t = translate::translate_with(&ig, "minimal.example.com", Some(&cluster), KopsRules::V1_36).unwrap();
    assert_eq!(
        requirement_lines(&t),
        [
            "kubernetes.io/os In linux",
            "node.kubernetes.io/instance-type In t2.medium",
            "karpenter.sh/capacity-type In on-demand"
        ]
    );
    // Without machineType the bounds stand alone; a bad bound is refused at its field.
    let t = tr("  mixedInstancesPolicy:\n    instanceRequirements:\n      memory:\n        max: 8Gi\n");
    assert_eq!(requirement_lines(&t)[1], "karpenter.k8s.aws/instance-memory Lte 8192");
    let e = tr_err("  mixedInstancesPolicy:\n    instanceRequirements:\n      cpu:\n        min: 1500m\n");
    assert_eq!(e.field, "spec.mixedInstancesPolicy.instanceRequirements.cpu.min");
}

#[test]
fn the_kops_integration_node_class_matches_kops_output() {
    // IG karpenter-nodes-single-machinetype and its Cluster (kOps's own Karpenter on, so no
    // handler tag) from kOps's karpenter integration test, against kOps's expected
    // EC2NodeClass: root volume from the flat fields, the tags, public IP, selectors.
    let ig: InstanceGroup =
        serde_json::from_value(kops_fixture("karpenter-full-in-v1alpha2.yaml", "karpenter-nodes-single-machinetype"))
            .unwrap();
    let cluster: Cluster =
        serde_json::from_value(kops_fixture("karpenter-full-in-v1alpha2.yaml", "minimal.example.com")).unwrap();
    let t = translate::translate(&ig, "minimal.example.com", Some(&cluster)).unwrap();
    let spec = &t.node_class.spec;
    let b = &spec.block_device_mappings[0];
    assert_eq!((b.device_name.as_deref(), b.root_volume), (Some("/dev/xvda"), Some(true)));
    let ebs = b.ebs.as_ref().unwrap();
    assert_eq!(ebs.volume_size.as_ref().unwrap().as_str(), "200Gi");
    assert_eq!((ebs.volume_type, ebs.iops, ebs.throughput), (Some(VolumeType::Gp3), Some(4000), Some(200)));
    assert_eq!((ebs.encrypted, ebs.delete_on_termination), (Some(true), Some(true)));
    assert_eq!(
        ebs.kms_key_id.as_deref(),
        Some("arn:aws-test:kms:us-test-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    );
    let tags: Vec<(&str, &str)> = spec.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        tags,
        [
            ("KubernetesCluster", "minimal.example.com"),
            ("Name", "karpenter-nodes-single-machinetype.minimal.example.com"),
            ("k8s.io/cluster-autoscaler/node-template/label/node-role.kubernetes.io/node", ""),
            ("k8s.io/role/node", "1"),
            ("kops.k8s.io/instancegroup", "karpenter-nodes-single-machinetype"),
        ]
    );
    assert_eq!(spec.associate_public_ip_address, Some(true));
    assert!(spec.kubelet.is_none(), "the Cluster kubelet sets only anonymousAuth");
    assert_eq!(t.node_pool.spec.replicas, Some(2));
}

#[test]
fn root_volume_settings_flat_fields_win_and_unknown_types_are_refused() {
    let ebs = |spec: &str| tr(spec).node_class.spec.block_device_mappings[0].ebs.clone().unwrap();
    // v1alpha2 stores the flat fields; kOps's conversion lets each one override the nested form.
    let e = ebs(
        "  rootVolumeSize: 80\n  rootVolumeType: io2\n  rootVolume:\n    size: 30\n    type: gp2\n    iops: 7000\n",
    );
    assert_eq!(e.volume_size.unwrap().as_str(), "80Gi");
    assert_eq!((e.volume_type, e.iops, e.throughput), (Some(VolumeType::Io2), Some(7000), None));
    let e = ebs("  rootVolume:\n    type: st1\n    iops: 7000\n    throughput: 300\n");
    assert_eq!((e.volume_type, e.iops, e.throughput), (Some(VolumeType::St1), None, None));
    assert_eq!(tr_err("  rootVolumeType: gp9\n").field, "spec.rootVolumeType");
    assert_eq!(tr_err("  rootVolume:\n    type: fast\n").field, "spec.rootVolume.type");
}

#[test]
fn root_device_name_comes_from_the_ami_at_launch() {
    use capstan::cloud::aws::resolve::Image;
    // Offline the mapping carries the common default and is marked as the root volume; the
    // launch template puts it on the device the resolved AMI names.
    let class = tr("").node_class;
    let image = |root: Option<&str>| Image {
        id: "ami-0abc".into(),
        name: "rhel".into(),
        arch: "amd64".into(),
        root_device_name: root.map(str::to_string),
        creation_date: String::new(),
    };
    let devices = |img: &Image| {
        let data = capstan::cloud::aws::template::data(&class, img, &["sg-1".to_string()], "nodes.dev.example.com");
        data.block_device_mappings().iter().map(|m| m.device_name().unwrap_or_default().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(devices(&image(Some("/dev/sda1"))), ["/dev/sda1"]);
    assert_eq!(devices(&image(None)), ["/dev/xvda"], "an AMI that names none keeps the default");
}

#[test]
fn gvisor_igs_get_kops_gvisor_label() {
    let t = tr("  containerd:\n    gvisor:\n      enabled: true\n");
    assert_eq!(t.node_pool.spec.template.metadata.as_ref().unwrap().labels["kops.k8s.io/gvisor"], "1");
    assert_eq!(t.node_class.spec.tags["k8s.io/cluster-autoscaler/node-template/label/kops.k8s.io/gvisor"], "1");
    assert!(!tr("").node_pool.spec.template.metadata.unwrap().labels.contains_key("kops.k8s.io/gvisor"));
}

#[test]
fn an_ig_without_subnets_gets_the_kops_default_subnets() {
    // kOps gives a node IG without subnets the Cluster's non-Utility, non-DualStack subnets.
    let mut i = ig("");
    i.spec.subnets = None;
    let t = translate::translate(&i, CLUSTER, Some(&cluster())).unwrap();
    assert_eq!(t.node_class.spec.associate_public_ip_address, Some(false), "us-east-1a is Private");
    // Only DualStack and Utility subnets: the second pass skips Utility only.
    let mut c = cluster();
    c.spec.subnets.as_mut().unwrap()[0].subnet_type = Some("DualStack".into());
    let t = translate::translate(&i, CLUSTER, Some(&c)).unwrap();
    assert_eq!(t.node_class.spec.associate_public_ip_address, Some(false), "DualStack us-east-1a");
    c.spec.subnets.as_mut().unwrap().remove(0);
    assert_eq!(translate::translate(&i, CLUSTER, Some(&c)).unwrap_err()[0].field, "spec.subnets", "Utility only");
    c.spec.subnets = Some(Vec::new());
    assert_eq!(translate::translate(&i, CLUSTER, Some(&c)).unwrap_err()[0].field, "spec.subnets");
}
