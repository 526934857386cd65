//! The reports of `capstan simulate`: text and Markdown on hand-built outcomes, and the HTML page
//! of a real run opened in headless Chromium through Playwright.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use capstan::whatif::{Breach, ClusterOutcome, Percentiles, Report, Run, Sample, Side, TraceInfo};
use serde_json::Value;

use crate::common::{capstan, example_fleet, root};
use crate::gitops::git;

/// A run costing `cost` over the day with pending p99 `p99` and `disrupted` empty nodes.
fn run(rev: &str, cost: f64, p99: f64, disrupted: usize) -> Run {
    let series = (0..24u64)
        .map(|h| Sample {
            t: h * 3600,
            nodes: 3 + (h as usize % 5),
            cost_per_hour: cost / 24.0,
            pending_pods: h as usize % 3,
            disruptions: usize::from(h == 5) * disrupted,
        })
        .collect();
    Run {
        revision: rev.into(),
        cost_usd: cost,
        cost_per_hour: cost / 24.0,
        nodes_avg: 5.0,
        nodes_peak: 7,
        instance_types: BTreeMap::from([("m6i.large".into(), 80.0), ("c6i.xlarge".into(), 40.0)]),
        capacity_types: BTreeMap::from([("on-demand".into(), 120.0)]),
        pending: Percentiles { p50: 2.0, p95: p99 / 2.0, p99, max: p99 + 10.0 },
        pods_scheduled: 100,
        disruptions: BTreeMap::from([("empty".into(), disrupted)]),
        series,
        ..Run::default()
    }
}

fn outcome(cluster: &str, base: Run, head: Run) -> ClusterOutcome {
    ClusterOutcome { cluster: cluster.into(), base, head, breaches: vec![] }
}

fn report(clusters: Vec<ClusterOutcome>) -> Report {
    Report {
        trace: TraceInfo { name: "diurnal-web".into(), seconds: 86_400, events: 48, peak_pods: 120 },
        base: Side { rev: "main".into(), sha: "1a2b3c4d5e6f".into() },
        head: Side { rev: "cheaper-pools".into(), sha: "9f8e7d6c5b4a".into() },
        clusters,
    }
}

/// dev: 12 % cheaper, pending p99 4 s slower, 3 fewer disruptions.
fn cheaper() -> Report {
    report(vec![outcome("dev", run("main", 100.0, 20.0, 5), run("cheaper-pools", 88.0, 24.0, 2))])
}

fn breach() -> Breach {
    Breach {
        rule: "maxPendingP99".into(),
        limit: "10s".into(),
        actual: "24s".into(),
        message: "pods wait longer than the guardrail allows".into(),
    }
}

#[test]
fn markdown_starts_with_the_marker_and_signs_the_changes() {
    let md = capstan::whatif::markdown::markdown(&cheaper());
    let mut lines = md.lines();
    assert_eq!(lines.next(), Some(capstan::whatif::markdown::MARKER));
    assert_eq!(
        lines.next(),
        Some("**capstan simulate** (trace diurnal-web, 24h): cost −12.0 %, pending p99 +4 s, disruptions −3")
    );
    assert!(md.contains("| cost total ($) | 100.00 | 88.00 | −12.0 % |"), "{md}");
    assert!(md.contains("| pending p99 (s) | 20 | 24 | +4 s |"), "{md}");
    assert!(md.contains("| disruptions (total) | 5 | 2 | −3 |"), "{md}");
    assert!(md.contains("| launches | 0 | 0 | — |"), "{md}");
    for summary in ["Instance-type mix (node-hours)", "Capacity-type mix (node-hours)", "Disruptions by reason"] {
        assert!(md.contains(&format!("<details><summary>{summary}</summary>")), "{summary} missing:\n{md}");
    }
    assert!(!md.contains("left out"), "nothing is dropped from a small report:\n{md}");
}

#[test]
fn an_unchanged_outcome_says_no_change() {
    let same = report(vec![outcome("dev", run("main", 50.0, 8.0, 1), run("main", 50.0, 8.0, 1))]);
    let md = capstan::whatif::markdown::markdown(&same);
    assert!(md.lines().nth(1).unwrap().ends_with("): no change"), "{md}");
    let text = capstan::whatif::text::text(&same);
    assert!(text.starts_with("capstan simulate (trace diurnal-web, 24h): no change\n"), "{text}");
}

#[test]
fn breaches_come_before_the_tables() {
    let mut r = cheaper();
    r.clusters[0].breaches.push(breach());
    let md = capstan::whatif::markdown::markdown(&r);
    assert!(md.lines().nth(1).unwrap().ends_with(", ❌ 1 guardrail breach"), "{md}");
    let listed = md.find("- ❌ **maxPendingP99**: pods wait longer than the guardrail allows").expect("breach listed");
    assert!(listed < md.find("| metric |").unwrap(), "{md}");
    let text = capstan::whatif::text::text(&r);
    assert!(text.contains("guardrail breaches\n  ✗ dev: maxPendingP99: pods wait longer"), "{text}");
}

#[test]
fn cells_escape_pipes_and_angle_brackets() {
    let mut r = cheaper();
    r.clusters[0].head.instance_types.insert("odd|type<b>".into(), 1.0);
    let md = capstan::whatif::markdown::markdown(&r);
    assert!(md.contains("| odd\\|type&lt;b> | 0.0 | 1.0 | +1.0 |"), "{md}");
    assert!(!md.contains("type<b>"), "{md}");
}

#[test]
fn text_has_an_aligned_table_per_cluster() {
    let mut r = cheaper();
    r.clusters.push(outcome("prod", run("main", 10.0, 1.0, 0), run("cheaper-pools", 10.0, 1.0, 0)));
    let text = capstan::whatif::text::text(&r);
    assert!(text.contains("base main (1a2b3c4) → head cheaper-pools (9f8e7d6)"), "{text}");
    assert!(text.contains("\ncluster dev\n") && text.contains("\ncluster prod\n"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("  cost total ($)")).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[0].ends_with("  100.00  88.00  −12.0 %"), "{:?}", rows[0]);
    let header = text.lines().find(|l| l.trim_start().starts_with("metric")).unwrap();
    assert_eq!(header.chars().count(), rows[0].chars().count(), "columns align:\n{text}");
}

#[test]
fn two_hundred_clusters_fit_in_a_github_comment() {
    let many = |rev: &str, cost: f64| {
        let mut r = run(rev, cost, 30.0, 4);
        r.instance_types = (0..40).map(|i| (format!("m{i}i.{}xlarge", i % 8), i as f64)).collect();
        r
    };
    let clusters =
        (0..200).map(|i| outcome(&format!("cluster-{i:03}"), many("main", 100.0), many("head", 90.0 + i as f64 % 3.0)));
    let mut r = report(clusters.collect());
    r.clusters[150].breaches.push(breach());
    let md = capstan::whatif::markdown::markdown(&r);
    assert!(md.chars().count() < 65_536, "{} characters", md.chars().count());
    assert!(md.len() <= 60_000, "{} bytes", md.len());
    assert!(md.starts_with(capstan::whatif::markdown::MARKER));
    let note = md.lines().find(|l| l.contains("were left out")).expect("a line says what was dropped");
    assert!(note.contains("details sections"), "{note}");
    assert!(md.contains("### cluster-000"), "the first clusters keep their tables");
    assert!(md.contains("### cluster-150"), "a cluster with a breach keeps its table");
    assert!(md.contains("❌ **maxPendingP99**"), "the breach stays listed");
}

#[test]
fn html_marks_every_chart_and_loads_nothing() {
    let mut r = cheaper();
    r.clusters.push(outcome("prod", run("main", 10.0, 1.0, 0), run("cheaper-pools", 12.0, 1.0, 1)));
    let html = capstan::whatif::html::html(&r);
    for cluster in ["dev", "prod"] {
        for chart in ["nodes", "cost-per-hour", "pending-pods", "disruptions"] {
            let mark = format!("<figure class=\"chart\" data-chart=\"{chart}\" data-cluster=\"{cluster}\">");
            assert_eq!(html.matches(&mark).count(), 1, "{mark}");
        }
    }
    assert_eq!(html.matches("<svg").count(), 8);
    for bad in ["<script", " src=", " href=", "@import", "url("] {
        assert!(!html.contains(bad), "{bad} in the page");
    }
}

/// Opens `page` in headless Chromium, saves a full-page screenshot to `png` and returns what
/// the page did: requests, console errors and the lines drawn in each chart.
fn open_in_chromium(page: &Path, png: &Path) -> Value {
    crate::common::node_script("tests/it/whatif/report.mjs", &[page.as_os_str(), png.as_os_str()])
}

const TRACE: &str = "apiVersion: capstan.io/v1alpha1
kind: Trace
metadata: {name: small}
spec:
  duration: 20m
  workloads:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: default}
    spec:
      replicas: 0
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: c, image: pause, resources: {requests: {cpu: \"1\"}}}]}
  events:
  - {at: 10s, scale: {name: web, replicas: 12}}
  - {at: 10m, scale: {name: web, replicas: 2}}
";

/// The example fleet committed, then a head commit that caps the arm64 NodePool (where the
/// trace's pods go first) at 4 CPUs, so the rest spill to pricier nodes.
fn example_history(dir: &Path) -> PathBuf {
    let work = example_fleet(dir);
    let pool = work.join("base/nodepools/arm64.yaml");
    let text = std::fs::read_to_string(&pool).unwrap();
    assert!(text.contains("cpu: \"64\""), "the arm64 NodePool's limit moved:\n{text}");
    std::fs::write(&pool, text.replace("cpu: \"64\"", "cpu: \"4\"")).unwrap();
    git(&work, &["commit", "-q", "-am", "Cap the arm64 NodePool"]);
    work
}

#[test]
fn the_html_report_opens_offline_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let work = example_history(dir.path());
    let trace = dir.path().join("trace.yaml");
    std::fs::write(&trace, TRACE).unwrap();
    let page = dir.path().join("report.html");
    let (w, t, p) = (work.to_str().unwrap(), trace.to_str().unwrap(), page.to_str().unwrap());
    let run = capstan(&[
        "simulate",
        w,
        "--base",
        "HEAD~1",
        "--head",
        "HEAD",
        "--trace",
        t,
        "--cluster",
        "dev",
        "--format",
        "html",
        "--out",
        p,
    ]);
    // 0 within the outcome guardrails, 1 outside them: either way the page is written.
    assert!(matches!(run.code, 0 | 1) && page.is_file(), "exit {}, no page:\n{}{}", run.code, run.stdout, run.stderr);

    let png = root().join("target/test-env/screenshots/simulate-report.png");
    std::fs::create_dir_all(png.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&png);
    let seen = open_in_chromium(&page, &png);
    println!("screenshot: {}", png.display());

    assert_eq!(seen["requests"], serde_json::json!([]), "the page fetched something: {seen:#}");
    assert_eq!(seen["consoleErrors"], serde_json::json!([]), "{seen:#}");
    let charts = seen["charts"].as_array().expect("charts");
    let names: Vec<&str> = charts.iter().map(|c| c["chart"].as_str().unwrap()).collect();
    assert_eq!(names, ["nodes", "cost-per-hour", "pending-pods", "disruptions"], "{seen:#}");
    for c in charts {
        assert_eq!(c["cluster"], "dev", "{c}");
        for side in ["base", "head"] {
            let points = c[side].as_u64().unwrap_or(0);
            assert!(points >= 2, "{} has no {side} line: {c}", c["chart"]);
        }
    }
    let bytes = std::fs::read(&png).expect("screenshot saved");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000, "{} bytes", bytes.len());
}
