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
//! SIGTERM or Ctrl-C cancels the token: every task (follower, state store, rollout, capacity,
//! elector, HTTP server) finishes the pass it is in (decisions are flushed to the state store)
//! and returns, and the process exits 0.

pub mod config;
pub mod drive;
pub mod git;
pub mod http;
pub mod real;
pub mod rollout;
pub mod wake;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
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
use http::Shared;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
}

fn git_source(cfg: &DaemonConfig) -> Result<GitSource, AppError> {
    let config = git::source_config(cfg).map_err(|e| AppError::Config(e.to_string()))?;
    Ok(GitSource::new(config, None))
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

async fn backends(cfg: &DaemonConfig) -> Result<Backends, AppError> {
    match (cfg.backends.cloud, cfg.backends.cluster) {
        (CloudBackend::Sim, ClusterBackend::Sim) => {
            let world = World::new(&cfg.cluster, SystemClock.now());
            for w in &cfg.sim.workloads {
                let text = std::fs::read_to_string(w)
                    .map_err(|e| AppError::Config(format!("cannot read workload {}: {e}", w.display())))?;
                let parsed = crate::cluster::workload::parse(&w.display().to_string(), &text)
                    .map_err(|e| AppError::Config(e.to_string()))?;
                world.cluster.apply(parsed);
            }
            Ok(Backends::Sim(world))
        }
        (CloudBackend::Aws, ClusterBackend::Kube) => {
            if cfg.aws.prices_file.is_none() {
                return Err(AppError::Config(
                    "cloud: aws needs aws.pricesFile (CSV of instance_type,usd_per_hour)".into(),
                ));
            }
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

/// Runs the daemon until a signal; the listener is passed in so tests can bind port 0.
pub async fn run(cfg: DaemonConfig, listener: TcpListener) -> Result<(), AppError> {
    let mut registry = Registry::default();
    let source = git_source(&cfg)?;
    let revisions = GitRevisions::new(source.clone(), &cfg.cluster);
    let follower = Arc::new(Follower::new(source, &cfg.cluster).with_metrics(GitMetrics::register(&mut registry)));
    let metrics = LoopMetrics::register(&mut registry);
    let cloud_metrics = crate::cloud::metered::CloudMetrics::register(&mut registry);
    let rollout_metrics = RolloutMetrics::register(&mut registry);
    let stop = CancellationToken::new();
    let (lead_tx, lead_rx) = watch::channel(false);
    let (in_force_tx, in_force_rx) = watch::channel(None);
    let backends = backends(&cfg).await?;
    let shared = Arc::new(Shared {
        cluster: cfg.cluster.clone(),
        git: follower.subscribe(),
        capacity: Mutex::new(None),
        state_store: Mutex::new(json!(null)),
        ready: AtomicBool::new(false),
        leading: lead_rx.clone(),
        registry,
        sim: match &backends {
            Backends::Sim(w) => Some(w.cluster.clone()),
            Backends::Real(..) => None,
        },
        rollout: Mutex::new(None),
    });
    let mut router = http::router(shared.clone());
    if let Some(path) = &cfg.repository.webhook_secret_file {
        let secret = std::fs::read(path)
            .map_err(|e| AppError::Config(format!("cannot read webhook secret {}: {e}", path.display())))?;
        router = router.merge(crate::gitops::webhook::router(secret.trim_ascii().to_vec(), follower.trigger.clone()));
    }
    let _watcher = std::path::Path::new(&cfg.repository.url)
        .is_dir()
        .then(|| {
            crate::gitops::watch::watch_refs(std::path::Path::new(&cfg.repository.url), follower.trigger.clone()).ok()
        })
        .flatten();
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), cluster = %cfg.cluster, "capstan listening");

    let base_ready = Arc::new(Notify::new());
    let git_task = {
        let (f, stop, poll, ready) = (follower.clone(), stop.clone(), cfg.poll(), base_ready.clone());
        // The follower waits for its fast-forward base, read back from the state store.
        tokio::spawn(async move {
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
        })
    };
    let store_task =
        tokio::spawn(state_store_task(cfg.clone(), in_force_rx.clone(), shared.clone(), lead_rx.clone(), stop.clone()));
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
    let (loop_task, rollout_task, elector_task) = match backends {
        Backends::Sim(world) => {
            // Always the leader: the sender stays alive so that nobody sees it closed.
            lead_tx.send_replace(true);
            sim_leader = Some(lead_tx);
            let fleet = rollout!(world.cluster.clone(), Arc::new(world.clock.clone())).run();
            let task = drive::capacity(
                cfg.clone(),
                world,
                in_force_rx.clone(),
                shared.clone(),
                metrics,
                cloud_metrics,
                stop.clone(),
            );
            (tokio::spawn(task), tokio::spawn(fleet), None)
        }
        Backends::Real(cluster, elector) => {
            let fleet = rollout!((*cluster).clone(), Arc::new(crate::clock::SystemClock)).run();
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
            let elector = tokio::spawn(async move { elector.run(lead_tx, stopped).await });
            (tokio::spawn(task), tokio::spawn(fleet), Some(elector))
        }
    };
    let server = axum::serve(listener, router).with_graceful_shutdown(stop.clone().cancelled_owned());
    let http_task = tokio::spawn(async move { server.await });

    signalled().await;
    tracing::info!("shutting down: finishing the passes in progress");
    stop.cancel();
    let _ = tokio::join!(git_task, store_task, loop_task, rollout_task, http_task);
    if let Some(t) = elector_task {
        let _ = t.await;
    }
    drop(sim_leader);
    tracing::info!("stopped");
    Ok(())
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
