//! The simulated world: EC2 and a Kubernetes cluster on one virtual clock, driven in fixed
//! steps together with a capacity loop. Used by `capstan demo`, `capstan run` with the sim
//! backends, and the component tests.

pub mod demo;
pub mod fleet;

use std::sync::Arc;
use std::time::Duration;

use crate::capacity::CapacityLoop;
use crate::capacity::report::LoopEvent;
use crate::cloud::provider::CloudProvider;
use crate::cloud::sim::{SimCloud, VirtualClock};
use crate::cluster::sim::SimCluster;
use crate::kops::object;
use crate::kops::store::{StateStore, StoreError};
use crate::policy::EffectivePolicy;
use crate::rules::Rules;
use crate::scheduling::builtin;
use crate::scheduling::catalog::Catalog;

/// Seeds a state store as `kops create cluster` and `kops update cluster` would have: the
/// Cluster spec (`spec`, the repository's copy) and a nodeup script per InstanceGroup. Objects
/// already there are left alone.
pub async fn seed_state_store<S: StateStore>(
    store: &S,
    spec: &[u8],
    policy: &EffectivePolicy,
) -> Result<(), StoreError> {
    let created = |r: Result<String, StoreError>| match r {
        Ok(_) | Err(StoreError::PreconditionFailed(_)) => Ok(()),
        Err(e) => Err(e),
    };
    created(store.put_if_absent(&object::config_key(&policy.kops_name), spec).await)?;
    for ig in &policy.instance_groups {
        let name = &ig.value.metadata.name;
        let script = format!("#!/bin/bash\n# nodeup bootstrap for {name} (written by kops update cluster)\n");
        created(store.put_if_absent(&object::nodeup_script_key(&policy.kops_name, name), script.as_bytes()).await)?;
    }
    Ok(())
}

/// The step the world and the loop advance by.
pub const STEP: Duration = Duration::from_secs(1);

/// A capacity loop over the simulated world.
pub type SimLoop = CapacityLoop<SimCloud, SimCluster>;

/// Simulated EC2 and Kubernetes sharing a clock.
#[derive(Debug, Clone)]
pub struct World {
    pub clock: VirtualClock,
    pub cloud: SimCloud,
    pub cluster: SimCluster,
}

impl World {
    /// A world for `cluster` whose clock starts at `start` (time since the Unix epoch).
    pub fn new(cluster: &str, start: Duration) -> World {
        World::with_catalog(cluster, start, builtin::catalog())
    }

    pub fn with_catalog(cluster: &str, start: Duration, catalog: Catalog) -> World {
        let clock = VirtualClock::default();
        clock.set(start);
        let cloud = SimCloud::with_catalog(cluster, clock.clone(), catalog.clone());
        let cluster = SimCluster::new(cloud.clone(), catalog);
        World { clock, cloud, cluster }
    }

    pub fn now(&self) -> Duration {
        self.clock.now()
    }

    /// A capacity loop acting on this world.
    pub fn capacity_loop(&self, rules: Arc<Rules>) -> SimLoop {
        CapacityLoop::new(self.cloud.clone(), self.cluster.clone(), rules)
    }

    /// One step: the cluster converges, then the loop runs a pass.
    pub async fn step<C: CloudProvider>(&self, lp: &mut CapacityLoop<C, SimCluster>) -> Vec<LoopEvent> {
        self.cluster.tick();
        if let Err(e) = lp.step(self.now()).await {
            tracing::warn!(error = %e, "capacity loop pass failed");
        }
        self.cluster.tick();
        lp.take_events()
    }

    /// Steps until `done` holds (true) or `limit` has passed (false); events go to `sink`.
    pub async fn run_until(
        &self,
        lp: &mut SimLoop,
        limit: Duration,
        sink: &mut Vec<LoopEvent>,
        mut done: impl FnMut(&World) -> bool,
    ) -> bool {
        let end = self.now() + limit;
        loop {
            sink.extend(self.step(lp).await);
            if done(self) {
                return true;
            }
            if self.now() >= end {
                return false;
            }
            self.clock.advance(STEP);
        }
    }

    /// Steps for `span`.
    pub async fn run_for(&self, lp: &mut SimLoop, span: Duration, sink: &mut Vec<LoopEvent>) {
        self.run_until(lp, span, sink, |_| false).await;
    }

    /// Registered nodes and live instances.
    pub fn nodes(&self) -> usize {
        self.cloud.instances().iter().filter(|i| i.state != crate::cloud::provider::InstanceState::Terminated).count()
    }
}
