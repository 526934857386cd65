//! Provisioning latency as `capstan run` has it with the simulated backends: the same driver
//! (wall clock, one pass per tick) and the example policy. Each round starts a fresh world,
//! scales `inflate` from 0 to 16 and times the wall-clock interval from the scale call (the
//! pods turning pending) to the first CreateFleet request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::drive::{Pace, TICK, tick};
use crate::capacity::CapacityLoop;
use crate::cloud::CloudError;
use crate::cloud::provider::{Avoid, CloudProvider, Created, Instance, NodeClaim};
use crate::cloud::sim::SimCloud;
use crate::cluster::workload;
use crate::rules::Rules;
use crate::scheduling::catalog::Catalog;
use crate::sim::World;

/// Remembers when the first `create` arrived.
#[derive(Clone)]
struct Stopwatch {
    inner: SimCloud,
    first_create: Arc<Mutex<Option<Instant>>>,
}

impl CloudProvider for Stopwatch {
    async fn catalog(&self) -> Result<Catalog, CloudError> {
        self.inner.catalog().await
    }
    async fn create(&self, claim: &NodeClaim, avoid: &Avoid) -> Result<Created, CloudError> {
        self.first_create.lock().expect("stopwatch").get_or_insert_with(Instant::now);
        self.inner.create(claim, avoid).await
    }
    async fn delete(&self, id: &str) -> Result<(), CloudError> {
        self.inner.delete(id).await
    }
    async fn get(&self, id: &str) -> Result<Instance, CloudError> {
        self.inner.get(id).await
    }
    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        self.inner.list().await
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProvisioningResult {
    pub rounds: usize,
    pub batch_idle_ms: f64,
    pub tick_ms: f64,
    /// Scale call → first CreateFleet request.
    pub median_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
    /// The same, less the batch idle time.
    pub median_over_idle_ms: f64,
    pub max_over_idle_ms: f64,
}

/// Runs `rounds` rounds under `rules` with the Deployment `name` of `workload_yaml`.
pub async fn run(
    rules: Arc<Rules>,
    workload_yaml: &str,
    name: &str,
    rounds: usize,
) -> Result<ProvisioningResult, String> {
    let workloads = workload::parse("workload", workload_yaml).map_err(|e| e.to_string())?;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let world = World::new("bench.example.com", crate::clock::Clock::now(&crate::clock::SystemClock));
        world.cluster.apply(workloads.clone());
        world.cluster.scale("default", name, 0).map_err(|e| e.to_string())?;
        let first_create = Arc::new(Mutex::new(None));
        let cloud = Stopwatch { inner: world.cloud.clone(), first_create: first_create.clone() };
        let mut lp = CapacityLoop::new(cloud, world.cluster.clone(), rules.clone());
        let pace = Pace::new(&world, 1.0);
        for _ in 0..5 {
            tokio::time::sleep(TICK).await;
            tick(&world, &mut lp, &pace).await;
        }
        world.cluster.scale("default", name, 16).map_err(|e| e.to_string())?;
        let started = Instant::now();
        while first_create.lock().expect("stopwatch").is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err("no launch within 30 s".into());
            }
            tokio::time::sleep(TICK).await;
            tick(&world, &mut lp, &pace).await;
        }
        let at = first_create.lock().expect("stopwatch").expect("set");
        samples.push(at.duration_since(started).as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let idle = rules.cluster.batch_idle.as_secs_f64() * 1000.0;
    let r1 = |x: f64| (x * 10.0).round() / 10.0;
    Ok(ProvisioningResult {
        rounds,
        batch_idle_ms: idle,
        tick_ms: TICK.as_secs_f64() * 1000.0,
        median_ms: r1(pick(0.5)),
        p90_ms: r1(pick(0.9)),
        max_ms: r1(pick(1.0)),
        median_over_idle_ms: r1(pick(0.5) - idle),
        max_over_idle_ms: r1(pick(1.0) - idle),
    })
}
