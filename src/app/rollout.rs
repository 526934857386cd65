//! The rollout task: reads back this cluster's rollout record (so the follower's fast-forward
//! base and the revision in force survive a restart), then, while this replica leads, runs the
//! fleet gate every `rollout.interval` and on every newly accepted revision, and publishes the
//! revision in force to the state-store task and the capacity loop.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::config::DaemonConfig;
use super::shared::Shared;
use crate::capacity::wall;
use crate::clock::Clock;
use crate::cluster::{ClusterApi, Subject};
use crate::fleet::driver::{Driver, RECENT_STEPS, RolloutView};
use crate::fleet::health::{self, Health, LoopView, StoreView};
use crate::fleet::metrics::RolloutMetrics;
use crate::fleet::peers::Stores;
use crate::fleet::record::Record;
use crate::fleet::revisions::{GitRevisions, Revisions};
use crate::gitops::follow::Accepted;

/// The revision in force, as the other tasks see it.
pub type InForce = watch::Receiver<Option<Arc<Accepted>>>;

pub struct Task<K> {
    pub cfg: DaemonConfig,
    pub revisions: GitRevisions,
    /// The newest accepted revision (the follower's).
    pub policy: watch::Receiver<Option<Arc<Accepted>>>,
    pub in_force: watch::Sender<Option<Arc<Accepted>>>,
    pub shared: Arc<Shared>,
    pub metrics: RolloutMetrics,
    pub clock: Arc<dyn Clock>,
    /// Where rollout steps are recorded as Kubernetes events.
    pub cluster: K,
    /// Notified once the follower's fast-forward base is set: the follower waits for it.
    pub base_ready: Arc<Notify>,
    pub leading: watch::Receiver<bool>,
    /// Cancelled on shutdown: the task returns after the pass in progress.
    pub stop: CancellationToken,
}

impl<K: ClusterApi> Task<K> {
    pub async fn run(mut self) {
        let stores = Arc::new(Stores::new(self.cfg.s3_options()));
        let mut base_set = false;
        while !self.stop.is_cancelled() {
            let driver = match self.start(&stores).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "rollout: cannot read this cluster's record; retrying");
                    self.view(|v| v.error = Some(e));
                    if !super::pause(Duration::from_secs(2), &self.stop).await {
                        return;
                    }
                    continue;
                }
            };
            if !base_set {
                self.revisions.source().set_base(driver.record().follow_base.as_deref());
                self.base_ready.notify_one();
                base_set = true;
            }
            if !*self.leading.borrow() {
                // A standby reads the record again once it leads.
                if !self.wait_leading().await {
                    return;
                }
                continue;
            }
            self.resume(&driver).await;
            self.lead(driver).await;
        }
    }

    /// The own store (the config's, else the Fleet entry's at the tip) and the record in it.
    async fn start(&self, stores: &Arc<Stores>) -> Result<Driver, String> {
        let source = self.revisions.source();
        let fetched = match source.peek().await {
            Ok(f) => f,
            // The repository is out of reach: the mirror's last fetch still names the store.
            Err(e) => source.local_tip().map_err(|_| e.to_string())?,
        };
        let validation =
            crate::policy::validate(&fetched.snapshot, Some(&self.cfg.cluster)).map_err(|e| e.to_string())?;
        let policy = validation.policies.into_iter().next().ok_or("no policy for the cluster")?;
        let entry = policy.fleet_entry.clone();
        let url = self.cfg.state_store.clone().or_else(|| entry.as_ref().map(|e| e.state_store.clone()));
        let url = url.ok_or_else(|| {
            format!("no state store: set stateStore in the config or in fleet.yaml for {}", self.cfg.cluster)
        })?;
        let region = entry.as_ref().map_or_else(|| "us-east-1".to_string(), |e| e.region.clone());
        let own = stores.open(&url, &region).await?;
        let started = crate::clock::SystemClock.now().as_nanos();
        let incarnation = format!("{started:x}-{}", std::process::id());
        let driver = Driver::start(&self.cfg.cluster, &policy.kops_name, own, stores.clone(), &incarnation)
            .await?
            .with_metrics(self.metrics.clone());
        Ok(driver)
    }

    /// Puts back in force what was in force before the restart.
    async fn resume(&self, driver: &Driver) {
        let Some(held) = driver.record().in_force.clone() else { return };
        if self.in_force.borrow().as_ref().is_some_and(|a| a.revision.sha == held.sha) {
            return;
        }
        match self.revisions.load(&held.sha).await {
            Ok(l) => {
                tracing::info!(revision = %held.revision, "rollout: resumed the revision in force before the restart");
                self.in_force.send_replace(Some(l.accepted));
            }
            Err(e) => {
                tracing::warn!(revision = %held.revision, error = %e, "rollout: the revision in force before the restart cannot be loaded")
            }
        }
    }

    /// Runs the gate while this replica leads.
    async fn lead(&mut self, mut driver: Driver) {
        loop {
            if self.stop.is_cancelled() || !*self.leading.borrow_and_update() {
                return;
            }
            let tip = self.policy.borrow_and_update().clone();
            let now = wall(self.clock.now());
            let health = self.health(driver.record(), now, driver.write_error());
            let base = self.revisions.source().base();
            let pass = driver.pass(now, tip.as_ref(), &health, &self.revisions, base).await;
            for s in &pass.output.steps {
                self.cluster.event(&self.subject(), &format!("Rollout{}", camel(s.kind.label())), &s.message).await;
            }
            match pass.apply {
                Some(l) => {
                    self.in_force.send_replace(Some(l.accepted));
                }
                // What the record holds in force could not be loaded before (a mirror without
                // it yet): try again each pass.
                None => self.resume(&driver).await,
            }
            let record = driver.record().clone();
            self.view(|v| {
                v.record = record;
                v.error = None;
                v.steps.extend(pass.output.steps.iter().cloned());
                while v.steps.len() > RECENT_STEPS {
                    v.steps.pop_front();
                }
            });
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = self.policy.changed() => {}
                _ = self.leading.changed() => {}
                _ = tokio::time::sleep(self.cfg.rollout_interval()) => {}
            }
        }
    }

    /// Waits to lead; false when stopping.
    async fn wait_leading(&mut self) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            r = self.leading.wait_for(|l| *l) => r.is_ok(),
        }
    }

    fn subject(&self) -> Subject {
        let (namespace, name) = self.cfg.lease();
        Subject::Lease { namespace, name }
    }

    fn view(&self, f: impl FnOnce(&mut RolloutView)) {
        let mut guard = self.shared.rollout.lock().expect("status");
        f(guard.get_or_insert_with(RolloutView::default));
    }

    /// This cluster's health on the revision in force, from the loop's and the store's last
    /// passes.
    fn health(&self, rec: &Record, now: DateTime<Utc>, write_error: Option<&str>) -> Health {
        let capacity = self.shared.capacity.lock().expect("status").as_ref().map(LoopView::of);
        let store = {
            let doc = self.shared.state_store.lock().expect("status");
            doc["revision"].as_str().map(|r| StoreView {
                revision: r.to_string(),
                result: doc["result"].as_str().unwrap_or_default().to_string(),
                error: doc["error"].as_str().map(String::from),
            })
        };
        let policy = self.in_force.borrow().clone();
        health::measure(
            rec,
            policy.as_ref().map(|a| a.policy.as_ref()),
            capacity.as_ref(),
            store.as_ref(),
            write_error,
            now,
        )
    }
}

/// `rolled-back` → `RolledBack`.
fn camel(label: &str) -> String {
    label
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}
