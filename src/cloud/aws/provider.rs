//! `AwsCloud`: the CloudProvider contract on EC2.
//!
//! ```text
//! create(claim) ─ instance tagged with the claim? ─yes─► return it (a retry launches nothing)
//!      │ no
//!      ├─ resolve subnets, security groups, AMI (EC2NodeClass selector terms)
//!      ├─ ensure the launch template (named from a hash of its content)
//!      ├─ drop the options the caller avoids (all avoided → InsufficientCapacity, no call)
//!      └─ CreateFleet instant, 1 instance, ≤ 60 overrides (type × subnet), ClientToken = claim
//!           └─ Errors[] with a no-capacity code → the refused offerings (type, subnet's zone,
//!              lifecycle), returned to the caller, which owns the unavailable-offerings cache
//! ```
//!
//! The capacity loop decides how often to ask for the catalog. `catalog()` reads the classes'
//! capacity reservations on every call, and the instance types and prices (when prices are set)
//! when the last read is older than [`BASE_TTL`]. The last catalog read (or the one given) is
//! also kept to look up an instance type's architecture and an instance's price.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use aws_sdk_ec2::types::{
    Filter, FleetLaunchTemplateConfigRequest, FleetLaunchTemplateOverridesRequest,
    FleetLaunchTemplateSpecificationRequest, FleetOnDemandAllocationStrategy, FleetType, OnDemandOptionsRequest,
    ResourceType, SpotAllocationStrategy, SpotOptionsRequest, Tag, TagSpecification,
    TargetCapacitySpecificationRequest,
};

use super::super::provider::{Avoid, CloudProvider, Created, Instance, InstanceState, NodeClaim, Tidied, tags};
use super::super::{CloudError, OfferingKey};
use super::{classify, error_code, from_code, no_capacity, profile, reserved, resolve, template};
use crate::policy::nodeclass::EC2NodeClass;
use crate::scheduling::catalog::{CapacityType, Catalog};
use crate::scheduling::plan::LaunchOption;
use crate::scheduling::reserved::{RESERVATION_ID_LABEL, without_reserved};

/// EC2 behind the CloudProvider contract, for one cluster.
pub struct AwsCloud {
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    /// The kOps cluster name, tagged `kubernetes.io/cluster/<cluster>: owned`.
    pub cluster: String,
    /// EC2NodeClasses by name.
    pub classes: BTreeMap<String, EC2NodeClass>,
    /// The catalog last read from EC2 (or the one given): where `create` finds an instance
    /// type's architecture and `list` an instance's price. Not a cache: `catalog()` reads EC2
    /// again on every call when `prices` is set.
    pub catalog: Mutex<Catalog>,
    /// Fixed on-demand prices; `None` (and no `price_feed`) serves the given catalog as is.
    pub prices: Option<HashMap<String, f64>>,
    /// On-demand prices a refresher replaces (file > Pricing API > built-in); when set, each
    /// catalog read takes the prices it holds then, and `prices` is not used.
    pub price_feed: Option<crate::cloud::prices::PriceFeed>,
    /// IAM, for the instance profiles of EC2NodeClasses that name a `role`: set it with
    /// [`AwsCloud::with_iam`] (from [`super::iam`], which honours an endpoint override). Unset,
    /// the standard chain's IAM is taken when a class first needs a profile, and instance
    /// profiles are cleaned up only while one is set or some class names a role.
    pub iam: tokio::sync::OnceCell<aws_sdk_iam::Client>,
    /// Where `create` and `tidy` read the time (what was ensured when; clean-up's grace).
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// Launch templates and instance profiles this process ensured lately: kept by `tidy`.
    /// Shared by every provider the daemon builds ([`AwsCloud::with_recent`]).
    pub recent: std::sync::Arc<super::recent::Recent>,
    /// The interruption queue's reader; `None`: no queue, no notices.
    pub interruptions: Option<super::sqs::Reader>,
    /// The catalog last read from EC2 without its reserved offerings: reused for [`BASE_TTL`]
    /// while the prices stay the same, so reservations are read again on every `catalog()` call
    /// without reading every instance type again.
    base: Mutex<Option<Base>>,
}

/// A catalog read from EC2, without reserved offerings.
#[derive(Clone)]
struct Base {
    catalog: Catalog,
    /// When it was read.
    at: std::time::Duration,
    /// The on-demand prices it was read with.
    prices: HashMap<String, f64>,
}

/// How long the instance types and prices read from EC2 are reused while reservations are read
/// again: a little less than the hour the capacity loop keeps a catalog, so its hourly read
/// always reads everything.
pub const BASE_TTL: std::time::Duration = std::time::Duration::from_secs(55 * 60);

fn state(name: Option<&aws_sdk_ec2::types::InstanceStateName>) -> InstanceState {
    match name.map(|s| s.as_str()) {
        Some("pending") => InstanceState::Pending,
        Some("running") => InstanceState::Running,
        Some("terminated") => InstanceState::Terminated,
        _ => InstanceState::ShuttingDown,
    }
}

impl AwsCloud {
    pub fn new(
        ec2: aws_sdk_ec2::Client,
        ssm: aws_sdk_ssm::Client,
        cluster: &str,
        classes: BTreeMap<String, EC2NodeClass>,
        catalog: Catalog,
    ) -> AwsCloud {
        AwsCloud {
            ec2,
            ssm,
            cluster: cluster.to_string(),
            classes,
            catalog: Mutex::new(catalog),
            prices: None,
            price_feed: None,
            iam: tokio::sync::OnceCell::new(),
            clock: std::sync::Arc::new(crate::clock::SystemClock),
            recent: Default::default(),
            interruptions: None,
            base: Mutex::new(None),
        }
    }

    /// The provider keeping its record of recent launches in `recent`: the daemon hands the
    /// same record to the provider of each policy revision, so that what a launch just before a
    /// revision prepared is not tidied away, nor an instance profile's settling forgotten.
    pub fn with_recent(mut self, recent: std::sync::Arc<super::recent::Recent>) -> AwsCloud {
        self.recent = recent;
        self
    }

    /// The provider with this IAM client for instance profiles.
    pub fn with_iam(mut self, iam: aws_sdk_iam::Client) -> AwsCloud {
        self.iam = tokio::sync::OnceCell::new_with(Some(iam));
        self
    }

    /// The IAM client: the one given, else the standard chain's.
    pub(super) async fn iam(&self) -> &aws_sdk_iam::Client {
        self.iam.get_or_init(|| profile::default_client(&self.ec2)).await
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the catalog from EC2 when prices are set, else serves the given one; either way
    /// with the classes' reservations read now. Instance types read less than [`BASE_TTL`] ago
    /// with the same prices are reused. A failed read serves the last one read (and is logged);
    /// with none yet, it is an error.
    async fn read_catalog(&self) -> Result<Catalog, CloudError> {
        let now = self.clock.now();
        let with_reserved = |c: Catalog| reserved::with_reserved(&self.ec2, self.classes.values(), c, now);
        let fed = self.price_feed.as_ref().map(|f| f.current());
        let Some(prices) = fed.as_ref().map(|f| &f.prices).or(self.prices.as_ref()) else {
            let given = without_reserved(self.current().clone());
            return Ok(with_reserved(given).await);
        };
        let base = self.base.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(base) = base.filter(|b| now < b.at + BASE_TTL && b.prices == *prices) {
            let fresh = with_reserved(base.catalog).await;
            *self.current() = fresh.clone();
            return Ok(fresh);
        }
        match super::catalog::fetch(&self.ec2, prices).await {
            Ok((fresh, report)) => {
                let base = Base { catalog: fresh.clone(), at: now, prices: prices.clone() };
                *self.base.lock().unwrap_or_else(|p| p.into_inner()) = Some(base);
                let fresh = with_reserved(fresh).await;
                let sources = fed.as_ref().map_or_else(|| "given".into(), |f| f.sources.label());
                let unpriced = report.unpriced.len();
                tracing::info!(types = report.exported, unpriced, %sources, "instance catalog read");
                *self.current() = fresh.clone();
                Ok(fresh)
            }
            Err(e) if !self.current().types.is_empty() => {
                tracing::warn!(error = %e, "instance catalog read failed; serving the previous one");
                let previous = without_reserved(self.current().clone());
                Ok(with_reserved(previous).await)
            }
            Err(e) => Err(e),
        }
    }

    fn class(&self, claim: &NodeClaim) -> Result<&EC2NodeClass, CloudError> {
        self.classes.get(&claim.node_class).ok_or_else(|| {
            CloudError::InvalidConfig(format!(
                "NodeClaim {} names EC2NodeClass {}, which the policy does not define",
                claim.name, claim.node_class
            ))
        })
    }

    fn instance(&self, i: &aws_sdk_ec2::types::Instance) -> Instance {
        let tags: BTreeMap<String, String> = i
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect();
        let instance_type = i.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default();
        let zone = i.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_string();
        let spot = i.instance_lifecycle().is_some_and(|l| l.as_str() == "spot");
        // Reserved only when capstan launched it into a reservation (and tagged it so): an
        // on-demand launch EC2 places into an open reservation stays on-demand, as its NodePool
        // may not allow reserved capacity.
        let reserved = tags.contains_key(RESERVATION_ID_LABEL);
        let capacity_type = match (spot, reserved) {
            (true, _) => CapacityType::Spot,
            (false, true) => CapacityType::Reserved,
            (false, false) => CapacityType::OnDemand,
        };
        let price = self
            .current()
            .get(&instance_type)
            .and_then(|t| t.offerings.iter().find(|o| o.zone == zone && o.capacity_type == capacity_type))
            .map_or(0.0, |o| o.price);
        let launched_at = i.launch_time().map_or(0, |t| t.secs().max(0) as u64);
        Instance {
            id: i.instance_id().unwrap_or_default().to_string(),
            claim: tags.get(tags::NODE_CLAIM).cloned().unwrap_or_default(),
            node_pool: tags.get(tags::NODE_POOL).cloned().unwrap_or_default(),
            instance_type,
            zone,
            capacity_type,
            price,
            state: state(i.state().and_then(|s| s.name())),
            launched_at: std::time::Duration::from_secs(launched_at),
            tags,
        }
    }

    /// Instances matching `filters`, not terminated.
    async fn describe(&self, filters: Vec<Filter>, ids: Vec<String>) -> Result<Vec<Instance>, CloudError> {
        let live = Filter::builder()
            .name("instance-state-name")
            .set_values(Some(vec![
                "pending".into(),
                "running".into(),
                "stopping".into(),
                "stopped".into(),
                "shutting-down".into(),
            ]))
            .build();
        let mut req = self.ec2.describe_instances().filters(live).set_instance_ids((!ids.is_empty()).then_some(ids));
        for f in filters {
            req = req.filters(f);
        }
        let pages: Vec<_> = req
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| classify("DescribeInstances", e))?;
        Ok(pages.iter().flat_map(|p| p.reservations()).flat_map(|r| r.instances()).map(|i| self.instance(i)).collect())
    }

    fn tags(&self, claim: &NodeClaim, class: &EC2NodeClass, launch: &Launch) -> Vec<Tag> {
        let mut all: BTreeMap<String, String> = class.spec.tags.clone();
        all.extend(claim.tags.clone());
        all.insert(template::INSTANCE_TEMPLATE_TAG.into(), launch.template.clone());
        all.insert(template::INSTANCE_PROFILE_TAG.into(), launch.profile.clone());
        all.insert(tags::cluster(&self.cluster), "owned".into());
        all.insert(tags::NODE_POOL.into(), claim.node_pool.clone());
        all.insert(tags::NODE_CLAIM.into(), claim.name.clone());
        all.insert(tags::POLICY_REVISION.into(), claim.policy_revision.clone());
        all.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
    }

    /// The instance profile (made for a `role`) and the launch template for this class and
    /// image, each created when missing; the template tagged as the cluster's as it is made.
    async fn launch_template(
        &self,
        class: &EC2NodeClass,
        image: &resolve::Image,
        security_groups: &[String],
    ) -> Result<Launch, CloudError> {
        let source = profile::source(&self.cluster, class)?;
        if let profile::Source::Role { profile: name, role } = &source {
            self.recent.profile(name, self.clock.now());
            let (iam, now) = (self.iam().await, self.clock.now());
            let ensured =
                profile::ensure(iam, &self.cluster, &class.metadata.name, name, role, &self.recent, now).await?;
            if ensured == profile::Ensured::Changed {
                self.recent.profile_changed(name, self.clock.now());
            }
        }
        let launch = Launch {
            template: template::name(&self.cluster, class, image, security_groups),
            profile: source.profile().to_string(),
        };
        self.recent.template(&launch.template, self.clock.now());
        let name = launch.template.as_str();
        if template::existing(&self.ec2, &self.cluster, name).await? {
            return Ok(launch);
        }
        let data = template::data(class, image, security_groups, &launch.profile);
        let created = self
            .ec2
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(data)
            .tag_specifications(template::tag_specification(&self.cluster, class))
            .send()
            .await;
        match created {
            Ok(_) => Ok(launch),
            // Made in between (by another replica, or another cluster of a look-alike name).
            Err(e) if error_code(&e).is_some_and(|c| c.ends_with("AlreadyExists")) => {
                template::existing(&self.ec2, &self.cluster, name).await?;
                Ok(launch)
            }
            Err(e) => Err(classify("CreateLaunchTemplate", e)),
        }
    }

    /// A launch refused while the profile capstan made is still settling into IAM: retried,
    /// never a configuration error (EC2 may not see a new profile for a few seconds).
    fn settling(&self, err: CloudError, launch: &Launch) -> CloudError {
        let made = self.recent.changed_at(&launch.profile);
        match err {
            CloudError::InsufficientCapacity { .. } | CloudError::Throttled(_) => err,
            other => match made.filter(|at| self.clock.now().saturating_sub(*at) < profile::SETTLE) {
                Some(_) => CloudError::Api(format!(
                    "{other}; instance profile {} was just made and IAM may not show it to EC2 yet: retried",
                    launch.profile
                )),
                None => other,
            },
        }
    }
}

impl AwsCloud {
    /// A failed launch as the caller gets it: as [`AwsCloud::settling`] makes it; a reserved
    /// one that is not settling as [`reserved::refused`] makes it (InsufficientCapacity for the
    /// reserved `offerings`, so the pods fall back to capacity that is not reserved).
    fn launch_failed(
        &self,
        err: CloudError,
        launch: &Launch,
        capacity: CapacityType,
        offerings: &[OfferingKey],
    ) -> CloudError {
        let settled = self.settling(err.clone(), launch);
        if capacity != CapacityType::Reserved || settled != err {
            return settled;
        }
        reserved::refused(err, offerings)
    }
}

/// What an instance is launched with, as its tags name it.
struct Launch {
    /// The launch template's name.
    template: String,
    /// The instance profile's name.
    profile: String,
}

impl CloudProvider for AwsCloud {
    async fn catalog(&self) -> Result<Catalog, CloudError> {
        self.read_catalog().await
    }

    #[tracing::instrument(skip_all, fields(cluster = %self.cluster, claim = %claim.name, node_pool = %claim.node_pool))]
    async fn create(&self, claim: &NodeClaim, avoid: &Avoid) -> Result<Created, CloudError> {
        // This cluster's instance for this claim: claim names are only unique within a cluster.
        let mine = Filter::builder().name(format!("tag:{}", tags::NODE_CLAIM)).values(&claim.name).build();
        let owned = Filter::builder().name(format!("tag:{}", tags::cluster(&self.cluster))).values("owned").build();
        if let Some(existing) = self.describe(vec![mine, owned], Vec::new()).await?.into_iter().next() {
            return Ok(Created::at_once(existing));
        }
        let class = self.class(claim)?;
        let subnets = resolve::subnets(&self.ec2, class).await?;
        let groups = resolve::security_groups(&self.ec2, class).await?;
        let images = resolve::images(&self.ec2, class, &self.ssm).await?;
        let arches: HashMap<String, String> = {
            let cat = self.current();
            let mut out = HashMap::new();
            for o in &claim.options {
                let t = cat.get(&o.instance_type).ok_or_else(|| {
                    CloudError::InvalidConfig(format!(
                        "NodeClaim {} (EC2NodeClass {}): instance type {} is not in the catalog; check the NodePool requirements and the region",
                        claim.name, class.metadata.name, o.instance_type
                    ))
                })?;
                out.insert(t.name.clone(), t.arch.clone());
            }
            out
        };
        let arch = |t: &str| arches.get(t).cloned();
        let first_arch = claim.options.first().and_then(|o| arch(&o.instance_type));
        let image = images.iter().find(|i| Some(&i.arch) == first_arch.as_ref()).unwrap_or(&images[0]);
        let mut launch = self.launch_template(class, image, &groups).await?;
        let options: Vec<_> = claim.options.iter().filter(|o| !avoid.contains(&OfferingKey::of(o))).collect();
        if options.is_empty() && !claim.options.is_empty() {
            let offerings = claim.options.iter().map(OfferingKey::of).collect();
            return Err(CloudError::InsufficientCapacity { offerings });
        }
        let capacity = options.first().map_or(CapacityType::OnDemand, |o| o.capacity_type);
        // Reserved: into one of the class's reservations, through a launch template of its own.
        // A reserved launch refused for any reason makes its reserved options InsufficientCapacity.
        let reserved_keys: Vec<OfferingKey> =
            options.iter().filter(|o| o.capacity_type == CapacityType::Reserved).map(|o| OfferingKey::of(o)).collect();
        let reservation = match capacity {
            CapacityType::Reserved => {
                let on = reserved::Launcher {
                    ec2: &self.ec2,
                    cluster: &self.cluster,
                    recent: &self.recent,
                    now: self.clock.now(),
                };
                let (r, template) =
                    reserved::launch(&on, class, image, &groups, &launch.profile, &launch.template, &options)
                        .await
                        .map_err(|e| self.launch_failed(e, &launch, capacity, &reserved_keys))?;
                launch.template = template;
                Some(r)
            }
            _ => None,
        };
        let into = |o: &LaunchOption| {
            reservation.as_ref().is_none_or(|r| r.instance_type == o.instance_type && r.zone == o.zone)
        };
        let mut tried: Vec<OfferingKey> = Vec::new();
        let mut overrides = Vec::new();
        for o in options
            .iter()
            .filter(|o| o.capacity_type == capacity && arch(&o.instance_type) == Some(image.arch.clone()) && into(o))
        {
            for s in subnets.iter().filter(|s| s.zone == o.zone) {
                if overrides.len() < crate::scheduling::plan::MAX_OPTIONS {
                    let key = OfferingKey::of(o);
                    if !tried.contains(&key) {
                        tried.push(key);
                    }
                    overrides.push(
                        FleetLaunchTemplateOverridesRequest::builder()
                            .instance_type(o.instance_type.as_str().into())
                            .subnet_id(&s.id)
                            .build(),
                    );
                }
            }
        }
        if overrides.is_empty() {
            let err = CloudError::InvalidConfig(format!(
                "NodeClaim {}: no option's zone has a subnet of EC2NodeClass {}",
                claim.name, class.metadata.name
            ));
            let into_reservation: Vec<OfferingKey> =
                options.iter().filter(|o| o.capacity_type == capacity && into(o)).map(|o| OfferingKey::of(o)).collect();
            return Err(self.launch_failed(err, &launch, capacity, &into_reservation));
        }
        let config = FleetLaunchTemplateConfigRequest::builder()
            .launch_template_specification(
                FleetLaunchTemplateSpecificationRequest::builder()
                    .launch_template_name(&launch.template)
                    .version("$Latest")
                    .build(),
            )
            .set_overrides(Some(overrides))
            .build();
        let target = TargetCapacitySpecificationRequest::builder()
            .total_target_capacity(1)
            .default_target_capacity_type(reserved::target_capacity_type(capacity, reservation.as_ref()))
            .build();
        // Never resent by the SDK: a lost answer is resolved by the tag lookup above on the
        // caller's retry, which holds even where the ClientToken is not honoured.
        let no_retry =
            aws_sdk_ec2::config::Builder::default().retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled());
        let out = self
            .ec2
            .create_fleet()
            .r#type(FleetType::Instant)
            .client_token(&claim.name)
            .launch_template_configs(config)
            .target_capacity_specification(target)
            .on_demand_options(
                OnDemandOptionsRequest::builder()
                    .allocation_strategy(FleetOnDemandAllocationStrategy::LowestPrice)
                    .build(),
            )
            .spot_options(
                SpotOptionsRequest::builder()
                    .allocation_strategy(SpotAllocationStrategy::PriceCapacityOptimized)
                    .build(),
            )
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some([self.tags(claim, class, &launch), reserved::tags(reservation.as_ref())].concat()))
                    .build(),
            )
            .customize()
            .config_override(no_retry)
            .send()
            .await
            .map_err(|e| match classify("CreateFleet", e) {
                // The whole request refused for capacity: every offering it named.
                CloudError::InsufficientCapacity { .. } => {
                    CloudError::InsufficientCapacity { offerings: tried.clone() }
                }
                other => self.launch_failed(other, &launch, capacity, &tried),
            })?;
        // Per-override errors with a no-capacity code: the offerings EC2 refused.
        let mut refused: Vec<OfferingKey> = Vec::new();
        for e in out.errors().iter().filter(|e| e.error_code().is_some_and(no_capacity)) {
            let Some(o) = e.launch_template_and_overrides().and_then(|l| l.overrides()) else { continue };
            let zone = o.availability_zone().map(str::to_string).or_else(|| {
                let subnet = o.subnet_id()?;
                subnets.iter().find(|s| s.id == subnet).map(|s| s.zone.clone())
            });
            let lifecycle = match e.lifecycle().map(|l| l.as_str()) {
                Some("spot") => CapacityType::Spot,
                Some("on-demand") if capacity != CapacityType::Reserved => CapacityType::OnDemand,
                _ => capacity,
            };
            if let (Some(t), Some(z)) = (o.instance_type(), zone) {
                let key = OfferingKey::new(t.as_str(), &z, lifecycle);
                if !refused.contains(&key) {
                    refused.push(key);
                }
            }
        }
        let id = out.instances().iter().flat_map(|i| i.instance_ids()).next().cloned();
        let Some(id) = id else {
            if !refused.is_empty() {
                return Err(CloudError::InsufficientCapacity { offerings: refused });
            }
            // No instance and no capacity error: the first error EC2 gave, typed by its code.
            return Err(match out.errors().first() {
                Some(e) => match from_code(
                    "CreateFleet",
                    e.error_code().unwrap_or_default(),
                    e.error_message().unwrap_or_default(),
                ) {
                    CloudError::InsufficientCapacity { .. } => CloudError::InsufficientCapacity { offerings: tried },
                    other => self.launch_failed(other, &launch, capacity, &tried),
                },
                None => CloudError::Api(format!("CreateFleet launched nothing for NodeClaim {}", claim.name)),
            });
        };
        Ok(Created { instance: self.get(&id).await?, refused })
    }

    #[tracing::instrument(skip(self), fields(cluster = %self.cluster))]
    async fn delete(&self, id: &str) -> Result<(), CloudError> {
        match self.ec2.terminate_instances().instance_ids(id).send().await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e).is_some_and(|c| c.starts_with("InvalidInstanceID")) => Ok(()),
            Err(e) => match classify("TerminateInstances", e) {
                CloudError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    #[tracing::instrument(skip(self), fields(cluster = %self.cluster))]
    async fn get(&self, id: &str) -> Result<Instance, CloudError> {
        let found = match self.ec2.describe_instances().instance_ids(id).send().await {
            Ok(out) => out.reservations().iter().flat_map(|r| r.instances()).map(|i| self.instance(i)).next(),
            Err(e) if error_code(&e).is_some_and(|c| c.starts_with("InvalidInstanceID")) => None,
            Err(e) => match classify("DescribeInstances", e) {
                CloudError::NotFound(_) => None,
                other => return Err(other),
            },
        };
        found.ok_or_else(|| CloudError::NotFound(format!("instance {id}")))
    }

    #[tracing::instrument(skip(self), fields(cluster = %self.cluster))]
    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        // kOps tags every instance of the cluster `owned` (control plane, its instance groups,
        // bastions): only those carrying a NodeClaim are capstan's.
        let owned = Filter::builder().name(format!("tag:{}", tags::cluster(&self.cluster))).values("owned").build();
        let capstan = Filter::builder().name("tag-key").values(tags::NODE_CLAIM).build();
        self.describe(vec![owned, capstan], Vec::new()).await
    }

    fn cluster_tag(&self) -> Option<String> {
        Some(tags::cluster(&self.cluster))
    }

    async fn notices(&self) -> Result<Vec<crate::cloud::interruption::Notice>, CloudError> {
        self.interruptions.as_ref().map_or(Ok(Vec::new()), |q| q.notices())
    }

    async fn acknowledge(&self, receipt: &str) -> Result<(), CloudError> {
        match &self.interruptions {
            Some(q) => q.acknowledge(receipt).await,
            None => Ok(()),
        }
    }

    /// Deletes this cluster's unused capstan launch templates and instance profiles (see
    /// [`super::tidy`]).
    #[tracing::instrument(skip(self), fields(cluster = %self.cluster))]
    async fn tidy(&self) -> Result<Tidied, CloudError> {
        // Without an IAM client given, IAM is asked only while some class wants a profile.
        let wanted = profile::wanted(&self.cluster, self.classes.values());
        let iam = if self.iam.initialized() || !wanted.is_empty() { Some(self.iam().await) } else { None };
        let scope = super::tidy::Scope {
            ec2: &self.ec2,
            iam,
            cluster: &self.cluster,
            wanted: &wanted,
            recent: &self.recent,
            now: self.clock.now(),
        };
        super::tidy::run(&scope).await
    }
}
