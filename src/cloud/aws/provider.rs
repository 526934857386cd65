//! `AwsCloud`: the CloudProvider contract on EC2.
//!
//! ```text
//! create(claim) ─ instance tagged with the claim? ─yes─► return it (a retry launches nothing)
//!      │ no
//!      ├─ resolve subnets, security groups, AMI (EC2NodeClass selector terms)
//!      ├─ ensure the launch template (named from a hash of its content)
//!      └─ CreateFleet instant, 1 instance, ≤ 60 overrides (type × subnet), ClientToken = claim
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, Filter, FleetLaunchTemplateConfigRequest, FleetLaunchTemplateOverridesRequest,
    FleetLaunchTemplateSpecificationRequest, FleetOnDemandAllocationStrategy, FleetType, OnDemandOptionsRequest,
    ResourceType, SpotAllocationStrategy, SpotOptionsRequest, Tag, TagSpecification,
    TargetCapacitySpecificationRequest,
};

use super::super::CloudError;
use super::super::provider::{CloudProvider, Instance, InstanceState, NodeClaim, tags};
use super::super::unavailable::Unavailable;
use super::{classify, resolve, template};
use crate::policy::nodeclass::EC2NodeClass;
use crate::scheduling::catalog::{CapacityType, Catalog};

/// EC2 behind the CloudProvider contract, for one cluster.
pub struct AwsCloud {
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    /// The kOps cluster name, tagged `kubernetes.io/cluster/<cluster>: owned`.
    pub cluster: String,
    /// EC2NodeClasses by name.
    pub classes: BTreeMap<String, EC2NodeClass>,
    /// Served by `catalog()`, refreshed from EC2 every `refresh_every` when `prices` is set.
    pub catalog: Mutex<Catalog>,
    /// On-demand prices (from the price file); `None` serves the given catalog as is.
    pub prices: Option<HashMap<String, f64>>,
    pub refresh_every: Duration,
    refreshed_at: Mutex<Option<Duration>>,
    /// Offerings that recently ran out of capacity.
    pub unavailable: Mutex<Unavailable>,
    /// Time since the epoch; the wall clock unless a test sets another.
    pub clock: Arc<dyn Fn() -> Duration + Send + Sync>,
}

/// The wall clock as time since the epoch.
pub fn wall_clock() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Error codes that mean an offering has no capacity right now.
const NO_CAPACITY: &[&str] = &[
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "UnfulfillableCapacity",
    "MaxSpotInstanceCountExceeded",
    "SpotMaxPriceTooLow",
];

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
            refresh_every: Duration::from_secs(3600),
            refreshed_at: Mutex::default(),
            unavailable: Mutex::default(),
            clock: Arc::new(wall_clock),
        }
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-reads the catalog from EC2 when it is older than `refresh_every`. A failed refresh
    /// keeps serving the last catalog (and is logged); with none yet, it is an error.
    async fn refresh(&self) -> Result<(), CloudError> {
        let Some(prices) = &self.prices else { return Ok(()) };
        let now = (self.clock)();
        let due =
            self.refreshed_at.lock().unwrap_or_else(|p| p.into_inner()).is_none_or(|at| now >= at + self.refresh_every);
        if !due {
            return Ok(());
        }
        match super::catalog::fetch(&self.ec2, prices).await {
            Ok((fresh, report)) => {
                tracing::info!(types = report.exported, unpriced = report.unpriced.len(), "instance catalog refreshed");
                *self.current() = fresh;
                *self.refreshed_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
                Ok(())
            }
            Err(e) if !self.current().types.is_empty() => {
                tracing::warn!(error = %e, "instance catalog refresh failed; serving the previous one");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn avoided(&self) -> std::sync::MutexGuard<'_, Unavailable> {
        self.unavailable.lock().unwrap_or_else(|p| p.into_inner())
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
        let capacity_type = if spot { CapacityType::Spot } else { CapacityType::OnDemand };
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

    fn tags(&self, claim: &NodeClaim, class: &EC2NodeClass) -> Vec<Tag> {
        let mut all: BTreeMap<String, String> = class.spec.tags.clone();
        all.extend(claim.tags.clone());
        all.insert(tags::cluster(&self.cluster), "owned".into());
        all.insert(tags::NODE_POOL.into(), claim.node_pool.clone());
        all.insert(tags::NODE_CLAIM.into(), claim.name.clone());
        all.insert(tags::POLICY_REVISION.into(), claim.policy_revision.clone());
        all.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
    }

    /// The launch template for this class and image, created when missing.
    async fn launch_template(
        &self,
        class: &EC2NodeClass,
        image: &resolve::Image,
        security_groups: &[String],
    ) -> Result<String, CloudError> {
        let name = template::name(&self.cluster, class, image, security_groups);
        let existing = self.ec2.describe_launch_templates().launch_template_names(&name).send().await;
        if existing.is_ok_and(|o| o.launch_templates().iter().any(|t| t.launch_template_name() == Some(name.as_str())))
        {
            return Ok(name);
        }
        let data = template::data(class, image, security_groups)?;
        match self.ec2.create_launch_template().launch_template_name(&name).launch_template_data(data).send().await {
            Ok(_) => Ok(name),
            Err(e) => match classify("CreateLaunchTemplate", e) {
                CloudError::Api(m) if m.contains("AlreadyExists") => Ok(name),
                other => Err(other),
            },
        }
    }
}

impl CloudProvider for AwsCloud {
    async fn catalog(&self) -> Result<Catalog, CloudError> {
        self.refresh().await?;
        let mut c = self.current().clone();
        self.avoided().apply(&mut c, (self.clock)());
        Ok(c)
    }

    #[tracing::instrument(skip_all, fields(cluster = %self.cluster, claim = %claim.name, node_pool = %claim.node_pool))]
    async fn create(&self, claim: &NodeClaim) -> Result<Instance, CloudError> {
        let mine = Filter::builder().name(format!("tag:{}", tags::NODE_CLAIM)).values(&claim.name).build();
        if let Some(existing) = self.describe(vec![mine], Vec::new()).await?.into_iter().next() {
            return Ok(existing);
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
        let template = self.launch_template(class, image, &groups).await?;
        let now = (self.clock)();
        let options: Vec<_> = {
            let avoided = self.avoided();
            claim
                .options
                .iter()
                .filter(|o| !avoided.contains(&o.instance_type, &o.zone, o.capacity_type, now))
                .collect()
        };
        if options.is_empty() {
            let offerings = claim
                .options
                .iter()
                .map(|o| format!("{}/{}/{} (recently out of capacity)", o.instance_type, o.zone, o.capacity_type))
                .collect();
            return Err(CloudError::InsufficientCapacity { offerings });
        }
        let capacity = options[0].capacity_type;
        let mut overrides = Vec::new();
        for o in
            options.iter().filter(|o| o.capacity_type == capacity && arch(&o.instance_type) == Some(image.arch.clone()))
        {
            for s in subnets.iter().filter(|s| s.zone == o.zone) {
                if overrides.len() < crate::scheduling::plan::MAX_OPTIONS {
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
            return Err(CloudError::InvalidConfig(format!(
                "NodeClaim {}: no option's zone has a subnet of EC2NodeClass {}",
                claim.name, class.metadata.name
            )));
        }
        let config = FleetLaunchTemplateConfigRequest::builder()
            .launch_template_specification(
                FleetLaunchTemplateSpecificationRequest::builder()
                    .launch_template_name(&template)
                    .version("$Latest")
                    .build(),
            )
            .set_overrides(Some(overrides))
            .build();
        let target = TargetCapacitySpecificationRequest::builder()
            .total_target_capacity(1)
            .default_target_capacity_type(if capacity == CapacityType::Spot {
                DefaultTargetCapacityType::Spot
            } else {
                DefaultTargetCapacityType::OnDemand
            })
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
                    .set_tags(Some(self.tags(claim, class)))
                    .build(),
            )
            .customize()
            .config_override(no_retry)
            .send()
            .await
            .map_err(|e| classify("CreateFleet", e))?;
        // Per-override errors: avoid those offerings for a while.
        for e in out.errors() {
            if !NO_CAPACITY.contains(&e.error_code().unwrap_or_default()) {
                continue;
            }
            let Some(o) = e.launch_template_and_overrides().and_then(|l| l.overrides()) else { continue };
            let zone = o.availability_zone().map(str::to_string).or_else(|| {
                let subnet = o.subnet_id()?;
                subnets.iter().find(|s| s.id == subnet).map(|s| s.zone.clone())
            });
            if let (Some(t), Some(z)) = (o.instance_type(), zone) {
                self.avoided().mark(t.as_str(), &z, capacity, now);
            }
        }
        let id = out.instances().iter().flat_map(|i| i.instance_ids()).next().cloned();
        let Some(id) = id else {
            let failed: Vec<String> = out
                .errors()
                .iter()
                .map(|e| format!("{}: {}", e.error_code().unwrap_or_default(), e.error_message().unwrap_or_default()))
                .collect();
            return Err(CloudError::InsufficientCapacity { offerings: failed });
        };
        self.get(&id).await
    }

    #[tracing::instrument(skip(self), fields(cluster = %self.cluster))]
    async fn delete(&self, id: &str) -> Result<(), CloudError> {
        match self.ec2.terminate_instances().instance_ids(id).send().await {
            Ok(_) => Ok(()),
            Err(e) => match classify("TerminateInstances", e) {
                CloudError::NotFound(_) => Ok(()),
                CloudError::Api(m) if m.contains("InvalidInstanceID") => Ok(()),
                other => Err(other),
            },
        }
    }

    #[tracing::instrument(skip(self), fields(cluster = %self.cluster))]
    async fn get(&self, id: &str) -> Result<Instance, CloudError> {
        let found = match self.ec2.describe_instances().instance_ids(id).send().await {
            Ok(out) => out.reservations().iter().flat_map(|r| r.instances()).map(|i| self.instance(i)).next(),
            Err(e) => match classify("DescribeInstances", e) {
                CloudError::Api(m) if m.contains("InvalidInstanceID") => None,
                CloudError::NotFound(_) => None,
                other => return Err(other),
            },
        };
        found.ok_or_else(|| CloudError::NotFound(format!("instance {id}")))
    }

    #[tracing::instrument(skip(self), fields(cluster = %self.cluster))]
    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        let owned = Filter::builder().name(format!("tag:{}", tags::cluster(&self.cluster))).values("owned").build();
        self.describe(vec![owned], Vec::new()).await
    }
}
