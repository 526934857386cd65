//! Keeps a [`PriceFeed`] current from the AWS Pricing API, in the background.
//!
//! ```text
//! start ─ cached copy in the state store? ─yes─► publish it at once (a restart keeps prices)
//!   │                                      no ─► publish file + built-in prices
//!   ├─ GovCloud / ISO region, no aws.pricing.region or .endpoint: no Pricing API reachable;
//!   │    said once, not polled
//!   └─ spawn: loop { wait until the copy is `refresh` old (or the backoff after a failure)
//!                    GetProducts ─ok, accepted─► save the copy, publish file > API > built-in
//!                               └─failed or refused─► warn, keep the prices in force, back off }
//! ```
//!
//! An answer with far fewer types than the cached copy is refused, unless the copy is old or
//! the same count comes twice in a row ([`price_cache::accept`]).
//!
//! Nothing here blocks a capacity pass: a catalog read takes whatever the feed holds. The only
//! wait at start is one state-store read, bounded by [`LOAD_TIMEOUT`].

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::cloud::aws::pricing::{self, PricingError};
use crate::cloud::prices::{self, ApiPrices, PriceFeed, PriceMap};
use crate::kops::prices::{self as price_cache, CachedPrices, Refused, Saved};
use crate::kops::store::StateStore;

/// The longest wait for the cached copy at start; past it the loop starts without it.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The default refresh period (`aws.pricing.refresh`).
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(24 * 3600);

/// Where prices come from and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The cluster's EC2 region: the prices asked for, and the cache's name.
    pub region: String,
    /// The kOps cluster name: the cache lives in its folder of the state store.
    pub kops_name: String,
    /// A Pricing API endpoint override (`aws.pricing.endpoint`).
    pub endpoint: Option<String>,
    /// The Pricing API's region (`aws.pricing.region`); default [`pricing::pricing_region`].
    pub pricing_region: Option<String>,
    /// How old prices may get before they are read again (`aws.pricing.refresh`).
    pub refresh: Duration,
}

/// Why a refresh changed nothing; the prices in force stay.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RefreshError {
    /// The API could not be read.
    #[error(transparent)]
    Read(#[from] PricingError),
    /// The answer may not replace the prices in force.
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// The refresher's state: what it reads, where it keeps the copy, what it publishes to.
pub struct Refresher<S> {
    /// Where prices come from and how often.
    pub settings: Settings,
    /// The Pricing API client.
    pub client: aws_sdk_pricing::Client,
    /// The state store of the cached copy; `None` keeps no copy (a restart starts from the
    /// file and built-in prices until the API answers).
    pub store: Option<S>,
    /// The price file's rows, which win over the API's.
    pub file: Option<PriceMap>,
    /// The last resort.
    pub builtin: PriceMap,
    /// Where the merged prices go.
    pub feed: PriceFeed,
    /// Where time is read (the copy's read time, when a refresh is due).
    pub clock: Arc<dyn Clock>,
    /// The type count of the last answer refused as partial, if the last answer was one: the
    /// same count again replaces the cached copy.
    pub last_partial: Mutex<Option<usize>>,
}

impl<S: StateStore + 'static> Refresher<S> {
    /// A refresher with a client built from `settings`.
    pub async fn new(
        settings: Settings,
        store: Option<S>,
        file: Option<PriceMap>,
        feed: PriceFeed,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let pricing_region =
            settings.pricing_region.clone().unwrap_or_else(|| pricing::pricing_region(&settings.region).to_string());
        let client = pricing::client(settings.endpoint.as_deref(), &pricing_region).await;
        Refresher {
            settings,
            client,
            store,
            file,
            builtin: prices::builtin(),
            feed,
            clock,
            last_partial: Mutex::new(None),
        }
    }

    /// Publishes the file, `api` and built-in prices merged, and logs which sources serve.
    pub fn publish(&self, api: Option<&ApiPrices>) {
        let set = prices::merge(self.file.as_ref(), api, &self.builtin);
        tracing::info!(region = %self.settings.region, types = set.prices.len(), sources = %set.sources.label(), "on-demand prices in force");
        self.feed.set(set);
    }

    /// The cached copy, if the store has a good one (a bad one is logged and ignored).
    pub async fn load(&self) -> Option<CachedPrices> {
        let store = self.store.as_ref()?;
        let (kops, region) = (&self.settings.kops_name, &self.settings.region);
        match tokio::time::timeout(LOAD_TIMEOUT, price_cache::load(store, kops, region)).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cached on-demand prices not used");
                None
            }
            Err(_) => {
                tracing::warn!(key = %price_cache::key(kops, region), "the state store did not answer in time; cached on-demand prices not used");
                None
            }
        }
    }

    /// Reads the API once; an accepted answer is saved and published. `cached` is the copy in
    /// force, which a refused answer leaves in place.
    pub async fn refresh(&self, cached: Option<&CachedPrices>) -> Result<CachedPrices, RefreshError> {
        let region = &self.settings.region;
        let parsed = pricing::read(&self.client, region).await?;
        let fresh = CachedPrices::new(region, self.clock.utc(), &parsed.prices);
        let last = *self.last_partial.lock().unwrap_or_else(|p| p.into_inner());
        let rule = price_cache::Rule { refresh: self.settings.refresh, last_partial: last };
        match price_cache::accept(region, cached, fresh.prices.len(), fresh.read_at, &rule) {
            Ok(None) => {}
            Ok(Some(why)) => tracing::warn!(
                region = %region,
                types = fresh.prices.len(),
                cached = cached.map_or(0, |c| c.prices.len()),
                %why,
                "AWS Pricing API: an answer with far fewer types replaces the cached prices"
            ),
            Err(refused) => return Err(self.refused(refused)),
        }
        if let Some(store) = &self.store {
            match price_cache::save(store, &self.settings.kops_name, &fresh, &rule).await {
                Ok(Saved::Written | Saved::KeptNewer) => {}
                Ok(Saved::KeptGood(refused)) => return Err(self.refused(refused)),
                Err(e) => tracing::warn!(error = %e, "on-demand prices not cached; they are used all the same"),
            }
        }
        *self.last_partial.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.publish(Some(&fresh.api_prices(false)));
        Ok(fresh)
    }

    /// Notes a refused answer's count (a partial one's), for the next answer's judgement.
    fn refused(&self, refused: Refused) -> RefreshError {
        let count = match &refused {
            Refused::Partial { fresh, .. } => Some(*fresh),
            Refused::Empty { .. } => None,
        };
        *self.last_partial.lock().unwrap_or_else(|p| p.into_inner()) = count;
        refused.into()
    }

    /// The partition of the region when it has no Pricing API this refresher can reach: a
    /// GovCloud or ISO region, unless `aws.pricing.region` or `.endpoint` names one.
    pub fn unreachable(&self) -> Option<&'static str> {
        let s = &self.settings;
        if s.endpoint.is_some() || s.pricing_region.is_some() {
            return None;
        }
        pricing::unreachable_partition(&s.region)
    }

    /// Publishes the cached copy (or the file and built-in prices) at once, then refreshes in a
    /// background task until `stop`.
    pub async fn start(self, stop: CancellationToken) -> JoinHandle<()> {
        let cached = self.load().await;
        self.publish(cached.as_ref().map(|c| c.api_prices(true)).as_ref());
        if let Some(partition) = self.unreachable() {
            // Said once per region and process: a refresher restarted later says nothing new.
            static SAID: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
            if SAID.lock().unwrap_or_else(|p| p.into_inner()).insert(self.settings.region.clone()) {
                let set = self.feed.current();
                tracing::warn!(
                    region = %self.settings.region,
                    partition,
                    sources = %set.sources.label(),
                    "the AWS Pricing API is not reachable from this partition and is not polled; on-demand prices come from the price file, the cached copy and the built-in prices (as listed); set aws.pricing.region or aws.pricing.endpoint to poll one"
                );
            }
            return tokio::spawn(async {});
        }
        tokio::spawn(self.run(cached, stop))
    }

    async fn run(self, mut cached: Option<CachedPrices>, stop: CancellationToken) {
        let refresh = self.settings.refresh;
        let mut failures = 0;
        loop {
            let wait = match &cached {
                _ if failures > 0 => price_cache::backoff(failures, refresh),
                Some(c) => price_cache::until_due(c.read_at, self.clock.utc(), refresh),
                None => Duration::ZERO,
            };
            let outcome = tokio::select! {
                _ = stop.cancelled() => return,
                outcome = async {
                    tokio::time::sleep(wait).await;
                    self.refresh(cached.as_ref()).await
                } => outcome,
            };
            match outcome {
                Ok(fresh) => {
                    cached = Some(fresh);
                    failures = 0;
                }
                Err(e) => {
                    failures += 1;
                    let retry = price_cache::backoff(failures, refresh);
                    let serving = if cached.is_some() { "cached API prices" } else { "file and built-in prices" };
                    tracing::warn!(error = %e, retry_in_secs = retry.as_secs(), serving, "on-demand prices not refreshed");
                }
            }
        }
    }
}

/// Starts a refresher for `settings` (see [`Refresher::start`]); `region: None` asks the AWS
/// chain (`AWS_REGION`, the profile).
pub async fn start<S: StateStore + 'static>(
    mut settings: Settings,
    store: Option<S>,
    file: Option<PriceMap>,
    feed: PriceFeed,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    if settings.region.is_empty() {
        let chain = crate::cloud::aws::loader().load().await;
        settings.region = chain.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    }
    Refresher::new(settings, store, file, feed, clock).await.start(stop).await
}
