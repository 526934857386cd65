//! The instance catalog read from a real EC2 API (moto), priced from the shared price file.

use capstan::cloud::aws::{self, Endpoint, catalog};
use capstan::cloud::prices;

use crate::common;

/// moto's address, started by the test command.
pub fn moto() -> String {
    std::env::var("CAPSTAN_TEST_MOTO").expect("CAPSTAN_TEST_MOTO is not set: run ./scripts/test.sh, which starts moto")
}

/// The shared price file beside the repository (or where CAPSTAN_PRICE_FILE says).
pub fn price_file() -> std::path::PathBuf {
    match std::env::var_os("CAPSTAN_PRICE_FILE") {
        Some(p) => p.into(),
        None => common::root().join("../shared/data/aws-ondemand-prices-us-east-1.csv"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn catalog_from_ec2_has_shapes_zones_and_prices() {
    let prices = prices::read(&price_file()).expect("price file");
    let endpoint = Endpoint { url: Some(moto()), region: Some("us-east-1".into()) };
    let (cat, report) =
        runtime().block_on(async { catalog::fetch(&aws::ec2(&endpoint).await, &prices).await }).expect("fetch");
    assert!(report.described > 700, "EC2 described {} types", report.described);
    assert!(report.exported > 500, "{report:?}");
    assert_eq!(report.exported, cat.types.len());
    assert_eq!(report.described, report.exported + report.unpriced.len() + report.skipped.len());
    let m5 = cat.get("m5.large").expect("m5.large");
    assert_eq!((m5.arch.as_str(), m5.vcpu, m5.memory_mib), ("amd64", 2, 8192));
    assert_eq!((m5.enis, m5.ipv4_per_eni), (3, 10));
    let od: Vec<_> = m5.offerings.iter().filter(|o| o.capacity_type.label() == "on-demand").collect();
    assert!(od.len() >= 3, "m5.large offered in {} zones", od.len());
    assert!(od.iter().all(|o| (o.price - 0.096).abs() < 1e-9 && o.zone.starts_with("us-east-1")));
    let graviton = cat.get("m6g.large").expect("m6g.large");
    assert_eq!(graviton.arch, "arm64");
    let gpu = cat.types.iter().find(|t| t.name.starts_with("g4dn.")).expect("a g4dn type");
    assert!(gpu.gpus >= 1 && gpu.gpu_manufacturer.as_deref() == Some("nvidia"), "{gpu:?}");
}

#[test]
fn catalog_export_command_writes_a_catalog_the_bench_reads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("catalog.json");
    let run = common::capstan(&[
        "catalog",
        "export",
        "--prices",
        price_file().to_str().unwrap(),
        "--endpoint",
        &moto(),
        "--region",
        "us-east-1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("instance types described"), "{}", run.stderr);
    let bench = common::capstan(&["bench", "scheduling", "--pods", "50", "--catalog", out.to_str().unwrap(), "--json"]);
    assert_eq!(bench.code, 0, "{}", bench.stderr);
    let v = bench.json();
    assert!(v["instance_types"].as_u64().unwrap() > 500);
    assert_eq!(v["pods"], 50);
    assert_eq!(v["unschedulable"], 0);
    for field in [
        "solve_ms",
        "pods_per_sec",
        "nodes",
        "cost_per_hour",
        "lower_bound_per_hour",
        "cost_ratio",
        "ffd_cost_per_hour",
        "ffd_ratio",
    ] {
        assert!(v[field].as_f64().is_some_and(|x| x > 0.0), "{field}: {v}");
    }
    assert!(v["cost_ratio"].as_f64().unwrap() >= 1.0, "a plan never beats its lower bound: {v}");
    assert!(v["best_ratio"].as_f64().unwrap() >= 1.0, "nor the tightest bound: {v}");
    // The configuration LP's optimum lies between its bound and its last restricted master.
    let (bound, master) = (v["configuration_bound_per_hour"].as_f64(), v["configuration_master_per_hour"].as_f64());
    let (bound, master) = (bound.expect("a configuration bound"), master.expect("the master's value"));
    assert!(master >= bound * (1.0 - 1e-6), "{v}");
}

#[test]
fn a_bad_price_file_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prices.csv");
    std::fs::write(&path, "instance_type,usd_per_hour\nm5.large,0.096\nm5.xlarge,free\n").unwrap();
    let err = prices::read(&path).unwrap_err().to_string();
    assert!(err.contains("prices.csv:3") && err.contains("`free` is not a price"), "{err}");
}

#[test]
fn missing_credentials_are_named() {
    // A client with no credentials at all.
    let conf = aws_sdk_ec2::Config::builder()
        .http_client(capstan::cloud::aws::http_client())
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new("us-east-1"))
        .endpoint_url(moto())
        .build();
    let client = aws_sdk_ec2::Client::from_conf(conf);
    let err = runtime().block_on(async { catalog::fetch(&client, &Default::default()).await }).unwrap_err();
    assert!(matches!(err, capstan::cloud::CloudError::Unauthorized(_)), "{err:?}");
    assert!(err.to_string().contains("credentials"), "{err}");
}
