//! On-demand prices and where each comes from.
//!
//! EC2 does not return on-demand prices. Three sources do, in this order of precedence:
//!
//! ```text
//! price file (aws.pricesFile, optional)        a row wins over every other source: an override
//!   > AWS Pricing API (fresh, or the copy cached in the state store)
//!     > built-in prices (the built-in catalog's, us-east-1): a last resort, so the capacity loop
//!       is never without prices
//! ```
//!
//! [`merge`] joins them (pure); a [`PriceFeed`] holds the merged map, replaced by the refresher
//! while catalog reads use it. A type no source prices is left out of the catalog.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::CloudError;
use crate::scheduling::catalog::CapacityType;

/// USD per hour by instance type.
pub type PriceMap = HashMap<String, f64>;

/// Reads the price file; rows with a missing or non-positive price are rejected with their line.
pub fn read(path: &Path) -> Result<PriceMap, CloudError> {
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| CloudError::InvalidConfig(format!("price file {}: {e}", path.display())))?;
    let mut out = HashMap::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| CloudError::InvalidConfig(format!("price file {}: {e}", path.display())))?;
        let line = i + 2;
        let (Some(name), Some(price)) = (row.get(0), row.get(1)) else {
            return Err(CloudError::InvalidConfig(format!(
                "price file {}:{line}: expected instance_type,usd_per_hour",
                path.display()
            )));
        };
        let price: f64 = price.trim().parse().ok().filter(|p: &f64| *p > 0.0 && p.is_finite()).ok_or_else(|| {
            CloudError::InvalidConfig(format!("price file {}:{line}: `{price}` is not a price", path.display()))
        })?;
        out.insert(name.trim().to_string(), price);
    }
    Ok(out)
}

/// The built-in catalog's on-demand prices (published us-east-1 prices): the last resort.
pub fn builtin() -> PriceMap {
    crate::scheduling::builtin::catalog()
        .types
        .into_iter()
        .filter_map(|t| {
            let price = t.offerings.iter().find(|o| o.capacity_type == CapacityType::OnDemand)?.price;
            Some((t.name, price))
        })
        .collect()
}

/// The Pricing API's prices as the merge sees them: fresh or from the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiPrices {
    /// USD per hour by instance type.
    pub prices: PriceMap,
    /// When they were read from the API (RFC 3339), for the log.
    pub read_at: String,
    /// Whether they came from the state store's cache rather than a call made by this process.
    pub cached: bool,
}

/// How many types each source priced in a merge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// Types priced by the price file.
    pub file: usize,
    /// Types priced by the Pricing API (fresh or cached).
    pub api: usize,
    /// Types priced only by the built-in prices.
    pub builtin: usize,
    /// The Pricing API's read time and whether it was cached; `None` when it gave nothing.
    pub api_read_at: Option<(String, bool)>,
}

impl Sources {
    /// A label for logs, e.g. `file 3 + pricing-api 812 (cached, read 2026-01-01T00:00:00Z) + built-in 40`.
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if self.file > 0 {
            parts.push(format!("file {}", self.file));
        }
        match &self.api_read_at {
            Some((at, true)) => parts.push(format!("pricing-api {} (cached, read {at})", self.api)),
            Some((at, false)) => parts.push(format!("pricing-api {} (read {at})", self.api)),
            None => {}
        }
        if self.builtin > 0 {
            parts.push(format!("built-in {}", self.builtin));
        }
        if parts.is_empty() { "none".into() } else { parts.join(" + ") }
    }
}

/// Merged prices and what each source gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceSet {
    /// USD per hour by instance type, from the highest-precedence source that prices it.
    pub prices: PriceMap,
    /// How many types each source priced.
    pub sources: Sources,
}

/// Joins the sources: a price file row beats the Pricing API, which beats the built-in price.
/// Pure.
pub fn merge(file: Option<&PriceMap>, api: Option<&ApiPrices>, builtin: &PriceMap) -> PriceSet {
    let mut prices = builtin.clone();
    let mut sources = Sources::default();
    if let Some(api) = api.filter(|a| !a.prices.is_empty()) {
        prices.extend(api.prices.iter().map(|(k, v)| (k.clone(), *v)));
        sources.api_read_at = Some((api.read_at.clone(), api.cached));
    }
    if let Some(file) = file {
        prices.extend(file.iter().map(|(k, v)| (k.clone(), *v)));
    }
    for name in prices.keys() {
        if file.is_some_and(|f| f.contains_key(name)) {
            sources.file += 1;
        } else if api.is_some_and(|a| a.prices.contains_key(name)) {
            sources.api += 1;
        } else {
            sources.builtin += 1;
        }
    }
    PriceSet { prices, sources }
}

/// The on-demand prices in force: one writer (the refresher) replaces them whole, readers (each
/// catalog read) take the map as it is at that moment. Clones share the same prices.
#[derive(Debug, Clone, Default)]
pub struct PriceFeed(Arc<RwLock<Arc<PriceSet>>>);

impl PriceFeed {
    /// A feed holding `set`.
    pub fn new(set: PriceSet) -> PriceFeed {
        PriceFeed(Arc::new(RwLock::new(Arc::new(set))))
    }

    /// The prices in force now.
    pub fn current(&self) -> Arc<PriceSet> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the prices; the next catalog read uses them.
    pub fn set(&self, set: PriceSet) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(rows: &[(&str, f64)]) -> PriceMap {
        rows.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn api(rows: &[(&str, f64)]) -> ApiPrices {
        ApiPrices { prices: map(rows), read_at: "2026-01-01T00:00:00Z".into(), cached: true }
    }

    #[test]
    fn the_file_beats_the_api_which_beats_the_builtin_prices() {
        let builtin = map(&[("m6i.large", 0.09), ("c6i.large", 0.08), ("t3.micro", 0.01)]);
        let api = api(&[("m6i.large", 0.096), ("c6i.large", 0.085), ("r8g.large", 0.11)]);
        let file = map(&[("m6i.large", 0.05)]);
        let set = merge(Some(&file), Some(&api), &builtin);
        assert_eq!(
            set.prices,
            map(&[("m6i.large", 0.05), ("c6i.large", 0.085), ("r8g.large", 0.11), ("t3.micro", 0.01)])
        );
        assert_eq!((set.sources.file, set.sources.api, set.sources.builtin), (1, 2, 1));
        let label = set.sources.label();
        assert!(
            label.starts_with("file 1 + pricing-api 2 (cached, read 2026-01-01T00:00:00Z) + built-in 1"),
            "{label}"
        );
    }

    #[test]
    fn without_the_api_the_builtin_prices_serve_and_say_so() {
        let builtin = map(&[("m6i.large", 0.09)]);
        let set = merge(None, None, &builtin);
        assert_eq!(set.prices, builtin);
        assert_eq!(set.sources.label(), "built-in 1");
        let empty = ApiPrices { prices: PriceMap::new(), ..api(&[]) };
        assert_eq!(merge(None, Some(&empty), &builtin).sources.api_read_at, None, "an empty answer is no source");
        assert_eq!(merge(None, None, &PriceMap::new()).sources.label(), "none");
    }

    #[test]
    fn the_builtin_prices_cover_the_builtin_catalog() {
        let b = builtin();
        assert!(b.len() > 50, "{}", b.len());
        assert!(b.values().all(|p| *p > 0.0));
        assert_eq!(b.get("m6i.large"), Some(&0.096));
    }

    #[test]
    fn a_feed_serves_the_last_set_to_every_clone() {
        let feed = PriceFeed::default();
        let reader = feed.clone();
        assert!(reader.current().prices.is_empty());
        feed.set(merge(None, None, &map(&[("m6i.large", 0.09)])));
        assert_eq!(reader.current().prices.get("m6i.large"), Some(&0.09));
    }
}
