//! On-demand prices from the AWS Pricing API (`GetProducts`), for one EC2 region.
//!
//! ```text
//! region ──pricing_region──► the Pricing API's endpoint region (ap-south-1, cn-northwest-1,
//!                            eu-central-1 or us-east-1)
//! GetProducts × 2 queries (shared tenancy; dedicated bare metal), 100 documents a page, NextToken
//!   └─ each PriceList entry: a JSON document as a string ──parse──► (instanceType, USD/h; CNY/h
//!      in the China partition)
//! us-gov-*, us-iso*: no Pricing API reachable; not polled unless aws.pricing.region/endpoint
//! ```
//!
//! The documents are read by [`super::price_list`] (pure), which keeps going past a bad one: what
//! it could not read is returned beside the prices, so one odd product never costs the whole
//! region its prices.

use std::time::Duration;

use aws_config::Region;
use aws_sdk_pricing::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_pricing::types::{Filter, FilterType};

pub use super::price_list::{Parsed, PricingError, parse};
use super::{lacks_credentials, without_key_ids};

/// Documents asked for per page (the API's maximum).
pub const PAGE_SIZE: i32 = 100;

/// Pages read per query at most (a region lists about ten): past it the answer is taken as a
/// server that never stops paging, and the read fails.
pub const MAX_PAGES: usize = 500;

/// The partition of an EC2 `region` that has no Pricing API endpoint of its own and cannot call
/// the commercial one with its credentials (GovCloud, the ISO regions); `None` elsewhere.
pub fn unreachable_partition(region: &str) -> Option<&'static str> {
    if region.starts_with("us-gov-") {
        Some("aws-us-gov")
    } else if region.starts_with("us-iso") {
        Some("aws-iso")
    } else {
        None
    }
}

/// Logs once per process, for a China region, that its prices are in yuan.
fn note_currency(region: &str, parsed: &Parsed) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if parsed.currencies.contains("CNY") && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            region,
            "AWS Pricing API: on-demand prices are in CNY (yuan), not USD; packing only compares prices, so its choices are unaffected, but the status page and cost figures show them with $ and they are CNY"
        );
    }
}

/// The Pricing API region that serves prices for an EC2 `region` (partitions without one:
/// [`unreachable_partition`]).
pub fn pricing_region(region: &str) -> &'static str {
    if region.starts_with("ap-") {
        "ap-south-1"
    } else if region.starts_with("cn-") {
        "cn-northwest-1"
    } else if region.starts_with("eu-") {
        "eu-central-1"
    } else {
        "us-east-1"
    }
}

/// One GetProducts query: a tenancy and the product family it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// A name for logs and errors.
    pub name: &'static str,
    /// The `tenancy` filter.
    pub tenancy: &'static str,
    /// The `productFamily` filter.
    pub family: &'static str,
}

/// Virtualised types (shared tenancy), then bare metal (listed under dedicated tenancy).
pub const QUERIES: [Query; 2] = [
    Query { name: "shared", tenancy: "Shared", family: "Compute Instance" },
    Query { name: "bare metal", tenancy: "Dedicated", family: "Compute Instance (bare metal)" },
];

/// The `TERM_MATCH` filters of a query for `region`: Linux, no pre-installed software, capacity
/// in use, on-demand.
pub fn filters(region: &str, query: &Query) -> Vec<(&'static str, String)> {
    vec![
        ("regionCode", region.to_string()),
        ("preInstalledSw", "NA".into()),
        ("operatingSystem", "Linux".into()),
        ("capacitystatus", "Used".into()),
        ("marketoption", "OnDemand".into()),
        ("tenancy", query.tenancy.into()),
        ("productFamily", query.family.into()),
    ]
}

/// A Pricing API client for `pricing_region`, at `endpoint` when given (a test server, a VPC
/// endpoint). Credentials come from the standard AWS chain. Calls give up soon (a 5 s connect
/// timeout, 60 s per attempt, 3 attempts): the caller keeps its prices and retries later.
pub async fn client(endpoint: Option<&str>, pricing_region: &str) -> aws_sdk_pricing::Client {
    let mut loader = super::loader()
        .region(Region::new(pricing_region.to_string()))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    aws_sdk_pricing::Client::new(&loader.load().await)
}

fn api_error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    query: &'static str,
    err: SdkError<E, R>,
) -> PricingError {
    if let SdkError::ServiceError(service) = &err {
        let e = service.err();
        let message = format!("{}: {}", e.code().unwrap_or("error"), e.message().unwrap_or_default());
        return PricingError::Api { query, message: without_key_ids(&message) };
    }
    let text = format!("{err:?}");
    if lacks_credentials(&text) {
        return PricingError::Unauthorized;
    }
    PricingError::Api { query, message: without_key_ids(&text).chars().take(300).collect() }
}

/// Every on-demand price of `region` (both [`QUERIES`], every page). Any failed call fails the
/// whole read: a partial answer is never returned as prices. Logs pages and types as it goes.
pub async fn read(client: &aws_sdk_pricing::Client, region: &str) -> Result<Parsed, PricingError> {
    let mut parsed = Parsed::default();
    let mut pages = 0;
    for query in &QUERIES {
        let mut token: Option<String> = None;
        for page in 1.. {
            if page > MAX_PAGES {
                let message = format!("more than {MAX_PAGES} pages; the server keeps answering a NextToken");
                return Err(PricingError::Api { query: query.name, message });
            }
            let mut req = client.get_products().service_code("AmazonEC2").max_results(PAGE_SIZE);
            for (field, value) in filters(region, query) {
                let filter = Filter::builder()
                    .r#type(FilterType::TermMatch)
                    .field(field)
                    .value(value)
                    .build()
                    .expect("type, field and value are set");
                req = req.filters(filter);
            }
            let out = req.set_next_token(token.take()).send().await.map_err(|e| api_error(query.name, e))?;
            parsed.add(out.price_list());
            pages += 1;
            tracing::debug!(
                query = query.name,
                pages,
                documents = parsed.documents,
                types = parsed.prices.len(),
                "AWS Pricing API: page read"
            );
            match out.next_token().filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
    }
    tracing::info!(
        region,
        pages,
        documents = parsed.documents,
        types = parsed.prices.len(),
        skipped = parsed.errors.len(),
        "AWS Pricing API: on-demand prices read"
    );
    if let Some(first) = parsed.errors.first() {
        tracing::warn!(skipped = parsed.errors.len(), first = %first, "AWS Pricing API: documents skipped");
    }
    note_currency(region, &parsed);
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_region_is_priced_from_its_partitions_pricing_region() {
        for (region, pricing) in [
            ("ap-southeast-2", "ap-south-1"),
            ("ap-south-1", "ap-south-1"),
            ("cn-north-1", "cn-northwest-1"),
            ("eu-west-1", "eu-central-1"),
            ("eu-central-1", "eu-central-1"),
            ("us-west-2", "us-east-1"),
            ("sa-east-1", "us-east-1"),
            ("me-central-1", "us-east-1"),
            ("us-gov-west-1", "us-east-1"),
        ] {
            assert_eq!(pricing_region(region), pricing, "{region}");
        }
        for (region, partition) in
            [("us-gov-west-1", Some("aws-us-gov")), ("us-isob-east-1", Some("aws-iso")), ("us-east-1", None)]
        {
            assert_eq!(unreachable_partition(region), partition, "{region}");
        }
    }

    #[test]
    fn the_filters_name_the_region_and_the_query() {
        let f = filters("eu-west-1", &QUERIES[1]);
        assert!(f.contains(&("regionCode", "eu-west-1".into())));
        assert!(f.contains(&("tenancy", "Dedicated".into())));
        assert!(f.contains(&("productFamily", "Compute Instance (bare metal)".into())));
        assert!(f.contains(&("marketoption", "OnDemand".into())));
        assert_eq!(f.len(), 7);
    }
}
