//! One test per rule of the kOps InstanceGroup (manager: Karpenter) → NodePool + EC2NodeClass
//! translation.

use capstan::policy::document::{self, Origin};
use capstan::policy::kops::{Cluster, InstanceGroup};
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
}

#[test]
fn min_size_becomes_replicas_and_max_size_becomes_node_limit() {
    let t = tr("  minSize: 2\n  maxSize: 7\n");
    assert_eq!(t.node_pool.spec.replicas, Some(2));
    let limits = t.node_pool.spec.limits.as_ref().unwrap();
    assert_eq!(limits["nodes"].as_str(), "7");
    let yaml = serde_yaml::to_string(&t.node_pool).unwrap();
    assert!(yaml.contains("nodes: '7'"), "limits.nodes is written as a string: {yaml}");
    let t = tr("  maxSize: 0\n");
    assert_eq!(t.node_pool.spec.replicas, None);
    assert_eq!(t.node_pool.spec.limits.unwrap()["nodes"].as_str(), "0");
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
    let size = |i: &InstanceGroup| translate::root_volume(i).ebs.unwrap().volume_size.unwrap().as_str().to_string();
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
