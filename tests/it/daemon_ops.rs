//! What operators expect of `capstan run` as a process: JSON log lines without colour codes
//! (`--log-format json`), and metrics that show before anything happens, then follow the
//! cluster (nodes per NodePool, cost, the last pass).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::common::example_fleet;
use crate::daemon::{Daemon, example_config, request, wait};

/// `capstan run` with JSON logs; its standard error, line by line, as far as read.
fn start_json(config: &std::path::Path) -> (Daemon, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["run", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut reader = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = reader.next().expect("the daemon prints its address").unwrap();
        lines.lock().unwrap().push(line.clone());
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if let Some(a) = v["message"].as_str().and_then(|m| m.strip_prefix("capstan: listening on http://")) {
            break a.to_string();
        }
    };
    let kept = lines.clone();
    std::thread::spawn(move || {
        for line in reader.map_while(Result::ok) {
            eprintln!("capstan: {line}");
            kept.lock().unwrap().push(line);
        }
    });
    (Daemon { child, addr }, lines)
}

/// The value of the series `series` (name and labels, as written) in a scrape.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn scrape(addr: &str) -> String {
    let (code, body) = request(addr, "GET", "/metrics");
    assert_eq!(code, 200, "{body}");
    body
}

#[test]
fn json_logs_and_metrics_from_start_to_a_scale_up() {
    let dir = tempfile::tempdir().unwrap();
    let repo = example_fleet(dir.path());
    let config = example_config(dir.path(), &repo, 30);
    let (d, lines) = start_json(&config);
    wait("ready", Duration::from_secs(30), || request(&d.addr, "GET", "/readyz").0 == 200);

    // Before any scale: every new series is there, at 0 where nothing happened yet.
    let before = scrape(&d.addr);
    let version = env!("CARGO_PKG_VERSION");
    let build = before.lines().find(|l| l.starts_with("capstan_build_info{")).unwrap_or_else(|| panic!("{before}"));
    assert!(build.starts_with(&format!("capstan_build_info{{version=\"{version}\",commit=\"")), "{build}");
    assert!(build.ends_with("\"} 1"), "{build}");
    assert_eq!(value(&before, "capstan_leader"), Some(1.0), "{before}");
    for pool in ["default", "arm64", "spot"] {
        let nodes = value(&before, &format!("capstan_nodepool_nodes{{nodepool=\"{pool}\"}}"));
        assert_eq!(nodes, Some(0.0), "{pool}: {before}");
        for resource in ["cpu", "memory"] {
            let series = format!("capstan_nodepool_usage{{nodepool=\"{pool}\",resource=\"{resource}\"}}");
            assert_eq!(value(&before, &series), Some(0.0), "{series}: {before}");
        }
        let limit = format!("capstan_nodepool_limit{{nodepool=\"{pool}\",resource=\"nodes\"}}");
        assert_eq!(value(&before, &limit), None, "no nodes limit is set: {before}");
    }
    let limit = |r: &str| value(&before, &format!("capstan_nodepool_limit{{nodepool=\"arm64\",resource=\"{r}\"}}"));
    assert_eq!((limit("cpu"), limit("memory")), (Some(64.0), Some(256.0 * (1u64 << 30) as f64)), "{before}");
    assert!(before.contains("\ncapstan_cost_per_hour_dollars 0.0\n"), "{before}");
    assert!(value(&before, "capstan_last_successful_pass_timestamp_seconds").unwrap() > 1.7e9, "{before}");
    for reason in ["fetch", "rejected"] {
        let series = format!("capstan_policy_failures_total{{reason=\"{reason}\"}}");
        assert_eq!(value(&before, &series), Some(0.0), "{series}: {before}");
    }
    let throttled = "capstan_cloud_errors_total{operation=\"create\",kind=\"throttled\"}";
    assert_eq!(value(&before, throttled), Some(0.0), "{before}");
    assert_eq!(value(&before, "capstan_fleet_halts_total{cluster=\"dev\"}"), Some(0.0), "{before}");

    assert_eq!(request(&d.addr, "POST", "/sim/scale?deployment=inflate&replicas=16").0, 200);
    let mut after = String::new();
    wait("a node serving inflate", Duration::from_secs(60), || {
        after = scrape(&d.addr);
        value(&after, "capstan_nodepool_nodes{nodepool=\"arm64\"}").is_some_and(|n| n >= 1.0)
    });
    assert!(value(&after, "capstan_cost_per_hour_dollars").unwrap() > 0.0, "{after}");
    let cpu = value(&after, "capstan_nodepool_usage{nodepool=\"arm64\",resource=\"cpu\"}").unwrap();
    assert!(cpu >= 16.0, "16 pods of 1 cpu: {after}");
    let last = value(&after, "capstan_last_successful_pass_timestamp_seconds").unwrap();
    assert!(last >= value(&before, "capstan_last_successful_pass_timestamp_seconds").unwrap(), "{after}");
    assert!(value(&after, "capstan_nodeclaims_launched_total{nodepool=\"arm64\"}").unwrap() >= 1.0, "{after}");
    assert_eq!(value(&after, "capstan_nodeclaims_launched_total{nodepool=\"spot\"}"), Some(0.0), "{after}");

    // Every line written so far is one JSON object with a level and a message, and no colour.
    let lines = lines.lock().unwrap().clone();
    assert!(lines.len() > 2, "{lines:?}");
    for line in &lines {
        assert!(!line.contains('\x1b'), "an escape code: {line:?}");
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["message"].is_string() && v["timestamp"].is_string(), "{line}");
    }
    // The capacity loop's events carry the revision, and their pass's span the cluster.
    let launch = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["event"] == "launch")
        .unwrap_or_else(|| panic!("a launch event in {lines:#?}"));
    assert!(launch["revision"].as_str().unwrap().starts_with("main@sha1:"), "{launch}");
    assert_eq!(launch["span"]["cluster"], "dev", "{launch}");
}
