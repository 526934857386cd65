//! The daemon (`capstan run`): wiring and task supervision. The tasks share one cancellation
//! token and one status:
//!
//! ```text
//! Follower (poll | webhook | file watch) ──policy──► state-store reconcile (kOps IGs)
//!                                          └──────► capacity loop (cluster + cloud backends)
//! HTTP: /metrics /healthz /readyz /status /hooks/git (/sim/scale)
//! ```
//!
//! With `cluster: kube`, replicas elect a leader with a Lease; only the leader reconciles the
//! state store and runs the capacity loop.
//!
//! Before any task starts, the config is checked whole ([`checks`] at load, [`preflight`] against
//! its files and the repository).
//!
//! SIGTERM or Ctrl-C cancels the token: every task (follower, state store, rollout, capacity,
//! elector, HTTP server) finishes the pass it is in (decisions are flushed to the state store)
//! and returns, and the process exits 0. A task that ends before — it panicked or returned —
//! fails the daemon ([`supervise`]): the others are stopped the same way and the process exits 1.

pub mod board;
pub mod checks;
pub mod config;
pub mod drive;
pub mod git;
pub mod hook;
pub mod host;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod preflight;
pub mod prices;
pub mod real;
pub mod rollout;
pub mod scale;
pub mod shared;
pub mod status;
pub mod supervise;
pub use crate::capacity::wake;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::capacity::report::LoopMetrics;
use crate::clock::{Clock, SystemClock};
use crate::cluster::kube::KubeCluster;
use crate::cluster::kube::lease::Elector;
use crate::fleet::metrics::RolloutMetrics;
use crate::fleet::revisions::GitRevisions;
use crate::gitops::metrics::GitMetrics;
use crate::gitops::{Follower, GitSource};
use crate::kops::any::Store;
use crate::kops::reconcile::{Target, reconcile_once};
use crate::kops::s3::S3Options;
use crate::sim::World;

use config::{CloudBackend, ClusterBackend, DaemonConfig};
use preflight::Prepared;
use shared::Shared;
use supervise::{Failure, Supervisor};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A backend could not be started (the Kubernetes API did not answer).
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    /// A task ended while the daemon ran; the others were stopped.
    #[error(transparent)]
    Task(#[from] supervise::TaskFailed),
}

/// Resolves a shutdown when SIGTERM or Ctrl-C arrives.
async fn signalled() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The backends a config names, started.
enum Backends {
    Sim(World),
    Real(Box<KubeCluster>, Elector),
}

/// The backends the config names (a pair [`checks`] accepted), with `workloads` applied to the
/// simulated cluster.
async fn backends(
    cfg: &DaemonConfig,
    workloads: Vec<crate::cluster::workload::Workload>,
) -> Result<Backends, AppError> {
    match (cfg.backends.cloud, cfg.backends.cluster) {
        (CloudBackend::Sim, ClusterBackend::Sim) => {
            let world = World::new(&cfg.cluster, SystemClock.now());
            world.cluster.apply(workloads);
            Ok(Backends::Sim(world))
        }
        (CloudBackend::Aws, ClusterBackend::Kube) => {
            let client = real::client(cfg).await.map_err(AppError::Config)?;
            let identity = cfg.identity();
            let cluster = KubeCluster::start(client.clone(), &identity, Arc::new(SystemClock))
                .await
                .map_err(|e| AppError::Config(format!("Kubernetes API: {e}")))?;
            let (namespace, name) = cfg.lease();
            let elector = Elector::new(client, &namespace, &name, &identity, Arc::new(SystemClock));
            Ok(Backends::Real(Box::new(cluster), elector))
        }
        (cloud, cluster) => Err(AppError::Config(format!(
            "backends cloud: {cloud:?} with cluster: {cluster:?} is not a combination capstan runs; use {{cloud: aws, cluster: kube}} or {{cloud: sim, cluster: sim}}"
        ))),
    }
}

/// Runs the daemon until a signal, with what [`preflight::preflight`] read; the listener is
/// passed in so tests can bind port 0.
pub async fn run(cfg: DaemonConfig, prepared: Prepared, listener: TcpListener) -> Result<(), AppError> {
    run_until(cfg, prepared, listener, signalled()).await
}

/// Runs the daemon until `shutdown` resolves or a task fails.
pub async fn run_until(
    cfg: DaemonConfig,
    prepared: Prepared,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AppError> {
    let mut registry = Registry::default();
    let source = GitSource::new(prepared.source, None);
    let revisions = GitRevisions::new(source.clone(), &cfg.cluster);
    let follower = Arc::new(Follower::new(source, &cfg.cluster).with_metrics(GitMetrics::register(&mut registry)));
    let metrics = LoopMetrics::register(&mut registry);
    let cloud_metrics = crate::cloud::metered::CloudMetrics::register(&mut registry);
    let rollout_metrics = RolloutMetrics::register(&mut registry).for_cluster(&cfg.cluster);
    let stop = CancellationToken::new();
    let http_stop = CancellationToken::new();
    let failure = Failure::default();
    let mut tasks = Supervisor::new(failure.clone(), stop.clone(), http_stop.clone());
    let (lead_tx, lead_rx) = watch::channel(false);
    self::metrics::register(&mut registry, lead_rx.clone());
    let (in_force_tx, in_force_rx) = watch::channel(None);
    let backends = backends(&cfg, prepared.workloads).await?;
    let (sim, clock): (_, Arc<dyn crate::clock::Clock>) = match &backends {
        Backends::Sim(w) => (Some(w.cluster.clone()), Arc::new(w.clock.clone())),
        Backends::Real(..) => (None, Arc::new(crate::clock::SystemClock)),
    };
    let shared = Shared::new(&cfg.cluster, follower.subscribe(), lead_rx.clone(), registry, sim, failure);
    let shared = Arc::new(shared.with_clock(clock.clone()));
    let mut router = http::router(shared.clone(), &cfg.allowed_hosts);
    if let Some(secret) = prepared.webhook_secret {
        router = router.merge(hook::router(secret, follower.trigger.clone()));
    }
    let watcher = std::path::Path::new(&cfg.repository.url)
        .is_dir()
        .then(|| {
            crate::gitops::watch::watch_refs(std::path::Path::new(&cfg.repository.url), follower.trigger.clone()).ok()
        })
        .flatten();
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), cluster = %cfg.cluster, "capstan listening");

    let base_ready = Arc::new(Notify::new());
    {
        let (f, stop, poll, ready) = (follower.clone(), stop.clone(), cfg.poll(), base_ready.clone());
        // The follower waits for its fast-forward base, read back from the state store.
        tasks.spawn("git follower", async move {
            tokio::select! {
                _ = ready.notified() => {}
                _ = stop.cancelled() => return,
            }
            // `Follower::run` stops on a `Notify`: notified when the token is cancelled, it
            // returns after the sync in progress.
            let notify = Arc::new(Notify::new());
            let relay = {
                let notify = notify.clone();
                async move {
                    stop.cancelled().await;
                    notify.notify_one();
                }
            };
            tokio::join!(f.run(poll, notify), relay);
        });
    }
    tasks.spawn(
        "state store",
        state_store_task(cfg.clone(), in_force_rx.clone(), shared.clone(), lead_rx.clone(), stop.clone()),
    );
    macro_rules! rollout {
        ($cluster:expr, $clock:expr) => {
            rollout::Task {
                cfg: cfg.clone(),
                revisions: revisions.clone(),
                policy: follower.policy(),
                in_force: in_force_tx.clone(),
                shared: shared.clone(),
                metrics: rollout_metrics.clone(),
                clock: $clock,
                cluster: $cluster,
                base_ready: base_ready.clone(),
                leading: lead_rx.clone(),
                stop: stop.clone(),
            }
        };
    }
    let mut sim_leader = None;
    match backends {
        Backends::Sim(world) => {
            // Always the leader: the sender stays alive so that nobody sees it closed.
            lead_tx.send_replace(true);
            sim_leader = Some(lead_tx);
            let fleet = rollout!(world.cluster.clone(), Arc::new(world.clock.clone())).run();
            tasks.spawn("status board", board::run(world.cluster.clone(), clock, shared.clone(), stop.clone()));
            let task = drive::capacity(
                cfg.clone(),
                world,
                in_force_rx.clone(),
                shared.clone(),
                metrics,
                cloud_metrics,
                stop.clone(),
            );
            tasks.spawn("capacity", task);
            tasks.spawn("rollout", fleet);
        }
        Backends::Real(cluster, elector) => {
            let fleet = rollout!((*cluster).clone(), Arc::new(crate::clock::SystemClock)).run();
            tasks.spawn("status board", board::run((*cluster).clone(), clock, shared.clone(), stop.clone()));
            let task = real::capacity(
                cfg.clone(),
                *cluster,
                in_force_rx.clone(),
                shared.clone(),
                metrics,
                cloud_metrics,
                lead_rx.clone(),
                stop.clone(),
            );
            let stopped = stopped_flag(&stop);
            tasks.spawn("capacity", task);
            tasks.spawn("rollout", fleet);
            tasks.spawn("leader election", async move { elector.run(lead_tx, stopped).await });
        }
    }
    // The HTTP server stops last, so that a failure shows in /healthz while the others finish.
    let server = axum::serve(listener, router).with_graceful_shutdown(http_stop.cancelled_owned());
    tasks.spawn_last("http", async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });

    let outcome = tasks.run_until(shutdown).await;
    drop(sim_leader);
    drop(watcher);
    match outcome {
        Ok(()) => {
            tracing::info!("stopped");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The state store for the policy's cluster: the config's, else its Fleet entry's.
pub async fn open_store(cfg: &DaemonConfig, policy: &crate::policy::EffectivePolicy) -> Result<Store, String> {
    let url =
        cfg.state_store.clone().or_else(|| policy.fleet_entry.as_ref().map(|f| f.state_store.clone())).ok_or_else(
            || format!("no state store: set stateStore in the config or in fleet.yaml for {}", cfg.cluster),
        )?;
    let region = policy.fleet_entry.as_ref().map(|f| f.region.clone());
    Store::open(&url, &S3Options { region, ..cfg.s3_options() }).await.map_err(|e| e.to_string())
}

/// Reconciles the kOps InstanceGroups on every new revision and every interval.
async fn state_store_task(
    cfg: DaemonConfig,
    mut policy: rollout::InForce,
    shared: Arc<Shared>,
    mut leading: watch::Receiver<bool>,
    stop: CancellationToken,
) {
    let cache = crate::kops::read::Cache::default();
    let mut store: Option<Store> = None;
    loop {
        let accepted = policy.borrow_and_update().clone().filter(|_| *leading.borrow_and_update());
        if let Some(acc) = accepted {
            let revision = acc.revision.to_string();
            if store.is_none() {
                match open_store(&cfg, &acc.policy).await {
                    Ok(s) => store = Some(s),
                    Err(e) => *shared.state_store.lock().expect("status") = json!({"error": e}),
                }
            }
            if let Some(s) = &store {
                if cfg.sim.seed_state_store {
                    let spec_path = format!("clusters/{}/cluster.yaml", acc.policy.cluster);
                    if let Some(spec) = acc.snapshot.get(&spec_path) {
                        let spec = spec.to_vec();
                        if let Err(e) = crate::sim::seed_state_store(s, &spec, &acc.policy).await {
                            tracing::warn!(error = %e, "seeding the state store");
                        }
                    }
                }
                let target = Target::from_policy(&acc.policy, &revision);
                let result = reconcile_once(s, &target, &cache, SystemClock.utc()).await;
                let doc = match result {
                    Ok(r) => {
                        json!({"revision": revision, "result": r.result, "applied": r.outcome.applied.len(), "at": SystemClock.utc().to_rfc3339()})
                    }
                    Err(e) => json!({"revision": revision, "result": "error", "error": e.to_string()}),
                };
                *shared.state_store.lock().expect("status") = doc;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = policy.changed() => {}
            _ = leading.changed() => {}
            _ = tokio::time::sleep(cfg.reconcile_interval()) => {}
        }
    }
}

/// Sleeps `d` unless `stop` is cancelled first; false when stopping.
pub async fn pause(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// The token as a flag that turns true when it is cancelled, for the lease elector
/// (`Elector::run` takes a `watch::Receiver<bool>`).
fn stopped_flag(stop: &CancellationToken) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let stop = stop.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        tx.send_replace(true);
    });
    rx
}
