//! The capacity loop on the real backends: Kubernetes through the API server and EC2. Only the
//! leader acts; a new policy revision rebuilds the EC2 provider with its EC2NodeClasses (userData
//! resolved from the kOps state store).
//!
//! Passes are driven by change ([`Wake`]): the Kubernetes binding has no change notification,
//! so every [`TICK`] the reflectors' snapshot (in memory, no request) is digested and compared
//! with what the last pass saw; a pass also runs when something is due, a launch or drain is in
//! flight, or [`super::wake::IDLE_PASS_BOUND`] has passed.
//!
//! No pass runs while another autoscaler may act ([`Handover`]): kOps's Karpenter must be gone
//! before capstan launches, disrupts or drains anything.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::DaemonConfig;
use super::shared::Shared;
use super::wake::Wake;
use crate::capacity::report::LoopMetrics;
use crate::capacity::{CapacityLoop, DecisionLog, fingerprint};
use crate::clock::{Clock, SystemClock};
use crate::cloud::aws::provider::AwsCloud;
use crate::cloud::aws::recent::Recent;
use crate::cloud::aws::{self, Endpoint};
use crate::cloud::metered::{CloudMetrics, Metered};
use crate::cloud::prices::PriceFeed;
use crate::cluster::ClusterApi;
use crate::cluster::kube::KubeCluster;
use crate::cluster::kube::karpenter::{self, Verdict};
use crate::gitops::follow::Accepted;
use crate::rules::Rules;
use crate::scheduling::catalog::Catalog;

/// Time between checks of the snapshot for a change that wants a pass; the reflectors keep it
/// current, so a check costs no request. A pending pod is seen at most this late.
pub const TICK: Duration = Duration::from_millis(500);

/// A Kubernetes client from the config's kubeconfig, else the usual chain (in-cluster service
/// account, `KUBECONFIG`, ~/.kube/config).
pub async fn client(cfg: &DaemonConfig) -> Result<kube::Client, String> {
    crate::cluster::kube::connect::client(cfg.kube.kubeconfig.as_deref()).await
}

async fn provider(
    cfg: &DaemonConfig,
    acc: &Accepted,
    prices: &PriceFeed,
    recent: &Arc<Recent>,
    catalog: Catalog,
    reader: Option<aws::sqs::Reader>,
) -> Result<AwsCloud, String> {
    let mut policy = (*acc.policy).clone();
    let store = super::open_store(cfg, &policy).await?;
    for missing in crate::kops::userdata::resolve_user_data(&store, &mut policy).await.map_err(|e| e.to_string())? {
        tracing::warn!("{missing}");
    }
    let classes: BTreeMap<_, _> =
        policy.node_classes.iter().map(|c| (c.value.metadata.name.clone(), c.value.clone())).collect();
    let region = cfg.aws.region.clone().or_else(|| policy.fleet_entry.as_ref().map(|f| f.region.clone()));
    let ep = Endpoint { url: cfg.aws.endpoint.clone(), region };
    let mut cloud = AwsCloud::new(aws::ec2(&ep).await, aws::ssm(&ep).await, &policy.kops_name, classes, catalog)
        .with_iam(aws::iam(&ep).await)
        .with_recent(recent.clone());
    cloud.price_feed = Some(prices.clone());
    if let Some(queue) = &cfg.aws.interruption.queue {
        let i = &cfg.aws.interruption;
        // One reader per daemon: a new revision's provider reads on with the last one's.
        cloud.interruptions = Some(match reader {
            Some(r) => r,
            None => aws::sqs::Reader::start(aws::sqs::client(ep.region.clone(), i.endpoint.clone()).await, queue),
        });
    }
    Ok(cloud)
}

/// What a price refresher was started for: another region, kOps name or price file starts
/// another.
#[derive(Debug, Clone, PartialEq)]
struct RefreshKey {
    region: Option<String>,
    kops_name: String,
    file: Option<HashMap<String, f64>>,
}

impl RefreshKey {
    fn of(cfg: &DaemonConfig, acc: &Accepted, file: Option<&HashMap<String, f64>>) -> RefreshKey {
        RefreshKey {
            region: cfg.aws.region.clone().or_else(|| acc.policy.fleet_entry.as_ref().map(|f| f.region.clone())),
            kops_name: acc.policy.kops_name.clone(),
            file: file.cloned(),
        }
    }
}

/// The running price refresher and how to stop it. It runs only while this replica leads.
struct Refreshing {
    key: RefreshKey,
    stop: CancellationToken,
}

/// Time between reads of a price file that has not been read well yet.
const PRICE_FILE_RETRY: Duration = Duration::from_secs(10);

/// The price file (`aws.pricesFile`): read at start and again on each new policy revision (a
/// mounted ConfigMap may change). A read that fails keeps the rows last read well; with none, no
/// capacity pass runs — never launches priced by the Pricing API and built-in prices in place of
/// an override the operator set.
#[derive(Debug, Default)]
struct PriceFile {
    path: Option<PathBuf>,
    /// The rows last read well.
    good: Option<HashMap<String, f64>>,
    /// Why the last read failed; `None` after a good one.
    problem: Option<String>,
    /// When to read again while nothing good was read (system clock).
    retry_at: Duration,
}

impl PriceFile {
    fn new(path: Option<PathBuf>, now: Duration) -> PriceFile {
        let mut file = PriceFile { path, ..PriceFile::default() };
        file.read(now);
        file
    }

    /// Reads the file again (when one is set); a failure is logged when its reason is new.
    fn read(&mut self, now: Duration) {
        let Some(path) = &self.path else { return };
        let read = crate::cloud::prices::read(path).map_err(|e| e.to_string()).and_then(|rows| {
            if rows.is_empty() { Err(format!("price file {} lists no price", path.display())) } else { Ok(rows) }
        });
        match read {
            Ok(rows) => {
                if self.problem.take().is_some() {
                    tracing::info!(file = %path.display(), types = rows.len(), "aws.pricesFile is read again; its rows are in force");
                }
                self.good = Some(rows);
            }
            Err(why) => {
                if self.problem.as_deref() != Some(why.as_str()) {
                    match &self.good {
                        Some(rows) => tracing::error!(
                            error = %why,
                            types = rows.len(),
                            "aws.pricesFile cannot be read; the rows last read from it stay in force"
                        ),
                        None => tracing::error!(
                            error = %why,
                            "aws.pricesFile cannot be read and has not been read yet: no capacity pass runs (nothing is launched or disrupted) until it can be; the Pricing API's and built-in prices are not used in its place"
                        ),
                    }
                }
                self.problem = Some(why);
                self.retry_at = now + PRICE_FILE_RETRY;
            }
        }
    }

    /// Why no capacity pass may run: a price file is set and none of it was ever read.
    fn blocks(&self) -> Option<String> {
        let path = self.path.as_ref().filter(|_| self.good.is_none())?;
        let why = self.problem.as_deref().unwrap_or("not read");
        Some(format!(
            "aws.pricesFile {}: {why}; no capacity pass runs until it can be read (fallback prices are not used in its place)",
            path.display()
        ))
    }

    /// Whether to read again now: nothing good read yet and the retry is due.
    fn due(&self, now: Duration) -> bool {
        self.blocks().is_some() && now >= self.retry_at
    }
}

/// Starts the on-demand price refresher for the cluster's region ([`super::prices`]); the
/// copy cached in the state store, if any, is in force when it returns.
async fn refresh_prices(
    cfg: &DaemonConfig,
    acc: &Accepted,
    file: Option<HashMap<String, f64>>,
    feed: &PriceFeed,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let store = super::open_store(cfg, &acc.policy).await;
    let store = store.inspect_err(|e| tracing::warn!(error = %e, "on-demand prices are not cached")).ok();
    let pricing = &cfg.aws.pricing;
    let region = cfg.aws.region.clone().or_else(|| acc.policy.fleet_entry.as_ref().map(|f| f.region.clone()));
    let settings = super::prices::Settings {
        region: region.unwrap_or_default(),
        kops_name: acc.policy.kops_name.clone(),
        endpoint: pricing.endpoint.clone(),
        pricing_region: pricing.region.clone(),
        refresh: pricing.refresh.as_ref().map_or(super::prices::DEFAULT_REFRESH, |d| d.duration()),
    };
    super::prices::start(settings, store, file, feed.clone(), Arc::new(SystemClock), stop.clone()).await
}

#[allow(clippy::too_many_arguments)]
pub async fn capacity(
    cfg: DaemonConfig,
    cluster: KubeCluster,
    mut policy: super::rollout::InForce,
    shared: Arc<Shared>,
    metrics: LoopMetrics,
    cloud_metrics: CloudMetrics,
    leading: watch::Receiver<bool>,
    stop: CancellationToken,
) {
    // On-demand prices: the price file's rows (an override), then the Pricing API's (read in the
    // background while this replica leads), then the built-in ones.
    let mut price_file = PriceFile::new(cfg.aws.prices_file.clone(), SystemClock.now());
    let builtin = crate::cloud::prices::builtin();
    let prices = PriceFeed::new(crate::cloud::prices::merge(price_file.good.as_ref(), None, &builtin));
    let mut refresher: Option<Refreshing> = None;
    // What launches prepared lately, kept across the providers of successive revisions.
    let recent = Arc::new(Recent::default());
    let mut lp: Option<CapacityLoop<Metered<AwsCloud>, KubeCluster>> = None;
    let mut revision = String::new();
    let mut wake = Wake::default();
    let mut handover = Handover::default();
    while super::pause(TICK, &stop).await {
        let leads = *leading.borrow();
        handover.look(&cluster, &cfg.lease(), leads).await;
        if price_file.due(SystemClock.now()) {
            price_file.read(SystemClock.now());
        }
        let mut blocked = handover.reasons();
        blocked.extend(price_file.blocks());
        {
            let mut shown = shared.blocked_by.lock().expect("status");
            if *shown != blocked {
                *shown = blocked;
            }
        }
        // The same answer as the look's: a replica that has just become leader looked now.
        if !leads {
            // Only the leader reads the Pricing API; a new leader starts its refresher again.
            if let Some(r) = refresher.take() {
                r.stop.cancel();
                tracing::info!("on-demand price refresher paused: this replica does not lead");
            }
            // A follower is healthy and ready; it only waits, and passes at once when it leads.
            // What its loop saw while it led is stale from now on: it is not shown.
            shared.ready.store(true, Ordering::Relaxed);
            shared.capacity.lock().expect("status").take();
            metrics.forget_cluster_state();
            wake.reset();
            continue;
        }
        let accepted = policy.borrow_and_update().clone();
        if accepted.as_ref().is_some_and(|a| a.revision.to_string() != revision) {
            price_file.read(SystemClock.now());
        }
        if let Some(acc) = &accepted {
            // A refresher for this region, kOps name and price file; another one's is stopped.
            let key = RefreshKey::of(&cfg, acc, price_file.good.as_ref());
            if refresher.as_ref().is_none_or(|r| r.key != key) {
                if let Some(old) = refresher.take() {
                    old.stop.cancel();
                    tracing::info!(region = ?key.region, kops_name = %key.kops_name, "on-demand price refresher restarted");
                }
                let child = stop.child_token();
                refresh_prices(&cfg, acc, key.file.clone(), &prices, &child).await;
                refresher = Some(Refreshing { key, stop: child });
            }
        }
        if let Some(acc) = accepted.filter(|a| a.revision.to_string() != revision) {
            // The new provider starts from the catalog the loop last read (the loop owns it).
            let carried = lp.as_ref().and_then(|l| l.published_catalog()).map(|c| (*c).clone()).unwrap_or_default();
            let reader = lp.as_ref().and_then(|l| l.cloud().inner().interruptions.clone());
            match provider(&cfg, &acc, &prices, &recent, carried, reader).await {
                Ok(cloud) => {
                    revision = acc.revision.to_string();
                    let rules = Arc::new(Rules::from_policy(&acc.policy, acc.revision.clone()));
                    let cloud = Metered::new(cloud, cloud_metrics.clone());
                    tracing::info!(%revision, pools = rules.pools.len(), "capacity loop: policy in force");
                    wake.reset();
                    match lp.as_mut() {
                        Some(l) => {
                            l.set_rules(rules);
                            l.set_cloud(cloud);
                        }
                        None => {
                            let mut l = CapacityLoop::new(cloud, cluster.clone(), rules)
                                .with_cluster_name(&cfg.cluster)
                                .with_rebalance(cfg.aws.interruption.rebalance)
                                .with_metrics(metrics.clone());
                            match super::open_store(&cfg, &acc.policy).await {
                                Ok(store) => {
                                    let kops_name = acc.policy.kops_name.clone();
                                    l = l.with_decision_log(DecisionLog { store, kops_name });
                                }
                                Err(e) => tracing::warn!(error = %e, "decisions are not written to a state store"),
                            }
                            lp = Some(l);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot build the EC2 provider for this revision; retrying"),
            }
        }
        let Some(l) = lp.as_mut() else { continue };
        if !handover.act() {
            // Waiting for the other autoscaler to go is what the daemon should do: it stays
            // ready (both replicas unready would stop the PodDisruptionBudget from letting a
            // control-plane node drain); /status, the log and an Event say why it waits. The
            // first pass after the hand-over runs at once.
            shared.ready.store(true, Ordering::Relaxed);
            wake.reset();
            continue;
        }
        if price_file.blocks().is_some() {
            // Failing closed: the override the operator set cannot be read. Ready, like a
            // replica waiting for a hand-over; /status and /readyz say why (blockedBy).
            shared.ready.store(true, Ordering::Relaxed);
            wake.reset();
            continue;
        }
        let now = SystemClock.now();
        // Reading the reflectors' stores does not fail; were it to, the idle bound runs the pass
        // that reports it.
        let seen = cluster.snapshot().await.map(|s| fingerprint(&s)).unwrap_or_default();
        // Interruption notices waiting: a pass now, as for work in flight (two minutes is short).
        let notices = l.cloud().inner().interruptions.as_ref().is_some_and(|r| r.waiting());
        let Some(why) = wake.check(l.next_due(), l.in_flight() || notices, seen, now) else { continue };
        tracing::debug!(reason = why.label(), "capacity pass");
        wake.ran(seen, now);
        if let Err(e) = l.step(now).await {
            tracing::warn!(error = %e, "capacity pass failed; retrying");
        }
        l.take_events();
        let status = l.status().clone();
        shared.ready.store(status.last_error.is_none(), Ordering::Relaxed);
        *shared.capacity.lock().expect("status") = Some(status);
    }
}

/// Time between looks for another autoscaler while capstan acts.
pub const HANDOVER_EVERY: Duration = Duration::from_secs(30);
/// Time between looks while capstan does not act, so that a hand-over is noticed soon.
pub const HANDOVER_BLOCKED_EVERY: Duration = Duration::from_secs(10);

/// Whether another autoscaler may act ([`karpenter::judge`]), looked at every
/// [`HANDOVER_EVERY`]. capstan does not act before the first look.
#[derive(Default)]
struct Handover {
    /// The last verdict; `None` before the first look.
    verdict: Option<Verdict>,
    /// When to look next (system clock, since the Unix epoch).
    next: Duration,
    /// Whether this replica led at the last look: a new leader records the verdict it finds.
    led: bool,
}

impl Handover {
    fn act(&self) -> bool {
        self.verdict.as_ref().is_some_and(|v| v.act)
    }

    /// Why capstan may not act, as of the last look.
    fn reasons(&self) -> Vec<String> {
        self.verdict.as_ref().map(|v| v.reasons.clone()).unwrap_or_default()
    }

    /// Looks when due, and at once on becoming leader; keeps the reasons ([`Handover::reasons`],
    /// published as `/status.blockedBy`); a changed
    /// verdict is logged once and, on the leader, recorded as an Event on capstan's `lease`.
    async fn look(&mut self, cluster: &KubeCluster, lease: &(String, String), leading: bool) {
        // A replica that has just become leader does not act on a verdict it took as a follower.
        let new_leader = leading && !self.led;
        if !new_leader && SystemClock.now() < self.next {
            return;
        }
        let observed = cluster.other_autoscalers().await;
        let now = SystemClock.now();
        let verdict = karpenter::judge(&observed, now);
        self.next = now + if verdict.act { HANDOVER_EVERY } else { HANDOVER_BLOCKED_EVERY };
        // Published by the caller (`/status.blockedBy`), with the other reasons not to act.
        let before = self.verdict.replace(verdict);
        let verdict = self.verdict.as_ref().expect("just set");
        let same = |b: &Verdict| b.act == verdict.act && b.objects == verdict.objects && b.warnings == verdict.warnings;
        // A new leader records a block it finds, even one its replica saw before.
        let announce = leading && !self.led && !verdict.act;
        self.led = leading;
        if before.as_ref().is_some_and(same) && !announce {
            return;
        }
        for w in &verdict.warnings {
            tracing::warn!("{w}");
        }
        for r in &verdict.reasons {
            tracing::warn!("{r}");
        }
        let subject = crate::cluster::Subject::Lease { namespace: lease.0.clone(), name: lease.1.clone() };
        if !verdict.act {
            if leading {
                cluster.event(&subject, "AnotherAutoscaler", &verdict.reasons.join(" ")).await;
            }
        } else if before.is_some_and(|b| !b.act) {
            tracing::info!("no other autoscaler may act any more: capstan acts");
            if leading {
                cluster.event(&subject, "HandedOver", "no other autoscaler may act any more: capstan acts").await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_price_file_that_cannot_be_read_blocks_until_read_and_then_keeps_its_last_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.csv");
        let mut file = PriceFile::new(Some(path.clone()), Duration::ZERO);
        let why = file.blocks().expect("never read: no pass runs");
        assert!(why.contains("aws.pricesFile") && why.contains("no capacity pass runs"), "{why}");
        assert!(file.due(PRICE_FILE_RETRY) && !file.due(Duration::from_secs(1)));

        std::fs::write(&path, "instance_type,usd_per_hour\n").unwrap();
        file.read(PRICE_FILE_RETRY);
        assert!(file.blocks().is_some_and(|w| w.contains("lists no price")), "an empty file is no override");

        std::fs::write(&path, "instance_type,usd_per_hour\nm6i.large,0.05\n").unwrap();
        file.read(PRICE_FILE_RETRY * 2);
        assert_eq!(file.blocks(), None);
        assert_eq!(file.good.as_ref().and_then(|g| g.get("m6i.large")), Some(&0.05));

        std::fs::write(&path, "instance_type,usd_per_hour\nm6i.large,cheap\n").unwrap();
        file.read(PRICE_FILE_RETRY * 3);
        assert_eq!(file.blocks(), None, "the last good rows stay in force");
        assert_eq!(file.good.as_ref().and_then(|g| g.get("m6i.large")), Some(&0.05));
        assert!(file.problem.is_some());

        let none = PriceFile::new(None, Duration::ZERO);
        assert_eq!((none.blocks(), none.good), (None, None), "no price file: nothing to wait for");
    }
}
