//! `capstan demo`, the README's first command: the whole proof-of-concept story, as a process,
//! and its HTML page opened in headless Chromium through Playwright.

use std::process::Command;

use serde_json::{Value, json};

use crate::common::root;

fn demo(args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("demo")
        .args(["--state-dir", dir.path().to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn the_json_timeline_tells_the_whole_story_in_order() {
    let (ok, stdout, stderr) = demo(&["--json"]);
    assert!(ok, "{stderr}\n{stdout}");
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let at = |event: &str| {
        lines.iter().position(|l| l["event"] == event).unwrap_or_else(|| panic!("no {event} event in\n{stdout}"))
    };
    let order =
        ["scale-up-decision", "launch", "node-ready", "pods-running", "disruption-decision", "terminate", "summary"];
    let positions: Vec<usize> = order.iter().map(|e| at(e)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{order:?} at {positions:?}");
    for l in &lines {
        assert!(l["t"].is_number() && l["event"].is_string() && l["detail"].is_object(), "{l}");
    }
    assert_eq!(lines[at("pods-running")]["detail"]["running"], 16);
    let decision = &lines[at("scale-up-decision")]["detail"];
    let pods: u64 = decision["claims"].as_array().unwrap().iter().map(|c| c["pods"].as_u64().unwrap()).sum();
    assert_eq!(pods, 16);
    let summary = &lines[at("summary")]["detail"];
    let ready = summary["secondsToReady"].as_f64().unwrap();
    assert!((110.0..=130.0).contains(&ready), "node Ready in about two minutes: {ready}");
    assert!(summary["secondsToScaleDown"].as_f64().unwrap() < 120.0);
    assert!(summary["costUsd"].as_f64().unwrap() > 0.0);
    assert!(summary["revision"].as_str().unwrap().contains("@"));
}

#[test]
fn the_text_timeline_ends_with_a_summary() {
    let (ok, stdout, stderr) = demo(&[]);
    assert!(ok, "{stderr}\n{stdout}");
    assert!(stdout.contains("16/16 pods of inflate Running"), "{stdout}");
    assert!(stdout.contains("node Ready after scale-up:"), "{stdout}");
    assert!(stdout.contains("terminate"), "{stdout}");
}

#[test]
fn a_story_that_cannot_complete_fails() {
    // 400 pods of 1 cpu exceed every limit of the example policy: they never all run.
    let (ok, _, stderr) = demo(&["--replicas", "400"]);
    assert!(!ok);
    assert!(stderr.contains("did not complete"), "{stderr}");
}

#[test]
fn the_fleet_story_rolls_out_wave_by_wave_and_halts_a_bad_commit_at_dev() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["demo", "fleet", "--json", "--state-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let steps = |event: &str, cluster: &str| -> Vec<&Value> {
        lines.iter().filter(|l| l["event"] == event && l["detail"]["cluster"] == cluster).collect()
    };
    for (event, cluster) in [
        ("applied", "dev"),
        ("soaking", "dev"),
        ("healthy", "dev"),
        ("promoted", "staging"),
        ("promoted", "prod"),
        ("halted", "dev"),
        ("rolled-back", "dev"),
    ] {
        assert!(!steps(event, cluster).is_empty(), "no {event} on {cluster} in\n{stdout}");
    }
    // Each wave takes the good commit only after the previous one held it healthy for its soak.
    let commits: Vec<&Value> = lines.iter().filter(|l| l["event"] == "commit").collect();
    let good = commits[1]["detail"]["sha"].as_str().unwrap();
    let bad = commits[2]["detail"]["sha"].as_str().unwrap();
    let time = |event: &str, cluster: &str, sha: &str| {
        steps(event, cluster)
            .iter()
            .find(|l| l["detail"]["to"].as_str().is_some_and(|t| t.ends_with(sha)))
            .map(|l| l["t"].as_f64().unwrap())
            .unwrap_or_else(|| panic!("no {event} of {sha} on {cluster}"))
    };
    assert!(time("applied", "staging", good) >= time("healthy", "dev", good));
    assert!(time("applied", "staging", good) - time("applied", "dev", good) >= 600.0);
    assert!(time("applied", "prod", good) >= time("healthy", "staging", good));
    for cluster in ["staging", "prod"] {
        assert!(
            steps("applied", cluster).iter().all(|l| !l["detail"]["to"].as_str().unwrap().ends_with(bad)),
            "{cluster} took the halted commit"
        );
    }
    let summary = lines.last().unwrap();
    assert_eq!(summary["event"], "summary");
    let rows = summary["detail"]["clusters"].as_array().unwrap();
    assert_eq!(rows[0]["state"], "rolled-back");
    assert!(rows.iter().all(|r| r["inForce"].as_str().unwrap().ends_with(good)), "{rows:?}");
    assert!(rows[0]["halted"].as_array().unwrap().iter().any(|h| h.as_str().unwrap().ends_with(bad)));
}

/// `(event, t)` pairs in the order of time, then name.
fn moments<'a>(pairs: impl Iterator<Item = (&'a Value, &'a Value)>) -> Vec<(String, f64)> {
    let mut m: Vec<(String, f64)> =
        pairs.map(|(event, t)| (event.as_str().unwrap().to_string(), t.as_f64().unwrap())).collect();
    m.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    m
}

/// The loop's decisions, which the page marks on every chart.
const DECISIONS: [&str; 5] = ["scale-up-decision", "launch", "disruption-decision", "cordon", "terminate"];

#[test]
fn the_html_page_draws_the_story_and_opens_offline_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("demo.html");
    let (ok, stdout, stderr) = demo(&["--json", "--html", page.to_str().unwrap()]);
    assert!(ok && page.is_file(), "no page:\n{stderr}\n{stdout}");
    assert!(stderr.contains(&format!("wrote {}", page.display())), "{stderr}");
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let events: Vec<&Value> = lines.iter().filter(|l| l["event"] != "summary").collect();
    let launches: Vec<&Value> = events.iter().copied().filter(|l| l["event"] == "launch").collect();
    let decisions = moments(
        events.iter().filter(|l| DECISIONS.contains(&l["event"].as_str().unwrap())).map(|l| (&l["event"], &l["t"])),
    );
    assert!(launches.len() >= 2 && decisions.len() > launches.len(), "{stdout}");

    let png = root().join("target/test-env/screenshots/demo-timeline.png");
    std::fs::create_dir_all(png.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&png);
    let seen = crate::common::node_script("tests/it/demo_page.mjs", &[page.as_os_str(), png.as_os_str()]);
    println!("screenshot: {}", png.display());

    assert_eq!(seen["requests"], json!([]), "the page fetched something: {seen:#}");
    assert_eq!(seen["consoleErrors"], json!([]), "{seen:#}");
    let story = &seen["story"];
    let charts = story["charts"].as_array().expect("charts");
    let names: Vec<&str> = charts.iter().map(|c| c["chart"].as_str().unwrap()).collect();
    assert_eq!(names, ["nodes", "pods", "cost-per-hour"], "{seen:#}");
    for c in charts {
        let markers = c["markers"].as_array().unwrap();
        assert!(markers.iter().all(|m| m["drawn"] == true), "a marker is not on screen: {c:#}");
        let marked = moments(markers.iter().map(|m| (&m["marker"], &m["t"])));
        assert_eq!(marked, decisions, "the markers of {} are not the timeline's decisions", c["chart"]);
    }
    // Pods wait, then run, then go; the cost rises with the launches and falls to zero.
    for (chart, line) in [(1, "pending"), (1, "running"), (2, "cost-per-hour")] {
        let points = charts[chart]["lines"][line].as_u64().unwrap_or(0);
        assert!(points >= 4, "no {line} line in {}: {seen:#}", charts[chart]["chart"]);
    }

    // One bar per launch, labelled and marked as the launch says, each through its whole life.
    let bars = charts[0]["bars"].as_array().unwrap();
    assert_eq!(bars.len(), launches.len(), "{seen:#}");
    for (bar, launch) in bars.iter().zip(&launches) {
        let d = &launch["detail"];
        assert_eq!(bar["instance"], d["instance"], "{bar}");
        assert_eq!(bar["instanceType"], d["instanceType"], "{bar}");
        assert_eq!(bar["capacityType"], d["capacityType"], "{bar}");
        assert_eq!(bar["pricePerHour"], d["pricePerHour"], "{bar}");
        let label = bar["label"].as_str().unwrap();
        assert!(label.contains(d["instanceType"].as_str().unwrap()) && label.contains("on-demand"), "{label}");
        assert!(label.contains(&format!("${:.4}/h", d["pricePerHour"].as_f64().unwrap())), "{label}");
        assert_eq!(bar["phases"], json!(["launching", "registered", "ready", "draining"]), "{bar}");
    }

    // The table lists the timeline, every event in order.
    let rows = story["rows"].as_array().unwrap();
    let table: Vec<(&str, f64)> =
        rows.iter().map(|r| (r["event"].as_str().unwrap(), r["t"].as_f64().unwrap())).collect();
    let timeline: Vec<(&str, f64)> =
        events.iter().map(|l| (l["event"].as_str().unwrap(), l["t"].as_f64().unwrap())).collect();
    assert_eq!(table, timeline);

    let bytes = std::fs::read(&png).expect("screenshot saved");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000, "{} bytes", bytes.len());
}

#[test]
fn an_html_file_that_cannot_be_written_fails_before_the_story() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("missing/demo.html");
    let (ok, stdout, stderr) = demo(&["--html", page.to_str().unwrap()]);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains(&format!("error: cannot write {}", page.display())), "{stderr}");
    assert!(stdout.is_empty(), "the story ran: {stdout}");
}
