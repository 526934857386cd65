//! Drives the capacity loop with the simulated backends on the wall clock (optionally sped
//! up): every tick the simulated cluster converges; the loop runs a pass when [`Wake`] wants
//! one (something due, a launch or drain in flight, the cluster changed, or the idle bound).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::config::DaemonConfig;
use super::shared::Shared;
use super::wake::Wake;
use crate::capacity::DecisionLog;
use crate::capacity::report::LoopMetrics;
use crate::capacity::{CapacityLoop, fingerprint};
use crate::cloud::metered::{CloudMetrics, Metered};
use crate::cloud::provider::CloudProvider;
use crate::cloud::sim::SimCloud;
use crate::cluster::ClusterApi;
use crate::cluster::sim::SimCluster;
use crate::rules::Rules;
use crate::sim::World;

/// Time between ticks: the simulated cluster converges every tick and a pass runs when one is
/// wanted, so a pending pod waits at most this beyond the batch window.
pub const TICK: Duration = Duration::from_millis(20);

/// Maps wall-clock time to the world's clock at `speed`, and remembers the last pass.
pub struct Pace {
    start: Instant,
    origin: Duration,
    speed: f64,
    /// When the loop last ran a pass and what the cluster looked like then.
    wake: Mutex<Wake>,
}

impl Pace {
    pub fn new(world: &World, speed: f64) -> Pace {
        Pace { start: Instant::now(), origin: world.now(), speed, wake: Mutex::default() }
    }

    /// The world's time now. `speed` is bounded where it is configured (`sim.speed`); any
    /// other value saturates instead of panicking.
    pub fn now(&self) -> Duration {
        let scaled = self.start.elapsed().as_secs_f64() * self.speed;
        self.origin.saturating_add(Duration::try_from_secs_f64(scaled).unwrap_or(Duration::MAX))
    }

    /// The next tick runs a pass (a new policy revision is in force).
    pub fn pass_next_tick(&self) {
        self.wake.lock().expect("wake").reset();
    }
}

/// One tick: the world's clock catches up with the wall clock, then [`converge_and_pass`].
/// True when a pass ran.
pub async fn tick<C: CloudProvider>(world: &World, lp: &mut CapacityLoop<C, SimCluster>, pace: &Pace) -> bool {
    world.clock.set(pace.now());
    converge_and_pass(world, lp, &pace.wake).await
}

/// The cluster converges at the world's time; then the loop takes a pass if `wake` wants one.
/// True when a pass ran.
pub async fn converge_and_pass<C: CloudProvider>(
    world: &World,
    lp: &mut CapacityLoop<C, SimCluster>,
    wake: &Mutex<Wake>,
) -> bool {
    let now = world.now();
    world.cluster.tick();
    // The simulated cluster's snapshot cannot fail; a failure would only mean one extra pass.
    let seen = world.cluster.snapshot().await.map(|s| fingerprint(&s)).unwrap_or_default();
    let why = wake.lock().expect("wake").check(lp.next_due(), lp.in_flight(), seen, now);
    let Some(why) = why else { return false };
    tracing::debug!(reason = why.label(), "capacity pass");
    world.step(lp).await;
    wake.lock().expect("wake").ran(seen, now);
    true
}

pub async fn capacity(
    cfg: DaemonConfig,
    world: World,
    mut policy: super::rollout::InForce,
    shared: Arc<Shared>,
    metrics: LoopMetrics,
    cloud_metrics: CloudMetrics,
    stop: CancellationToken,
) {
    let pace = Pace::new(&world, cfg.sim.speed.unwrap_or(1.0));
    let mut lp: Option<CapacityLoop<Metered<SimCloud>, SimCluster>> = None;
    let mut revision = String::new();
    while super::pause(TICK, &stop).await {
        if policy.has_changed().unwrap_or(false) || lp.is_none() {
            let accepted = policy.borrow_and_update().clone();
            if let Some(acc) = accepted.filter(|a| a.revision.to_string() != revision) {
                revision = acc.revision.to_string();
                let rules = Arc::new(Rules::from_policy(&acc.policy, acc.revision.clone()));
                tracing::info!(%revision, pools = rules.pools.len(), "capacity loop: policy in force");
                match lp.as_mut() {
                    Some(l) => {
                        l.set_rules(rules);
                        pace.pass_next_tick();
                    }
                    None => {
                        let cloud = Metered::new(world.cloud.clone(), cloud_metrics.clone());
                        let mut l = CapacityLoop::new(cloud, world.cluster.clone(), rules)
                            .with_cluster_name(&cfg.cluster)
                            .with_metrics(metrics.clone());
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
        if !tick(&world, l, &pace).await {
            continue;
        }
        let status = l.status().clone();
        shared.ready.store(status.last_error.is_none(), Ordering::Relaxed);
        *shared.capacity.lock().expect("status") = Some(status);
    }
}
