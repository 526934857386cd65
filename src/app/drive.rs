//! Drives the capacity loop with the simulated backends on the wall clock (optionally sped
//! up): every tick the simulated cluster converges and the loop runs a pass.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::config::DaemonConfig;
use super::http::Shared;
use crate::capacity::CapacityLoop;
use crate::capacity::DecisionLog;
use crate::capacity::report::LoopMetrics;
use crate::cloud::metered::{CloudMetrics, Metered};
use crate::cloud::provider::CloudProvider;
use crate::cloud::sim::SimCloud;
use crate::cluster::sim::SimCluster;
use crate::rules::Rules;
use crate::sim::World;

/// Time between passes. A pending pod waits at most this beyond the batch window.
pub const TICK: Duration = Duration::from_millis(20);

/// Maps wall-clock time to the world's clock at `speed`.
pub struct Pace {
    start: Instant,
    origin: Duration,
    speed: f64,
}

impl Pace {
    pub fn new(world: &World, speed: f64) -> Pace {
        Pace { start: Instant::now(), origin: world.now(), speed }
    }

    pub fn now(&self) -> Duration {
        self.origin + self.start.elapsed().mul_f64(self.speed)
    }
}

/// One tick: the world's clock catches up with the wall clock, then the cluster and the loop
/// each take a step.
pub async fn tick<C: CloudProvider>(world: &World, lp: &mut CapacityLoop<C, SimCluster>, pace: &Pace) {
    world.clock.set(pace.now());
    world.step(lp).await;
}

pub async fn capacity(
    cfg: DaemonConfig,
    world: World,
    mut policy: super::rollout::InForce,
    shared: Arc<Shared>,
    metrics: LoopMetrics,
    cloud_metrics: CloudMetrics,
    mut stop: watch::Receiver<bool>,
) {
    let pace = Pace::new(&world, cfg.sim.speed.unwrap_or(1.0));
    let mut lp: Option<CapacityLoop<Metered<SimCloud>, SimCluster>> = None;
    let mut revision = String::new();
    while super::pause(TICK, &mut stop).await {
        if policy.has_changed().unwrap_or(false) || lp.is_none() {
            let accepted = policy.borrow_and_update().clone();
            if let Some(acc) = accepted.filter(|a| a.revision.to_string() != revision) {
                revision = acc.revision.to_string();
                let rules = Arc::new(Rules::from_policy(&acc.policy, &revision));
                tracing::info!(%revision, pools = rules.pools.len(), "capacity loop: policy in force");
                match lp.as_mut() {
                    Some(l) => l.set_rules(rules),
                    None => {
                        let cloud = Metered::new(world.cloud.clone(), cloud_metrics.clone());
                        let mut l =
                            CapacityLoop::new(cloud, world.cluster.clone(), rules).with_metrics(metrics.clone());
                        match super::open_store(&cfg, &acc.policy).await {
                            Ok(store) => {
                                l = l.with_decision_log(DecisionLog { store, kops_name: acc.policy.kops_name.clone() })
                            }
                            Err(e) => tracing::warn!(error = %e, "decisions are not written to a state store"),
                        }
                        lp = Some(l);
                    }
                }
            }
        }
        // The clock moves even before a policy is in force: the rollout reads it.
        world.clock.set(pace.now());
        let Some(l) = lp.as_mut() else { continue };
        tick(&world, l, &pace).await;
        let status = l.status().clone();
        shared.ready.store(status.last_error.is_none(), Ordering::Relaxed);
        *shared.capacity.lock().expect("status") = Some(status);
    }
}
