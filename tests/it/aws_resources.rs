//! What `AwsCloud` makes besides instances, against a real EC2 and IAM API (moto): instance
//! profiles for EC2NodeClasses that name a `role` (created, tagged, given the role, reused,
//! swapped back), launch templates tagged as the cluster's, the first network interface of a
//! class with `associatePublicIPAddress`, and `tidy` deleting only what capstan made for this
//! cluster and nothing uses.
//!
//! moto's CreateFleet launches from the template without applying its instance profile or
//! network interfaces, so those are asserted on the stored template
//! (DescribeLaunchTemplateVersions), not on the instance.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::{RequestLaunchTemplateData, ResourceType, Tag, TagSpecification};
use capstan::clock::{Clock, SystemClock};
use capstan::cloud::aws::provider::AwsCloud;
use capstan::cloud::aws::tidy::GRACE;
use capstan::cloud::aws::{self, Endpoint, profile, template};
use capstan::cloud::provider::{Avoid, CloudProvider, Instance, tags};

use crate::aws_catalog::moto;
use crate::aws_cloud::{claim, cloud};
use crate::aws_resolve::unique;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The machine's clock moved on, so that what was made now is past clean-up's grace.
struct Later(Duration);

impl Clock for Later {
    fn now(&self) -> Duration {
        SystemClock.now() + self.0
    }
}

async fn iam() -> aws_sdk_iam::Client {
    aws::iam(&Endpoint { url: Some(moto()), region: Some("us-east-1".into()) }).await
}

async fn role(iam: &aws_sdk_iam::Client, name: &str) -> String {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let out = iam.create_role().role_name(name).assume_role_policy_document(trust).send().await.unwrap();
    out.role().unwrap().arn().to_string()
}

/// The cloud with its `nodes` class naming `role` instead of an instance profile, and IAM on moto.
async fn with_role(cluster: &str, role: &str) -> AwsCloud {
    let mut c = cloud(cluster).await.with_iam(iam().await);
    let class = c.classes.get_mut("nodes").unwrap();
    class.spec.instance_profile = None;
    class.spec.role = Some(role.to_string());
    c
}

async fn launch(cloud: &AwsCloud, class: &str) -> Instance {
    let mut c = claim(&unique("res"));
    c.node_class = class.into();
    cloud.create(&c, &Avoid::new()).await.unwrap().instance
}

async fn template_data(cloud: &AwsCloud, name: &str) -> aws_sdk_ec2::types::ResponseLaunchTemplateData {
    let out = cloud.ec2.describe_launch_template_versions().launch_template_name(name).send().await.unwrap();
    out.launch_template_versions()[0].launch_template_data().unwrap().clone()
}

async fn profile_of(iam: &aws_sdk_iam::Client, name: &str) -> Option<aws_sdk_iam::types::InstanceProfile> {
    iam.get_instance_profile().instance_profile_name(name).send().await.ok().and_then(|o| o.instance_profile)
}

fn role_names(p: &aws_sdk_iam::types::InstanceProfile) -> Vec<String> {
    p.roles().iter().map(|r| r.role_name().to_string()).collect()
}

#[test]
fn a_class_naming_a_role_launches_with_a_profile_capstan_makes_reuses_and_tidies() {
    let cluster = unique("role");
    rt().block_on(async {
        let iam = iam().await;
        let nodes_role = format!("nodes-{}", cluster.replace('.', "-"));
        let other_role = format!("other-{}", cluster.replace('.', "-"));
        let arn = role(&iam, &nodes_role).await;
        role(&iam, &other_role).await;
        // The role given as an ARN: the profile holds the role by name.
        let mut cloud = with_role(&cluster, &arn).await;
        let mut other = cloud.classes["nodes"].clone();
        other.metadata.name = "other".into();
        other.spec.role = Some(other_role.clone());
        cloud.classes.insert("other".into(), other);

        let first = launch(&cloud, "nodes").await;
        let name = profile::name(&cluster, "nodes", &nodes_role);
        let made = profile_of(&iam, &name).await.expect("the profile was created");
        assert_eq!(made.path(), profile::path(&cluster));
        assert_eq!(role_names(&made), std::slice::from_ref(&nodes_role));
        let tagged: BTreeMap<&str, &str> = made.tags().iter().map(|t| (t.key(), t.value())).collect();
        assert_eq!(tagged.get(tags::cluster(&cluster).as_str()), Some(&"owned"));
        assert_eq!(tagged.get(profile::CLASS_TAG), Some(&"nodes"));
        assert!(!tagged.contains_key("karpenter.k8s.aws/ec2nodeclass"), "never tagged as Karpenter's");
        assert_eq!(first.tags[template::INSTANCE_PROFILE_TAG], name);
        let data = template_data(&cloud, &first.tags[template::INSTANCE_TEMPLATE_TAG]).await;
        assert_eq!(data.iam_instance_profile().and_then(|p| p.name()), Some(name.as_str()));

        // Reused: a second launch makes no other profile; a swapped role is swapped back.
        iam.remove_role_from_instance_profile()
            .instance_profile_name(&name)
            .role_name(&nodes_role)
            .send()
            .await
            .unwrap();
        iam.add_role_to_instance_profile().instance_profile_name(&name).role_name(&other_role).send().await.unwrap();
        let second = launch(&cloud, "nodes").await;
        assert_eq!(second.tags[template::INSTANCE_PROFILE_TAG], name);
        assert_eq!(role_names(&profile_of(&iam, &name).await.unwrap()), std::slice::from_ref(&nodes_role));
        let ours = |all: Vec<aws_sdk_iam::types::InstanceProfile>| -> Vec<String> {
            all.iter()
                .filter(|p| p.path() == profile::path(&cluster))
                .map(|p| p.instance_profile_name().to_string())
                .collect()
        };
        let listed = iam.list_instance_profiles().send().await.unwrap().instance_profiles().to_vec();
        assert_eq!(ours(listed).len(), 1, "one profile for the class and role");

        // Another class with another role: another profile.
        let third = launch(&cloud, "other").await;
        let other_name = profile::name(&cluster, "other", &other_role);
        assert_ne!(other_name, name);
        assert_eq!(third.tags[template::INSTANCE_PROFILE_TAG], other_name);
        assert_eq!(role_names(&profile_of(&iam, &other_name).await.unwrap()), std::slice::from_ref(&other_role));

        // Not capstan's: another tool's profile under its own path, with the cluster's tag.
        let foreign = format!("karpenter-{}", cluster.replace('.', "-"));
        let owned = aws_sdk_iam::types::Tag::builder().key(tags::cluster(&cluster)).value("owned").build().unwrap();
        iam.create_instance_profile()
            .instance_profile_name(&foreign)
            .path(format!("/karpenter/us-east-1/{cluster}/"))
            .tags(owned)
            .send()
            .await
            .unwrap();

        // Both classes gone from the policy; `other`'s instance terminated, `nodes`'s still run.
        cloud.classes.clear();
        cloud.delete(&third.id).await.unwrap();
        cloud.clock = Arc::new(Later(GRACE * 2));
        let tidied = cloud.tidy().await.unwrap();
        assert_eq!(tidied.instance_profiles, std::slice::from_ref(&other_name), "{tidied:?}");
        assert!(profile_of(&iam, &other_name).await.is_none(), "deleted (moto refuses while it holds a role)");
        assert!(profile_of(&iam, &name).await.is_some(), "in use by a live instance");
        assert!(profile_of(&iam, &foreign).await.is_some(), "another tool's profile is never touched");
        assert_eq!(tidied.launch_templates, [third.tags[template::INSTANCE_TEMPLATE_TAG].clone()], "{tidied:?}");

        // Once nothing runs with it either, it goes too.
        cloud.delete(&first.id).await.unwrap();
        cloud.delete(&second.id).await.unwrap();
        let tidied = cloud.tidy().await.unwrap();
        assert_eq!(tidied.instance_profiles, std::slice::from_ref(&name), "{tidied:?}");
        assert!(cloud.tidy().await.unwrap().is_empty(), "nothing left to do");
    });
}

#[test]
fn templates_are_tagged_and_tidy_deletes_only_this_clusters_unused_capstan_ones() {
    let cluster = unique("tidy");
    let elsewhere = unique("elsewhere");
    rt().block_on(async {
        let mut cloud = cloud(&cluster).await;
        let used = launch(&cloud, "nodes").await;
        let used_name = used.tags[template::INSTANCE_TEMPLATE_TAG].clone();
        let page = cloud.ec2.describe_launch_templates().launch_template_names(&used_name).send().await.unwrap();
        let lt = &page.launch_templates()[0];
        let tagged: BTreeMap<&str, &str> =
            lt.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())).collect();
        assert_eq!(tagged.get(tags::cluster(&cluster).as_str()), Some(&"owned"));
        assert_eq!(tagged.get(profile::CLASS_TAG), Some(&"nodes"));

        let make = |name: String, owner: &str, marked: bool| {
            let ec2 = cloud.ec2.clone();
            let owner = owner.to_string();
            async move {
                let mut spec = TagSpecification::builder().resource_type(ResourceType::LaunchTemplate);
                if !owner.is_empty() {
                    spec = spec.tags(Tag::builder().key(tags::cluster(&owner)).value("owned").build());
                }
                if marked {
                    spec = spec.tags(Tag::builder().key(profile::CLASS_TAG).value("nodes").build());
                }
                let data = RequestLaunchTemplateData::builder().image_id("ami-12c6146b").build();
                let req = ec2.create_launch_template().launch_template_name(&name).launch_template_data(data);
                let req = if owner.is_empty() && !marked { req } else { req.tag_specifications(spec.build()) };
                req.send().await.unwrap();
                name
            }
        };
        let prefix = template::prefix(&cluster);
        let unused = make(format!("{prefix}0000000000000001"), &cluster, true).await;
        let untagged = make(format!("{prefix}0000000000000002"), "", false).await;
        let unmarked = make(format!("{prefix}0000000000000003"), &cluster, false).await;
        let foreign = make(format!("{}0000000000000004", template::prefix(&elsewhere)), &elsewhere, true).await;
        let not_ours = make(format!("kops-{}", cluster.replace('.', "-")), &cluster, true).await;

        // Made moments ago: nothing goes.
        assert!(cloud.tidy().await.unwrap().launch_templates.is_empty(), "within the grace period");
        cloud.clock = Arc::new(Later(GRACE * 2));
        let tidied = cloud.tidy().await.unwrap();
        assert_eq!(tidied.launch_templates, std::slice::from_ref(&unused), "{tidied:?}");
        assert!(tidied.instance_profiles.is_empty(), "no IAM asked: no class names a role");
        let left = cloud.ec2.describe_launch_templates().max_results(1000).send().await.unwrap();
        let names: Vec<&str> = left.launch_templates().iter().filter_map(|t| t.launch_template_name()).collect();
        for kept in [&used_name, &untagged, &unmarked, &foreign, &not_ours] {
            assert!(names.contains(&kept.as_str()), "{kept} is kept");
        }
        assert!(!names.contains(&unused.as_str()));

        // The next launch with the same class finds its template, or makes it again.
        cloud.delete(&used.id).await.unwrap();
        assert_eq!(cloud.tidy().await.unwrap().launch_templates, std::slice::from_ref(&used_name));
        let again = launch(&cloud, "nodes").await;
        assert_eq!(again.tags[template::INSTANCE_TEMPLATE_TAG], used_name, "recreated under the same name");
    });
}

#[test]
fn a_public_ip_is_asked_on_the_first_interface_with_the_groups() {
    let cluster = unique("public");
    rt().block_on(async {
        let mut cloud = cloud(&cluster).await;
        cloud.classes.get_mut("nodes").unwrap().spec.associate_public_ip_address = Some(true);
        let groups = aws::resolve::security_groups(&cloud.ec2, &cloud.classes["nodes"]).await.unwrap();
        let i = launch(&cloud, "nodes").await;
        let data = template_data(&cloud, &i.tags[template::INSTANCE_TEMPLATE_TAG]).await;
        let ni = data.network_interfaces().first().expect("the first network interface");
        assert_eq!(ni.device_index(), Some(0));
        assert_eq!(ni.associate_public_ip_address(), Some(true));
        assert_eq!(ni.groups(), groups, "the groups on the interface");
        assert!(data.security_group_ids().is_empty(), "not on the template as well");
        assert!(ni.subnet_id().is_none(), "CreateFleet's override picks the subnet");

        cloud.classes.get_mut("nodes").unwrap().spec.associate_public_ip_address = None;
        let j = launch(&cloud, "nodes").await;
        let data = template_data(&cloud, &j.tags[template::INSTANCE_TEMPLATE_TAG]).await;
        assert!(data.network_interfaces().is_empty());
        assert_eq!(data.security_group_ids(), groups);
    });
}

#[test]
fn a_template_of_the_expected_name_without_the_clusters_tag_is_never_launched_from() {
    let cluster = unique("lookalike");
    rt().block_on(async {
        let cloud = cloud(&cluster).await;
        let first = launch(&cloud, "nodes").await;
        let name = first.tags[template::INSTANCE_TEMPLATE_TAG].clone();
        assert!(name.len() <= template::MAX_BASE_NAME, "{name}");
        cloud.delete(&first.id).await.unwrap();
        // Another cluster's template under this name (as `dev-example.com`'s could look to
        // `dev.example.com`): tagged as the other cluster's.
        cloud.ec2.delete_launch_template().launch_template_name(&name).send().await.unwrap();
        let other = format!("{}-other", cluster);
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::LaunchTemplate)
            .tags(Tag::builder().key(tags::cluster(&other)).value("owned").build())
            .tags(Tag::builder().key(profile::CLASS_TAG).value("nodes").build())
            .build();
        let data = RequestLaunchTemplateData::builder().image_id("ami-12c6146b").build();
        let req = cloud.ec2.create_launch_template().launch_template_name(&name).launch_template_data(data);
        req.tag_specifications(spec).send().await.unwrap();
        let mut c = claim(&unique("res"));
        c.node_class = "nodes".into();
        let Err(e) = cloud.create(&c, &Avoid::new()).await else { panic!("launched from another cluster's template") };
        let text = e.to_string();
        assert!(matches!(e, capstan::cloud::CloudError::InvalidConfig(_)), "{e:?}");
        assert!(text.contains(&name) && text.contains("not this cluster's"), "{text}");
        assert!(cloud.list().await.unwrap().is_empty(), "nothing launched");
    });
}

#[test]
fn a_provider_built_for_a_new_revision_keeps_what_the_last_one_prepared() {
    let cluster = unique("revision");
    rt().block_on(async {
        let mut first = cloud(&cluster).await;
        // Past the grace period by EC2's clock, so that only the record of recent launches keeps it.
        first.clock = Arc::new(Later(GRACE * 2));
        let i = launch(&first, "nodes").await;
        let name = i.tags[template::INSTANCE_TEMPLATE_TAG].clone();
        first.delete(&i.id).await.unwrap();
        let next = |recent| {
            let c = AwsCloud::new(
                first.ec2.clone(),
                first.ssm.clone(),
                &cluster,
                BTreeMap::new(),
                capstan::scheduling::catalog::Catalog::default(),
            );
            let mut c = match recent {
                Some(r) => c.with_recent(r),
                None => c,
            };
            c.clock = Arc::new(Later(GRACE * 2));
            c
        };
        // The next revision drops the class, the instance is not listed (yet): the template stays.
        let second = next(Some(first.recent.clone()));
        assert!(second.tidy().await.unwrap().launch_templates.is_empty(), "kept: launched moments ago");
        // Without the record, it would have gone.
        let forgetful = next(None);
        assert_eq!(forgetful.tidy().await.unwrap().launch_templates, [name]);
    });
}
