//! The on-demand prices last read from the AWS Pricing API, kept in the kOps state store at
//! `<kops-name>/capstan/prices/<region>.json`, so that a restart has the API's prices at once
//! and an outage of the API keeps them.
//!
//! Writes are whole objects, conditional on the version read (another replica's newer copy is
//! kept); the folder store renames a complete temporary file into place and S3 replaces an
//! object whole, so a torn write never loses the last good prices. What may replace a good copy
//! is decided by [`accept`]: never an empty answer, and one that lists far fewer types only when
//! the copy is old ([`STALE_REFRESHES`] refresh periods) or the same shorter count came twice in
//! a row, so that types AWS stopped listing never freeze the prices for good. Unknown fields are
//! ignored on reading: an older replica keeps using a newer replica's copy.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::object;
use super::store::{StateStore, StoreError};
use crate::cloud::prices::{ApiPrices, PriceMap};

/// The `source` of a copy read from the Pricing API.
pub const SOURCE: &str = "aws-pricing-api";

/// A new answer that lists fewer than this share of the cached types is taken as partial.
pub const PARTIAL: f64 = 0.9;

/// A cached copy older than this many refresh periods is replaced by a shorter answer.
pub const STALE_REFRESHES: u32 = 3;

/// The first wait after a failed read; it doubles per failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(60);

/// The longest wait between failed reads (never longer than the refresh period).
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The cached object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedPrices {
    /// The EC2 region the prices are for.
    pub region: String,
    /// When they were read from the API.
    pub read_at: DateTime<Utc>,
    /// Where they came from ([`SOURCE`]).
    pub source: String,
    /// USD per hour by instance type, sorted so that the object diffs well.
    pub prices: BTreeMap<String, f64>,
}

impl CachedPrices {
    /// A copy of `prices` read from the API at `read_at`.
    pub fn new(region: &str, read_at: DateTime<Utc>, prices: &PriceMap) -> CachedPrices {
        let prices = prices.iter().map(|(k, v)| (k.clone(), *v)).collect();
        CachedPrices { region: region.to_string(), read_at, source: SOURCE.into(), prices }
    }

    /// The prices as the merge takes them; `cached` says whether this process read them.
    pub fn api_prices(&self, cached: bool) -> ApiPrices {
        ApiPrices {
            prices: self.prices.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            read_at: self.read_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            cached,
        }
    }
}

/// Why the cache could not be read or written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CacheError {
    /// The object is not a price cache (or is another region's): it is ignored, and replaced by
    /// the next good read.
    #[error("{key} is not a price cache ({reason}); it is ignored and replaced by the next read")]
    Corrupt {
        /// The object's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store refused or failed.
    #[error("price cache {key}: {source}")]
    Store {
        /// The object's key.
        key: String,
        /// What the store said.
        source: StoreError,
    },
}

/// Why a new answer does not replace the cached prices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No price at all.
    #[error("the AWS Pricing API answered no price for {region}; the prices in force are kept")]
    Empty {
        /// The region asked for.
        region: String,
    },
    /// Far fewer types than the cached copy: a partial answer.
    #[error(
        "the AWS Pricing API priced {fresh} types of {region}, the cached copy {cached} (read {age} ago); taken as a partial answer, the cached prices are kept until the same count comes back or the copy is {stale} old"
    )]
    Partial {
        /// The region asked for.
        region: String,
        /// Types in the new answer.
        fresh: usize,
        /// Types in the cached copy.
        cached: usize,
        /// The cached copy's age, e.g. `2d 3h`.
        age: String,
        /// The age past which a shorter answer replaces it, e.g. `3d`.
        stale: String,
    },
}

/// What may let a shorter answer replace the cached copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The refresh period: a copy [`STALE_REFRESHES`] times older is replaced by a shorter answer.
    pub refresh: Duration,
    /// The type count of the last answer refused as partial, when the last answer was one.
    pub last_partial: Option<usize>,
}

impl Rule {
    /// The rule for a refresh period, with no partial answer seen.
    pub fn new(refresh: Duration) -> Rule {
        Rule { refresh, last_partial: None }
    }
}

/// Why a shorter answer was taken all the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shorter {
    /// The cached copy was this old (e.g. `3d 1h`).
    Stale(String),
    /// The same count came twice in a row.
    Repeated,
}

impl std::fmt::Display for Shorter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shorter::Stale(age) => write!(f, "the cached copy is {age} old"),
            Shorter::Repeated => write!(f, "the same count came twice in a row"),
        }
    }
}

/// `d` as days, hours and minutes, e.g. `2d 3h`, `5h 10m`, `4m`. Pure.
pub fn age(d: Duration) -> String {
    let m = d.as_secs() / 60;
    let (days, hours, mins) = (m / 1440, m / 60 % 24, m % 60);
    match (days, hours) {
        (0, 0) => format!("{mins}m"),
        (0, h) => format!("{h}h {mins}m"),
        (d, 0) => format!("{d}d"),
        (d, h) => format!("{d}d {h}h"),
    }
}

/// The key of `region`'s cache in `kops_name`'s folder.
pub fn key(kops_name: &str, region: &str) -> String {
    format!("{}prices/{region}.json", object::own_prefix(kops_name))
}

/// Whether a new answer of `fresh` types read at `now` may replace `cached`: never an empty
/// one; one with far fewer types ([`PARTIAL`]) only when the copy is older than
/// [`STALE_REFRESHES`] refresh periods or the same count came in the last answer too (`Some`:
/// taken although shorter, and why). Pure.
pub fn accept(
    region: &str,
    cached: Option<&CachedPrices>,
    fresh: usize,
    now: DateTime<Utc>,
    rule: &Rule,
) -> Result<Option<Shorter>, Refused> {
    if fresh == 0 {
        return Err(Refused::Empty { region: region.to_string() });
    }
    let Some(c) = cached.filter(|c| (fresh as f64) < c.prices.len() as f64 * PARTIAL) else { return Ok(None) };
    let old = (now - c.read_at).to_std().unwrap_or_default();
    let stale = rule.refresh.saturating_mul(STALE_REFRESHES);
    if old > stale {
        return Ok(Some(Shorter::Stale(age(old))));
    }
    if rule.last_partial == Some(fresh) {
        return Ok(Some(Shorter::Repeated));
    }
    Err(Refused::Partial {
        region: region.to_string(),
        fresh,
        cached: c.prices.len(),
        age: age(old),
        stale: age(stale),
    })
}

/// How long until prices read at `read_at` are due for a refresh (zero when due). Pure.
pub fn until_due(read_at: DateTime<Utc>, now: DateTime<Utc>, refresh: Duration) -> Duration {
    let age = (now - read_at).to_std().unwrap_or_default();
    refresh.saturating_sub(age)
}

/// The wait after the `failures`-th failed read in a row (from 1): doubling from
/// [`FIRST_BACKOFF`], at most [`MAX_BACKOFF`] and the refresh period. Pure.
pub fn backoff(failures: u32, refresh: Duration) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF).min(refresh)
}

fn decode(key: &str, region: &str, bytes: &[u8]) -> Result<CachedPrices, CacheError> {
    let corrupt = |reason: String| CacheError::Corrupt { key: key.to_string(), reason };
    let cached: CachedPrices = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if cached.region != region {
        return Err(corrupt(format!("it holds region {}", cached.region)));
    }
    if let Some((name, p)) = cached.prices.iter().find(|(_, p)| !(p.is_finite() && **p > 0.0)) {
        return Err(corrupt(format!("{name} has price {p}")));
    }
    Ok(cached)
}

/// The cached prices of `region`; `None` when there are none yet.
pub async fn load<S: StateStore>(store: &S, kops_name: &str, region: &str) -> Result<Option<CachedPrices>, CacheError> {
    let key = key(kops_name, region);
    let object = store.get(&key).await.map_err(|source| CacheError::Store { key: key.clone(), source })?;
    object.map(|o| decode(&key, region, &o.bytes)).transpose()
}

/// What [`save`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// The object now holds these prices.
    Written,
    /// Another writer's copy read at the same time or later is there: it is kept.
    KeptNewer,
    /// The copy there is good and the new one is refused ([`accept`]).
    KeptGood(Refused),
}

/// Writes `prices` as one whole object, conditional on the version read: a copy read at the same
/// time or later (another replica's) is kept, and so is a good copy the new one may not replace
/// ([`accept`] by `rule`).
pub async fn save<S: StateStore>(
    store: &S,
    kops_name: &str,
    prices: &CachedPrices,
    rule: &Rule,
) -> Result<Saved, CacheError> {
    let key = key(kops_name, &prices.region);
    let failed = |source| CacheError::Store { key: key.clone(), source };
    let bytes = serde_json::to_vec_pretty(prices).expect("prices serialise");
    for _ in 0..4 {
        let current = store.get(&key).await.map_err(failed)?;
        let written = match &current {
            Some(o) => {
                if let Ok(there) = decode(&key, &prices.region, &o.bytes) {
                    if there.read_at >= prices.read_at {
                        return Ok(Saved::KeptNewer);
                    }
                    if let Err(refused) =
                        accept(&prices.region, Some(&there), prices.prices.len(), prices.read_at, rule)
                    {
                        return Ok(Saved::KeptGood(refused));
                    }
                }
                store.put_if_match(&key, &bytes, &o.etag).await
            }
            None => store.put_if_absent(&key, &bytes).await,
        };
        match written {
            Ok(_) => return Ok(Saved::Written),
            Err(StoreError::PreconditionFailed(_) | StoreError::NotFound(_)) => continue,
            Err(e) => return Err(failed(e)),
        }
    }
    Err(failed(StoreError::PreconditionFailed(format!("{key} (too many concurrent writers)"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kops::store::MemoryStore;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + secs, 0).unwrap()
    }

    fn prices(n: usize) -> PriceMap {
        (0..n).map(|i| (format!("m{i}.large"), format!("0.{}", 100 + i).parse().unwrap())).collect()
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn an_empty_or_much_shorter_answer_does_not_replace_a_recent_good_copy() {
        let good = CachedPrices::new("eu-west-1", at(0), &prices(100));
        let rule = Rule::new(DAY);
        let now = at(3600);
        assert!(matches!(accept("eu-west-1", Some(&good), 0, now, &rule), Err(Refused::Empty { .. })));
        assert!(matches!(accept("eu-west-1", None, 0, now, &rule), Err(Refused::Empty { .. })));
        let e = accept("eu-west-1", Some(&good), 89, now, &rule).unwrap_err();
        assert!(matches!(e, Refused::Partial { fresh: 89, cached: 100, .. }), "{e}");
        assert!(e.to_string().contains("read 1h 0m ago") && e.to_string().contains("3d old"), "{e}");
        assert_eq!(accept("eu-west-1", Some(&good), 90, now, &rule), Ok(None));
        assert_eq!(accept("eu-west-1", Some(&good), 120, now, &rule), Ok(None));
        assert_eq!(accept("eu-west-1", None, 1, now, &rule), Ok(None));
        let empty = Rule { last_partial: Some(0), ..rule };
        assert!(matches!(accept("eu-west-1", Some(&good), 0, at(90 * 86_400), &empty), Err(Refused::Empty { .. })));
    }

    #[test]
    fn a_shorter_answer_replaces_an_old_copy_or_when_it_comes_twice() {
        let good = CachedPrices::new("eu-west-1", at(0), &prices(100));
        let rule = Rule::new(DAY);
        let old = at(3 * 86_400 + 60);
        assert_eq!(accept("eu-west-1", Some(&good), 50, old, &rule), Ok(Some(Shorter::Stale("3d".into()))));
        assert!(accept("eu-west-1", Some(&good), 50, at(3 * 86_400), &rule).is_err(), "not past 3 refreshes");
        let again = Rule { last_partial: Some(50), ..rule };
        assert_eq!(accept("eu-west-1", Some(&good), 50, at(60), &again), Ok(Some(Shorter::Repeated)));
        assert!(accept("eu-west-1", Some(&good), 51, at(60), &again).is_err(), "another count starts over");
        assert_eq!(age(Duration::from_secs(2 * 86_400 + 3 * 3600 + 59)), "2d 3h");
        assert_eq!(age(Duration::from_secs(240)), "4m");
    }

    #[test]
    fn a_copy_with_fields_this_version_does_not_know_is_read() {
        let text = br#"{"region": "eu-west-1", "readAt": "2026-01-01T00:00:00Z", "source": "aws-pricing-api", "prices": {"m6i.large": 0.096}, "currency": "USD", "schema": 2}"#;
        let read = decode("k", "eu-west-1", text).unwrap();
        assert_eq!(read.prices.get("m6i.large"), Some(&0.096));
    }

    #[test]
    fn refresh_is_due_after_the_period_and_failures_back_off() {
        let day = Duration::from_secs(86_400);
        assert_eq!(until_due(at(0), at(3600), day), day - Duration::from_secs(3600));
        assert_eq!(until_due(at(0), at(90_000), day), Duration::ZERO);
        assert_eq!(until_due(at(10), at(0), day), day, "a copy from the future is not due");
        assert_eq!(backoff(1, day), Duration::from_secs(60));
        assert_eq!(backoff(2, day), Duration::from_secs(120));
        assert_eq!(backoff(40, day), MAX_BACKOFF);
        assert_eq!(backoff(3, Duration::from_secs(90)), Duration::from_secs(90), "never past the refresh period");
    }

    #[tokio::test]
    async fn a_copy_is_written_read_back_and_a_newer_one_is_kept() {
        let store = MemoryStore::default();
        assert_eq!(load(&store, "dev.example.com", "eu-west-1").await, Ok(None));
        let first = CachedPrices::new("eu-west-1", at(0), &prices(10));
        assert_eq!(save(&store, "dev.example.com", &first, &Rule::new(DAY)).await, Ok(Saved::Written));
        assert_eq!(load(&store, "dev.example.com", "eu-west-1").await, Ok(Some(first.clone())));
        let newer = CachedPrices::new("eu-west-1", at(60), &prices(11));
        assert_eq!(save(&store, "dev.example.com", &newer, &Rule::new(DAY)).await, Ok(Saved::Written));
        assert_eq!(save(&store, "dev.example.com", &first, &Rule::new(DAY)).await, Ok(Saved::KeptNewer));
        let partial = CachedPrices::new("eu-west-1", at(120), &prices(2));
        assert!(matches!(save(&store, "dev.example.com", &partial, &Rule::new(DAY)).await, Ok(Saved::KeptGood(_))));
        assert_eq!(load(&store, "dev.example.com", "eu-west-1").await, Ok(Some(newer)));
    }

    #[tokio::test]
    async fn a_corrupt_copy_is_named_and_replaced_by_the_next_read() {
        let store = MemoryStore::default();
        let k = key("dev.example.com", "eu-west-1");
        assert_eq!(k, "dev.example.com/capstan/prices/eu-west-1.json");
        store.put_if_absent(&k, b"{\"region\": \"eu-west-1\", \"pri").await.unwrap();
        let e = load(&store, "dev.example.com", "eu-west-1").await.unwrap_err();
        assert!(e.to_string().contains(&k), "{e}");
        let good = CachedPrices::new("eu-west-1", at(0), &prices(3));
        assert_eq!(save(&store, "dev.example.com", &good, &Rule::new(DAY)).await, Ok(Saved::Written));
        assert_eq!(load(&store, "dev.example.com", "eu-west-1").await, Ok(Some(good)));
    }
}
