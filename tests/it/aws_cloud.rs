//! `AwsCloud` against a real EC2 API (moto): CreateFleet with overrides and tags, idempotent
//! retries, listing by cluster tag, delete, and NotFound; out of capacity named as typed
//! offerings, the caller's avoided set honoured.

use std::collections::BTreeMap;

use capstan::cloud::aws::provider::AwsCloud;
use capstan::cloud::aws::{self, Endpoint};
use capstan::cloud::provider::{Avoid, CloudProvider, Instance, InstanceState, NodeClaim, tags};
use capstan::cloud::{CloudError, OfferingKey};
use capstan::scheduling::builtin;
use capstan::scheduling::catalog::CapacityType;
use capstan::scheduling::plan::LaunchOption;

use crate::aws_catalog::moto;
use crate::aws_resolve::{class, network, unique};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

pub async fn cloud(cluster: &str) -> AwsCloud {
    let ep = Endpoint { url: Some(moto()), region: Some("us-east-1".into()) };
    let ec2 = aws::ec2(&ep).await;
    network(&ec2, cluster).await;
    let amazon = ec2.describe_images().owners("amazon").send().await.unwrap();
    let image = amazon
        .images()
        .iter()
        .find(|i| i.architecture().map(|a| a.as_str()) == Some("x86_64"))
        .unwrap()
        .image_id()
        .unwrap()
        .to_string();
    let c = class(&format!(
        "apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: nodes\nspec:\n  amiFamily: Custom\n  amiSelectorTerms: [{{id: {image}}}]\n  instanceProfile: nodes.{cluster}\n  userData: \"#!/bin/bash\\necho nodeup\"\n  tags:\n    team: platform\n  subnetSelectorTerms:\n    - tags: {{KubernetesCluster: {cluster}}}\n  securityGroupSelectorTerms:\n    - tags: {{KubernetesCluster: {cluster}}}\n"
    ));
    AwsCloud::new(ec2, aws::ssm(&ep).await, cluster, BTreeMap::from([("nodes".to_string(), c)]), builtin::catalog())
}

/// Creates with nothing avoided and returns the instance.
async fn create(cloud: &AwsCloud, claim: &NodeClaim) -> Result<Instance, CloudError> {
    cloud.create(claim, &Avoid::new()).await.map(|c| c.instance)
}

fn on_demand(t: &str, zone: &str) -> OfferingKey {
    OfferingKey::new(t, zone, CapacityType::OnDemand)
}

pub fn claim(name: &str) -> NodeClaim {
    let opt = |t: &str, z: &str| LaunchOption {
        instance_type: t.into(),
        zone: z.into(),
        capacity_type: CapacityType::OnDemand,
        price: 0.1,
    };
    NodeClaim {
        name: name.into(),
        node_pool: "default".into(),
        node_class: "nodes".into(),
        options: vec![opt("m6i.large", "us-east-1b"), opt("m5.large", "us-east-1a")],
        policy_revision: "main@sha1:0123abcd".into(),
        tags: Default::default(),
    }
}

#[test]
fn create_launches_one_tagged_instance_and_a_retry_launches_none() {
    let cluster = unique("fleet");
    rt().block_on(async {
        let cloud = cloud(&cluster).await;
        let name = format!("default-{}", unique("c"));
        let i = create(&cloud, &claim(&name)).await.unwrap();
        assert!(i.id.starts_with("i-"));
        assert_eq!((i.instance_type.as_str(), i.zone.as_str()), ("m6i.large", "us-east-1b"), "the first override");
        assert_eq!(i.tags[&tags::cluster(&cluster)], "owned");
        assert_eq!(i.tags[tags::NODE_POOL], "default");
        assert_eq!(i.tags[tags::NODE_CLAIM], name);
        assert_eq!(i.tags[tags::POLICY_REVISION], "main@sha1:0123abcd");
        assert_eq!(i.tags["team"], "platform");
        assert_eq!(i.claim, name);
        let again = create(&cloud, &claim(&name)).await.unwrap();
        assert_eq!(again.id, i.id, "a retried create returns the same instance");
        let listed = cloud.list().await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(cloud.get(&i.id).await.unwrap().id, i.id);
        cloud.delete(&i.id).await.unwrap();
        cloud.delete(&i.id).await.unwrap();
        let after = cloud.get(&i.id).await;
        assert!(
            matches!(after, Ok(ref x) if x.state == InstanceState::Terminated)
                || matches!(after, Err(CloudError::NotFound(_))),
            "{after:?}"
        );
        assert!(cloud.list().await.unwrap().is_empty());
        assert!(matches!(cloud.get("i-0000000000000dead").await, Err(CloudError::NotFound(_))));
    });
}

#[test]
fn a_claim_naming_a_missing_node_class_or_zone_is_invalid_config() {
    let cluster = unique("bad");
    rt().block_on(async {
        let cloud = cloud(&cluster).await;
        let mut c = claim(&unique("x"));
        c.node_class = "gpu".into();
        let err = create(&cloud, &c).await.unwrap_err().to_string();
        assert!(err.contains("EC2NodeClass gpu"), "{err}");
        let mut c = claim(&unique("y"));
        for o in &mut c.options {
            o.zone = "us-east-1f".into();
        }
        let err = create(&cloud, &c).await.unwrap_err().to_string();
        assert!(err.contains("no option's zone has a subnet"), "{err}");
    });
}

#[test]
fn offerings_the_caller_avoids_are_never_offered_to_ec2() {
    let cluster = unique("ice");
    rt().block_on(async {
        let cloud = cloud(&cluster).await;
        let avoid = Avoid::from([on_demand("m6i.large", "us-east-1b")]);
        let i = cloud.create(&claim(&unique("ice-a")), &avoid).await.unwrap().instance;
        assert_eq!(
            (i.instance_type.as_str(), i.zone.as_str()),
            ("m5.large", "us-east-1a"),
            "the avoided first option is skipped"
        );
        let j = create(&cloud, &claim(&unique("ice-b"))).await.unwrap();
        assert_eq!(j.instance_type, "m6i.large", "nothing avoided: the first option");
        let all = Avoid::from([on_demand("m6i.large", "us-east-1b"), on_demand("m5.large", "us-east-1a")]);
        let err = cloud.create(&claim(&unique("ice-c")), &all).await.unwrap_err();
        assert!(
            matches!(err, CloudError::InsufficientCapacity { ref offerings } if offerings.len() == 2 && offerings.iter().all(|o| all.contains(o))),
            "{err:?}"
        );
        // The catalog is EC2's: it says nothing of capacity.
        let cat = cloud.catalog().await.unwrap();
        assert!(cat.get("m6i.large").unwrap().offerings.iter().all(|o| o.available));
    });
}

/// The cloud with its EC2 calls going through a fault-injecting proxy in front of moto.
pub async fn behind_proxy(cluster: &str) -> (AwsCloud, crate::fault_proxy::Proxy) {
    let mut cloud = cloud(cluster).await;
    let upstream = moto().trim_start_matches("http://").to_string();
    let proxy = crate::fault_proxy::start(&upstream).await;
    cloud.ec2 = aws::ec2(&Endpoint { url: Some(proxy.url.clone()), region: Some("us-east-1".into()) }).await;
    (cloud, proxy)
}

#[test]
fn insufficient_capacity_from_create_fleet_names_typed_offerings() {
    let cluster = unique("ice-proxy");
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
        let (cloud, proxy) = behind_proxy(&cluster).await;
        // One override refused in Errors[]: the next one launches, the refusal is reported.
        proxy.faults.lock().unwrap().no_capacity = vec!["m6i.large".into()];
        let created = cloud.create(&claim(&unique("ice-1")), &Avoid::new()).await.unwrap();
        let i = &created.instance;
        assert_eq!((i.instance_type.as_str(), i.zone.as_str()), ("m5.large", "us-east-1a"), "the second offering");
        assert_eq!(created.refused, [on_demand("m6i.large", "us-east-1b")], "type and subnet's zone from Errors[]");
        // Every override refused: a typed error naming them.
        proxy.faults.lock().unwrap().no_capacity = vec!["m6i.large".into(), "m5.large".into()];
        match create(&cloud, &claim(&unique("ice-2"))).await {
            Err(CloudError::InsufficientCapacity { mut offerings }) => {
                offerings.sort();
                assert_eq!(offerings, [on_demand("m5.large", "us-east-1a"), on_demand("m6i.large", "us-east-1b")])
            }
            other => panic!("{other:?}"),
        }
        // The whole call refused with an out-of-capacity code: the offerings that were tried.
        proxy.faults.lock().unwrap().no_capacity.clear();
        proxy.faults.lock().unwrap().fleet_error.push_back("InsufficientInstanceCapacity".into());
        match create(&cloud, &claim(&unique("ice-3"))).await {
            Err(CloudError::InsufficientCapacity { offerings }) => {
                assert_eq!(offerings, [on_demand("m6i.large", "us-east-1b"), on_demand("m5.large", "us-east-1a")])
            }
            other => panic!("{other:?}"),
        }
        // Another code on the whole call is not out of capacity.
        proxy.faults.lock().unwrap().fleet_error.push_back("InvalidParameterValue".into());
        let err = create(&cloud, &claim(&unique("ice-4"))).await.unwrap_err();
        assert!(matches!(err, CloudError::Api(_)), "{err:?}");
    });
}

#[test]
fn throttling_is_retried() {
    let cluster = unique("throttle");
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
        let (cloud, proxy) = behind_proxy(&cluster).await;
        proxy.faults.lock().unwrap().throttle.insert("DescribeInstances".into(), 2);
        let listed = cloud.list().await.unwrap();
        assert!(listed.is_empty());
        assert_eq!(proxy.faults.lock().unwrap().seen["DescribeInstances"], 3, "two throttled, the third answered");
    });
}

#[test]
fn a_lost_create_fleet_answer_then_a_retry_yields_exactly_one_instance() {
    let cluster = unique("lost");
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
        let (cloud, proxy) = behind_proxy(&cluster).await;
        proxy.faults.lock().unwrap().drop_answer.insert("CreateFleet".into(), 1);
        let c = claim(&unique("lost-1"));
        let first = create(&cloud, &c).await;
        assert!(first.is_err(), "the answer was lost: {first:?}");
        let retried = create(&cloud, &c).await.unwrap();
        let all = cloud.list().await.unwrap();
        assert_eq!(all.len(), 1, "exactly one instance: {all:?}");
        assert_eq!(all[0].id, retried.id);
        assert_eq!(
            proxy.faults.lock().unwrap().seen["CreateFleet"],
            1,
            "the retry found the instance instead of launching"
        );
    });
}

#[test]
fn the_catalog_is_read_from_ec2_on_each_call() {
    let cluster = unique("refresh");
    rt().block_on(async {
        let mut cloud = cloud(&cluster).await;
        *cloud.catalog.lock().unwrap() = capstan::scheduling::catalog::Catalog::default();
        cloud.prices = Some(capstan::cloud::prices::read(&crate::aws_catalog::price_file()).unwrap());
        let first = cloud.catalog().await.unwrap();
        assert!(first.types.len() > 500, "read from EC2: {}", first.types.len());
        // No cache in the provider (the capacity loop owns it): each call reads EC2 again.
        cloud.catalog.lock().unwrap().types.truncate(3);
        assert!(cloud.catalog().await.unwrap().types.len() > 500, "read again");
        // An option outside the catalog is a configuration error that says what to check.
        cloud.catalog.lock().unwrap().types.retain(|t| t.name != "z9.huge");
        let mut c = claim(&unique("odd"));
        c.options[0].instance_type = "z9.huge".into();
        let err = create(&cloud, &c).await.unwrap_err().to_string();
        assert!(err.contains("z9.huge is not in the catalog") && err.contains("EC2NodeClass nodes"), "{err}");
    });
}

#[test]
fn the_launch_template_carries_the_root_volume_imds_settings_and_user_data() {
    let cluster = unique("template");
    rt().block_on(async {
        let mut cloud = cloud(&cluster).await;
        let mut c = cloud.classes["nodes"].clone();
        let extra = class("apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: x\nspec:\n  amiSelectorTerms: [{id: ami-x}]\n  role: r\n  subnetSelectorTerms: [{id: s}]\n  securityGroupSelectorTerms: [{id: g}]\n  blockDeviceMappings:\n    - deviceName: /dev/xvda\n      rootVolume: true\n      ebs: {volumeSize: 64Gi, volumeType: gp3, iops: 3000, throughput: 125, encrypted: true, deleteOnTermination: true}\n  metadataOptions: {httpTokens: required, httpPutResponseHopLimit: 2}\n  detailedMonitoring: true\n");
        c.spec.block_device_mappings = extra.spec.block_device_mappings;
        c.spec.metadata_options = extra.spec.metadata_options;
        c.spec.detailed_monitoring = extra.spec.detailed_monitoring;
        cloud.classes.insert("nodes".into(), c);
        create(&cloud, &claim(&unique("lt"))).await.unwrap();
        let prefix = format!("capstan-{}-", cluster.replace('.', "-"));
        // moto answers 15 templates a page unless asked for more, and gives no next token.
        let page = cloud.ec2.describe_launch_templates().max_results(1000).send().await.unwrap();
        let templates = page.launch_templates();
        let lt = templates.iter().find(|t| t.launch_template_name().is_some_and(|n| n.starts_with(&prefix))).expect("a launch template for the cluster");
        let versions = cloud.ec2.describe_launch_template_versions().launch_template_id(lt.launch_template_id().unwrap()).send().await.unwrap();
        let data = versions.launch_template_versions()[0].launch_template_data().unwrap();
        let root = &data.block_device_mappings()[0];
        let ebs = root.ebs().unwrap();
        assert_eq!((ebs.volume_size(), ebs.volume_type().map(|t| t.as_str())), (Some(64), Some("gp3")));
        assert_eq!(ebs.encrypted(), Some(true));
        assert!(root.device_name().is_some_and(|d| d.starts_with("/dev/")), "the AMI's root device: {root:?}");
        let imds = data.metadata_options().unwrap();
        assert_eq!(imds.http_put_response_hop_limit(), Some(2));
        assert_eq!(imds.http_tokens().map(|t| t.as_str()), Some("required"));
        use base64::Engine;
        let user_data = base64::engine::general_purpose::STANDARD.decode(data.user_data().unwrap()).unwrap();
        assert_eq!(String::from_utf8(user_data).unwrap(), "#!/bin/bash\necho nodeup");
        assert_eq!(data.iam_instance_profile().and_then(|p| p.name()), Some(format!("nodes.{cluster}").as_str()));
    });
}

#[test]
fn instances_kops_runs_in_the_cluster_are_not_listed() {
    use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
    let cluster = unique("kops");
    rt().block_on(async {
        let cloud = cloud(&cluster).await;
        let ours = create(&cloud, &claim(&format!("default-{}", unique("c")))).await.unwrap();
        // kOps tags every instance of the cluster `owned`: control plane, its instance groups,
        // bastions. None of them carries a NodeClaim.
        let amazon = cloud.ec2.describe_images().owners("amazon").send().await.unwrap();
        let image = amazon.images()[0].image_id().unwrap().to_string();
        let owned = Tag::builder().key(tags::cluster(&cluster)).value("owned").build();
        let group = Tag::builder().key("kops.k8s.io/instancegroup").value("control-plane-us-east-1a").build();
        let spec = TagSpecification::builder().resource_type(ResourceType::Instance).tags(owned).tags(group).build();
        let run = cloud
            .ec2
            .run_instances()
            .image_id(image)
            .instance_type(InstanceType::M5Large)
            .min_count(1)
            .max_count(1)
            .tag_specifications(spec)
            .send()
            .await
            .unwrap();
        let kops = run.instances()[0].instance_id().unwrap().to_string();
        let listed: Vec<String> = cloud.list().await.unwrap().into_iter().map(|i| i.id).collect();
        assert_eq!(listed, [ours.id], "kOps's instance {kops} is not capstan's");
    });
}
