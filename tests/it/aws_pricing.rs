//! On-demand prices from the AWS Pricing API, cached in a folder state store. moto has no Pricing
//! API, so a loopback server here answers `GetProducts` in the documented format (awsJson 1.1,
//! `PriceList` of JSON documents as strings, `NextToken` pages) and records what it was asked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_pricing::config::Credentials;
use aws_sdk_pricing::config::retry::RetryConfig;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use capstan::app::config::DaemonConfig;
use capstan::app::prices::{RefreshError, Refresher, Settings};
use capstan::clock::{Clock, SystemClock};
use capstan::cloud::aws::pricing;
use capstan::cloud::prices::{self, PriceFeed, PriceMap};
use capstan::cloud::sim::VirtualClock;
use capstan::kops::any::Store;
use capstan::kops::prices as price_cache;
use capstan::kops::s3::S3Options;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const KOPS: &str = "dev.example.com";
const REGION: &str = "eu-west-1";

/// What the server was asked: (x-amz-target, content-type, body).
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A product document in the Pricing API's shape.
fn product(instance_type: &str, family: &str, usd: f64) -> String {
    json!({
        "product": {"productFamily": family, "attributes": {"instanceType": instance_type, "regionCode": REGION, "operatingSystem": "Linux"}, "sku": format!("SKU-{instance_type}")},
        "serviceCode": "AmazonEC2",
        "terms": {"OnDemand": {"SKU.JRTCKXETXF": {"priceDimensions": {"SKU.JRTCKXETXF.6YS6EN2CTY": {"unit": "Hrs", "pricePerUnit": {"USD": format!("{usd:.10}")}}}}}},
        "version": "20260101000000",
    })
    .to_string()
}

/// The loopback Pricing API: shared tenancy in two pages, bare metal in one; prices scaled by
/// `generation` (1 = the first answer, 2 = after the outage).
#[derive(Clone, Default)]
struct Api {
    seen: Seen,
    generation: Arc<AtomicU32>,
}

impl Api {
    fn answer(&self, headers: &HeaderMap, body: &str) -> (StatusCode, [(&'static str, &'static str); 1], String) {
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let req: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        self.seen.lock().unwrap().push((header("x-amz-target"), header("content-type"), req.clone()));
        let k = self.generation.load(Ordering::SeqCst) as f64;
        let filter = |field: &str| {
            req["Filters"].as_array().into_iter().flatten().find(|f| f["Field"] == field).map(|f| f["Value"].clone())
        };
        let (docs, next) =
            match (filter("tenancy").and_then(|v| v.as_str().map(str::to_string)), req["NextToken"].as_str()) {
                (Some(t), None) if t == "Shared" => (
                    vec![
                        product("m6i.large", "Compute Instance", 0.096 * k),
                        product("c6i.large", "Compute Instance", 0.085 * k),
                    ],
                    Some("page-2"),
                ),
                (Some(t), Some("page-2")) if t == "Shared" => (
                    vec![
                        product("r6i.large", "Compute Instance", 0.126 * k),
                        product("t3.nano", "Compute Instance", 0.0),
                    ],
                    None,
                ),
                (Some(t), None) if t == "Dedicated" => {
                    (vec![product("m5.metal", "Compute Instance (bare metal)", 4.608 * k)], None)
                }
                _ => {
                    return (
                        StatusCode::BAD_REQUEST,
                        [("content-type", "application/x-amz-json-1.1")],
                        json!({"__type": "InvalidParameterException", "message": "unexpected request"}).to_string(),
                    );
                }
            };
        let mut out = json!({"FormatVersion": "aws_v1", "PriceList": docs});
        if let Some(n) = next {
            out["NextToken"] = json!(n);
        }
        (StatusCode::OK, [("content-type", "application/x-amz-json-1.1")], out.to_string())
    }

    /// Serves on `addr` (port 0: any) until the handle is aborted; returns the bound address.
    async fn serve(&self, addr: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let bound = listener.local_addr().unwrap();
        let api = self.clone();
        let app = axum::Router::new()
            .route("/", post(move |headers: HeaderMap, body: String| async move { api.answer(&headers, &body) }));
        (bound, tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }))
    }
}

/// A Pricing API client for `url` with test credentials and no retries (an outage fails at once).
fn client(url: &str) -> aws_sdk_pricing::Client {
    let conf = aws_sdk_pricing::Config::builder()
        .http_client(capstan::cloud::aws::http_client())
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-central-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_pricing::Client::from_conf(conf)
}

async fn store(dir: &std::path::Path) -> Store {
    Store::open(&format!("file://{}", dir.display()), &S3Options::default()).await.unwrap()
}

fn refresher(
    url: &str,
    store: Store,
    file: Option<PriceMap>,
    feed: &PriceFeed,
    clock: Arc<dyn Clock>,
) -> Refresher<Store> {
    let settings = Settings {
        region: REGION.into(),
        kops_name: KOPS.into(),
        endpoint: Some(url.into()),
        pricing_region: None,
        refresh: Duration::from_secs(24 * 3600),
    };
    Refresher {
        settings,
        client: client(url),
        store: Some(store),
        file,
        builtin: prices::builtin(),
        feed: feed.clone(),
        clock,
        last_partial: Default::default(),
    }
}

fn price(feed: &PriceFeed, t: &str) -> Option<f64> {
    feed.current().prices.get(t).copied()
}

#[tokio::test]
async fn prices_are_read_page_by_page_with_the_documented_filters() {
    let api = Api::default();
    api.generation.store(1, Ordering::SeqCst);
    let (addr, server) = api.serve("127.0.0.1:0".parse().unwrap()).await;
    let parsed = pricing::read(&client(&format!("http://{addr}")), REGION).await.unwrap();
    server.abort();
    let want: HashMap<String, f64> =
        [("m6i.large", 0.096), ("c6i.large", 0.085), ("r6i.large", 0.126), ("m5.metal", 4.608)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    assert_eq!(parsed.prices, want, "t3.nano's zero price is left out");
    assert_eq!((parsed.documents, parsed.errors.len()), (5, 0));

    let seen = api.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "two shared pages and one bare-metal page: {seen:?}");
    for (target, content_type, body) in &seen {
        assert_eq!(target, "AWSPriceListService.GetProducts");
        assert_eq!(content_type, "application/x-amz-json-1.1");
        assert_eq!(body["ServiceCode"], "AmazonEC2");
        assert_eq!(body["MaxResults"], 100);
        let filters: HashMap<&str, &str> = body["Filters"]
            .as_array()
            .unwrap()
            .iter()
            .inspect(|f| assert_eq!(f["Type"], "TERM_MATCH"))
            .map(|f| (f["Field"].as_str().unwrap(), f["Value"].as_str().unwrap()))
            .collect();
        for (field, value) in [
            ("regionCode", REGION),
            ("preInstalledSw", "NA"),
            ("operatingSystem", "Linux"),
            ("capacitystatus", "Used"),
            ("marketoption", "OnDemand"),
        ] {
            assert_eq!(filters.get(field), Some(&value), "{field} in {body}");
        }
        let family = if filters["tenancy"] == "Shared" { "Compute Instance" } else { "Compute Instance (bare metal)" };
        assert_eq!(filters["productFamily"], family);
    }
    assert_eq!(seen[0].2.get("NextToken"), None);
    assert_eq!(seen[1].2["NextToken"], "page-2", "the second page is asked with the first's token");
    assert_eq!(seen[2].2.get("NextToken"), None, "the bare-metal query starts afresh");
}

#[tokio::test]
async fn cached_prices_serve_a_restart_during_an_outage_and_a_refresh_follows_the_api_back() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::default();
    api.generation.store(1, Ordering::SeqCst);
    let (addr, server) = api.serve("127.0.0.1:0".parse().unwrap()).await;
    let url = format!("http://{addr}");

    // First run: read and cached whole in the state store.
    let feed = PriceFeed::default();
    let first = refresher(&url, store(dir.path()).await, None, &feed, Arc::new(SystemClock));
    let read = first.refresh(None).await.unwrap();
    assert_eq!(price(&feed, "m6i.large"), Some(0.096));
    assert_eq!(price(&feed, "m5.metal"), Some(4.608));
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(price_cache::key(KOPS, REGION))).unwrap()).unwrap();
    assert_eq!((&on_disk["region"], &on_disk["source"]), (&json!(REGION), &json!("aws-pricing-api")));
    assert_eq!(on_disk["prices"]["r6i.large"], 0.126);
    assert!(on_disk["readAt"].as_str().unwrap().starts_with(&read.read_at.format("%Y-%m-%dT%H:%M").to_string()));

    // The API goes away; a restarted daemon, two days later (a refresh is due), prices from the
    // cache at once.
    server.abort();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let later = VirtualClock::default();
    later.set(SystemClock.now() + Duration::from_secs(2 * 86_400));
    let later: Arc<dyn Clock> = Arc::new(later);
    let feed = PriceFeed::default();
    let stop = CancellationToken::new();
    let task = refresher(&url, store(dir.path()).await, None, &feed, later.clone()).start(stop.clone()).await;
    assert_eq!(price(&feed, "m6i.large"), Some(0.096), "the cached copy is in force when start returns");
    let label = feed.current().sources.label();
    assert!(label.contains("pricing-api 4 (cached"), "{label}");
    // Its background refresh fails and keeps them; so does a direct one.
    let restarted = refresher(&url, store(dir.path()).await, None, &feed, later.clone());
    let cached = restarted.load().await.expect("the cached copy");
    let e = restarted.refresh(Some(&cached)).await.unwrap_err();
    assert!(matches!(e, RefreshError::Read(pricing::PricingError::Api { .. })), "{e}");
    assert_eq!(price(&feed, "m6i.large"), Some(0.096));
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("the refresher stops").unwrap();

    // The API is back with new prices: the refresh takes them and rewrites the copy.
    api.generation.store(2, Ordering::SeqCst);
    let (_, server) = api.serve(addr).await;
    let fresh = restarted.refresh(Some(&cached)).await.unwrap();
    server.abort();
    assert_eq!(price(&feed, "m6i.large"), Some(0.192));
    assert!(!feed.current().sources.label().contains("cached"));
    let again = price_cache::load(&store(dir.path()).await, KOPS, REGION).await.unwrap().unwrap();
    assert_eq!((again.prices.get("m5.metal"), again.read_at), (Some(&9.216), fresh.read_at));
}

#[tokio::test]
async fn a_price_file_row_wins_over_the_api_and_the_api_over_the_builtin_prices() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::default();
    api.generation.store(1, Ordering::SeqCst);
    let (addr, server) = api.serve("127.0.0.1:0".parse().unwrap()).await;
    let file: PriceMap = [("m6i.large".to_string(), 0.05)].into();
    let feed = PriceFeed::default();
    let r = refresher(&format!("http://{addr}"), store(dir.path()).await, Some(file), &feed, Arc::new(SystemClock));
    r.publish(None);
    assert_eq!(price(&feed, "m6i.large"), Some(0.05), "before the API answers: the file");
    assert_eq!(price(&feed, "c6i.large"), prices::builtin().get("c6i.large").copied(), "and the built-in prices");
    r.refresh(None).await.unwrap();
    server.abort();
    let set = feed.current();
    assert_eq!(set.prices.get("m6i.large"), Some(&0.05), "the file's row stays");
    assert_eq!(set.prices.get("m5.metal"), Some(&4.608), "the API's where the file is silent");
    assert!(set.prices.contains_key("m7g.large"), "the built-in prices where both are silent");
    assert_eq!((set.sources.file, set.sources.api), (1, 3));
    let cached = price_cache::load(&store(dir.path()).await, KOPS, REGION).await.unwrap().unwrap();
    assert_eq!(cached.prices.get("m6i.large"), Some(&0.096), "the cache holds the API's prices, not the override");
}

#[tokio::test]
async fn a_partial_answer_does_not_replace_a_good_cache_until_it_comes_twice() {
    let dir = tempfile::tempdir().unwrap();
    let big: PriceMap = (0..40).map(|i| (format!("x{i}.large"), 0.1)).collect();
    let good = price_cache::CachedPrices::new(REGION, SystemClock.utc(), &big);
    let s = store(dir.path()).await;
    let rule = price_cache::Rule::new(Duration::from_secs(86_400));
    assert_eq!(price_cache::save(&s, KOPS, &good, &rule).await, Ok(price_cache::Saved::Written));
    let api = Api::default();
    api.generation.store(1, Ordering::SeqCst);
    let (addr, server) = api.serve("127.0.0.1:0".parse().unwrap()).await;
    let feed = PriceFeed::default();
    let r = refresher(&format!("http://{addr}"), s, None, &feed, Arc::new(SystemClock));
    let e = r.refresh(Some(&good)).await.unwrap_err();
    assert!(matches!(e, RefreshError::Refused(price_cache::Refused::Partial { fresh: 4, cached: 40, .. })), "{e}");
    assert!(e.to_string().contains("(read 0m ago)"), "the cached copy's age is said: {e}");
    assert!(feed.current().prices.is_empty(), "nothing published");
    let kept = price_cache::load(&store(dir.path()).await, KOPS, REGION).await.unwrap().unwrap();
    assert_eq!(kept, good);

    // The same shorter answer again: AWS lists fewer types now, and it is taken.
    let fresh = r.refresh(Some(&good)).await.unwrap();
    assert_eq!(fresh.prices.len(), 4);
    assert_eq!(price(&feed, "m6i.large"), Some(0.096));
    let kept = price_cache::load(&store(dir.path()).await, KOPS, REGION).await.unwrap().unwrap();
    assert_eq!(kept.prices.len(), 4, "the cache follows");

    // A copy older than three refresh periods is replaced by a shorter answer at once.
    let old = price_cache::CachedPrices::new(REGION, SystemClock.utc() - chrono::Duration::days(4), &big);
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).await;
    assert_eq!(price_cache::save(&s, KOPS, &old, &rule).await, Ok(price_cache::Saved::Written));
    let feed = PriceFeed::default();
    let r = refresher(&format!("http://{addr}"), s, None, &feed, Arc::new(SystemClock));
    r.refresh(Some(&old)).await.expect("a stale copy gives way");
    server.abort();
    assert_eq!(price(&feed, "m5.metal"), Some(4.608));
}

#[tokio::test]
async fn a_govcloud_region_is_not_polled_and_says_which_prices_serve() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::default();
    api.generation.store(1, Ordering::SeqCst);
    let (addr, server) = api.serve("127.0.0.1:0".parse().unwrap()).await;
    let feed = PriceFeed::default();
    let file: PriceMap = [("m6i.large".to_string(), 0.05)].into();
    let mut r = refresher(&format!("http://{addr}"), store(dir.path()).await, Some(file), &feed, Arc::new(SystemClock));
    r.settings.region = "us-gov-west-1".into();
    r.settings.endpoint = None;
    assert_eq!(r.unreachable(), Some("aws-us-gov"));
    let stop = CancellationToken::new();
    let task = r.start(stop.clone()).await;
    tokio::time::timeout(Duration::from_secs(2), task).await.expect("nothing to poll").unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.abort();
    assert!(api.seen.lock().unwrap().is_empty(), "the Pricing API is never asked");
    assert_eq!(price(&feed, "m6i.large"), Some(0.05), "the file's rows and the built-in prices serve");
    assert!(feed.current().sources.label().starts_with("file 1 + built-in "));
    let mut settings = refresher("http://127.0.0.1:9", store(dir.path()).await, None, &feed, Arc::new(SystemClock));
    settings.settings.region = "us-gov-west-1".into();
    assert_eq!(settings.unreachable(), None, "an endpoint given is polled");
}

/// Writes a daemon config for the real backends with `aws` (a YAML flow mapping) and loads it.
fn aws_config(dir: &std::path::Path, aws: &str) -> Result<DaemonConfig, String> {
    let text = format!(
        "cluster: dev\nrepository: {{url: {}}}\nbackends: {{cloud: aws, cluster: kube}}\ndataDir: data\naws: {aws}\n",
        dir.join("no-such-repository").display()
    );
    std::fs::write(dir.join("capstan.yaml"), text).unwrap();
    DaemonConfig::load(&dir.join("capstan.yaml")).map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_daemon_on_aws_needs_no_price_file_but_checks_one_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = aws_config(d, "{region: eu-west-1}").expect("no price file is needed");
    let e = capstan::app::preflight::preflight(&cfg).await.err().unwrap().to_string();
    assert!(e.contains("repository.url") && !e.contains("pricesFile"), "past the price checks: {e}");
    let cfg = aws_config(d, "{pricing: {endpoint: 'http://127.0.0.1:9', region: us-east-1, refresh: 12h}}").unwrap();
    assert_eq!(cfg.aws.pricing.refresh.as_ref().map(|r| r.duration()), Some(Duration::from_secs(12 * 3600)));

    let e = aws_config(d, "{pricing: {endpoint: 'pricing.example.com'}}").unwrap_err();
    assert!(e.contains("aws.pricing.endpoint `pricing.example.com` is not an endpoint"), "{e}");
    let e = aws_config(d, "{pricing: {refresh: 10s}}").unwrap_err();
    assert!(e.contains("aws.pricing.refresh: 10s is out of range"), "{e}");

    std::fs::write(d.join("prices.csv"), "instance_type,usd_per_hour\n").unwrap();
    let cfg = aws_config(d, "{pricesFile: prices.csv}").unwrap();
    let e = capstan::app::preflight::preflight(&cfg).await.err().unwrap().to_string();
    assert!(e.contains("aws.pricesFile") && e.contains("lists no price"), "{e}");
}

#[tokio::test]
async fn an_unreachable_api_never_holds_up_start_and_the_refresher_stops_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let settings = Settings {
        region: REGION.into(),
        kops_name: KOPS.into(),
        endpoint: Some(format!("http://{closed}")),
        pricing_region: None,
        refresh: Duration::from_secs(24 * 3600),
    };
    let file: PriceMap = [("m6i.large".to_string(), 0.05)].into();
    let (feed, stop) = (PriceFeed::default(), CancellationToken::new());
    let started = capstan::app::prices::start(
        settings,
        Some(store(dir.path()).await),
        Some(file),
        feed.clone(),
        Arc::new(SystemClock),
        stop.clone(),
    );
    let task = tokio::time::timeout(Duration::from_secs(2), started).await.expect("start does not wait for the API");
    let set = feed.current();
    assert_eq!(set.prices.get("m6i.large"), Some(&0.05));
    assert!(set.sources.label().starts_with("file 1 + built-in "), "{}", set.sources.label());
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(2), task).await.expect("the refresher stops at once").unwrap();
    assert!(!dir.path().join(price_cache::key(KOPS, REGION)).exists(), "nothing cached without an answer");
}

/// On EC2 (moto): a catalog read takes the prices the feed holds at that moment, and a type no
/// source prices is left out.
#[tokio::test]
async fn a_new_price_map_takes_effect_at_the_next_catalog_read() {
    use capstan::cloud::provider::CloudProvider;
    let mut cloud = crate::aws_cloud::cloud(&crate::aws_resolve::unique("prices")).await;
    let feed = PriceFeed::new(prices::merge(None, None, &prices::builtin()));
    cloud.price_feed = Some(feed.clone());
    let on_demand = |c: &capstan::scheduling::catalog::Catalog, t: &str| {
        let t = c.get(t)?;
        t.offerings
            .iter()
            .find(|o| o.capacity_type == capstan::scheduling::catalog::CapacityType::OnDemand)
            .map(|o| o.price)
    };
    let first = cloud.catalog().await.unwrap();
    assert_eq!(on_demand(&first, "m6i.large"), Some(0.096), "built-in prices");
    assert_eq!(first.types.len(), first.types.iter().filter(|t| prices::builtin().contains_key(&t.name)).count());
    let api = prices::ApiPrices {
        prices: [("m6i.large".to_string(), 0.2), ("t2.micro".to_string(), 0.0116)].into(),
        read_at: "now".into(),
        cached: false,
    };
    feed.set(prices::merge(None, Some(&api), &prices::builtin()));
    let second = cloud.catalog().await.unwrap();
    assert_eq!(on_demand(&second, "m6i.large"), Some(0.2));
    assert_eq!(second.types.len(), first.types.len() + 1, "t2.micro is priced now");
}
