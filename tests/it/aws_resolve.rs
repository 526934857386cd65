//! EC2NodeClass selector terms resolved against a real EC2 API (moto): subnets, security
//! groups and AMIs, and errors that name the class, the selector and what to check.

use capstan::cloud::CloudError;
use capstan::cloud::aws::{self, Endpoint, resolve};
use capstan::policy::document::{self, Origin};
use capstan::policy::nodeclass::EC2NodeClass;

use crate::aws_catalog::moto;

fn endpoint() -> Endpoint {
    Endpoint { url: Some(moto()), region: Some("us-east-1".into()) }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

pub fn class(yaml: &str) -> EC2NodeClass {
    let docs = document::parse_file("class.yaml", yaml.as_bytes()).unwrap();
    document::typed(&Origin::of(&docs[0]), "EC2NodeClass", &docs[0].value).unwrap()
}

/// A VPC with two tagged subnets (zones a and b) and a tagged security group, for `cluster`.
pub async fn network(ec2: &aws_sdk_ec2::Client, cluster: &str) -> (Vec<String>, String) {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let tagged = |kind: ResourceType, tags: &[(&str, &str)]| {
        let mut spec = TagSpecification::builder().resource_type(kind);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        spec.build()
    };
    let vpc = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await.unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let mut subnets = Vec::new();
    for (i, zone) in ["us-east-1a", "us-east-1b"].iter().enumerate() {
        let tags = [("KubernetesCluster", cluster), ("kops.k8s.io/instance-group/nodes", "true")];
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.0.{}.0/24", i + 1))
            .availability_zone(*zone)
            .tag_specifications(tagged(ResourceType::Subnet, &tags))
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let sg = ec2
        .create_security_group()
        .vpc_id(&vpc_id)
        .group_name(format!("nodes.{cluster}"))
        .description("nodes")
        .tag_specifications(tagged(
            ResourceType::SecurityGroup,
            &[("KubernetesCluster", cluster), ("Name", &format!("nodes.{cluster}"))],
        ))
        .send()
        .await
        .unwrap();
    (subnets, sg.group_id().unwrap().to_string())
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{nanos}.example.com")
}

#[test]
fn subnets_and_security_groups_of_a_translated_kops_instance_group() {
    let cluster = unique("resolve");
    rt().block_on(async {
        let ec2 = aws::ec2(&endpoint()).await;
        let (mut subnet_ids, sg) = network(&ec2, &cluster).await;
        let c = class(&format!(
            "apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: nodes\nspec:\n  amiFamily: Custom\n  amiSelectorTerms: [{{id: ami-x}}]\n  instanceProfile: nodes.{cluster}\n  subnetSelectorTerms:\n    - tags:\n        KubernetesCluster: {cluster}\n        kops.k8s.io/instance-group/nodes: \"true\"\n  securityGroupSelectorTerms:\n    - tags:\n        KubernetesCluster: {cluster}\n        Name: nodes.{cluster}\n"
        ));
        let subnets = resolve::subnets(&ec2, &c).await.unwrap();
        subnet_ids.sort();
        assert_eq!(subnets.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), subnet_ids);
        let mut zones: Vec<&str> = subnets.iter().map(|s| s.zone.as_str()).collect();
        zones.sort();
        assert_eq!(zones, ["us-east-1a", "us-east-1b"]);
        assert_eq!(resolve::security_groups(&ec2, &c).await.unwrap(), std::slice::from_ref(&sg));
        // By id and by name, too.
        let by_id = class(&format!("apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: x\nspec:\n  amiSelectorTerms: [{{id: ami-x}}]\n  role: r\n  subnetSelectorTerms: [{{id: {}}}]\n  securityGroupSelectorTerms: [{{name: nodes.{cluster}}}]\n", subnet_ids[0]));
        assert_eq!(resolve::subnets(&ec2, &by_id).await.unwrap().len(), 1);
        assert_eq!(resolve::security_groups(&ec2, &by_id).await.unwrap(), [sg]);
    });
}

#[test]
fn no_matching_subnet_names_the_class_and_selector() {
    rt().block_on(async {
        let ec2 = aws::ec2(&endpoint()).await;
        let c = class("apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: lonely\nspec:\n  amiSelectorTerms: [{id: ami-x}]\n  role: r\n  subnetSelectorTerms: [{tags: {team: nobody-has-this}}]\n  securityGroupSelectorTerms: [{tags: {team: nobody-has-this}}]\n");
        let err = resolve::subnets(&ec2, &c).await.unwrap_err();
        let CloudError::InvalidConfig(msg) = &err else { panic!("{err:?}") };
        assert!(msg.contains("EC2NodeClass lonely") && msg.contains("subnetSelectorTerms") && msg.contains("team=nobody-has-this") && msg.contains("check"), "{msg}");
        let err = resolve::security_groups(&ec2, &c).await.unwrap_err().to_string();
        assert!(err.contains("EC2NodeClass lonely") && err.contains("security groupSelectorTerms"), "{err}");
    });
}

#[test]
fn amis_by_id_name_owner_ssm_parameter_and_alias() {
    rt().block_on(async {
        let ep = endpoint();
        let ec2 = aws::ec2(&ep).await;
        let ssm = aws::ssm(&ep).await;
        let lookup = &ssm;
        let amazon = ec2.describe_images().owners("amazon").send().await.unwrap();
        let any = amazon.images().iter().find(|i| i.name().is_some() && i.architecture().map(|a| a.as_str()) == Some("x86_64")).expect("moto ships Amazon AMIs");
        let (id, name) = (any.image_id().unwrap().to_string(), any.name().unwrap().to_string());
        let by = |term: &str| class(&format!("apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: amis\nspec:\n  amiFamily: Custom\n  amiSelectorTerms: [{term}]\n  role: r\n  subnetSelectorTerms: [{{id: subnet-1}}]\n  securityGroupSelectorTerms: [{{id: sg-1}}]\n"));
        let found = resolve::images(&ec2, &by(&format!("{{id: {id}}}")), lookup).await.unwrap();
        assert_eq!(found[0].id, id);
        assert_eq!(found[0].arch, "amd64");
        let found = resolve::images(&ec2, &by(&format!("{{name: \"{name}\", owner: amazon}}")), lookup).await.unwrap();
        assert!(found.iter().any(|i| i.id == id), "{found:?}");
        let param = format!("/capstan/test/{}", unique("ami"));
        ssm.put_parameter().name(&param).value(&id).r#type(aws_sdk_ssm::types::ParameterType::String).send().await.unwrap();
        let found = resolve::images(&ec2, &by(&format!("{{ssmParameter: \"{param}\"}}")), lookup).await.unwrap();
        assert_eq!(found[0].id, id);
        let alias = resolve::images(&ec2, &by("{alias: al2023@latest}"), lookup).await.unwrap();
        assert!(!alias.is_empty() && alias[0].id.starts_with("ami-"), "{alias:?}");
        let err = resolve::images(&ec2, &by("{name: no-such-image-anywhere, owner: self}"), lookup).await.unwrap_err().to_string();
        assert!(err.contains("EC2NodeClass amis: no AMI matches") && err.contains("no-such-image-anywhere") && err.contains("check"), "{err}");
    });
}
