//! `capstan nodes` as a person runs it: against `capstan run` on the simulated backends, the node
//! that serves `inflate` and then none; and the errors met first (nothing listening, https).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::example_fleet;
use crate::daemon::{example_config, request, start, wait};

/// Exit code, standard output and standard error of `capstan nodes ARGS` (not a terminal).
fn nodes(args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_capstan")).arg("nodes").args(args).env_remove("NO_COLOR").output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// The board the daemon serves, once built.
fn board(addr: &str) -> Option<Value> {
    let (code, body) = request(addr, "GET", "/status/board");
    (code == 200).then(|| serde_json::from_str::<Value>(&body).unwrap()["board"].clone())
}

/// Polls the board until `ok`; the last one is shown when it never is.
fn until(addr: &str, what: &str, limit: Duration, ok: impl Fn(&Value) -> bool) {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < limit {
        last = board(addr);
        if last.as_ref().is_some_and(&ok) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}; the board: {last:#?}");
}

#[test]
fn nodes_shows_the_daemons_nodes_then_none() {
    let dir = tempfile::tempdir().unwrap();
    let repo = example_fleet(dir.path());
    // Thirty simulated seconds per second: a node is Ready within seconds.
    let config = example_config(dir.path(), &repo, 30);
    let d = start(&config);
    let url = format!("http://{}", d.addr);
    wait("ready", Duration::from_secs(30), || request(&d.addr, "GET", "/readyz").0 == 200);
    assert_eq!(request(&d.addr, "POST", "/sim/scale?deployment=inflate&replicas=16").0, 200);
    // The example policy serves 16 pods of 1 cpu with Graviton nodes of the arm64 pool.
    let served = |b: &Value| {
        let nodes = b["nodes"].as_array().unwrap();
        let ready = nodes.iter().all(|n| n["state"] == "ready");
        ready && nodes.iter().map(|n| n["pods"].as_u64().unwrap()).sum::<u64>() == 16
    };
    until(&d.addr, "Ready nodes with the 16 pods", Duration::from_secs(60), served);

    let (code, out, err) = nodes(&["--url", &url]);
    eprintln!("{out}");
    assert_eq!(code, 0, "{err}");
    let b = board(&d.addr).unwrap();
    assert!(served(&b), "the nodes are still there: {b:#}");
    for node in b["nodes"].as_array().unwrap() {
        let name = node["name"].as_str().unwrap();
        let line = out.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("{name} in {out}"));
        assert!(line.contains(node["instanceType"].as_str().unwrap()), "{line}");
        assert!(line.contains(&format!(" {}/{} pods", node["pods"], node["maxPods"])), "{line}");
        assert!(line.contains("on-demand") || line.contains("spot"), "{line}");
        assert!(line.contains(&format!("${:.4}/h", node["pricePerHour"].as_f64().unwrap())), "{line}");
        assert!(line.ends_with("Ready"), "{line}");
    }
    assert!(out.starts_with("cluster dev  revision main@sha1:"), "{out}");
    assert!(out.contains("16 pods (16 running)"), "{out}");
    assert!(out.contains("nodepool arm64  "), "{out}");
    let per_hour = b["cost"]["perHour"].as_f64().unwrap();
    assert!(per_hour > 0.0 && out.contains(&format!("cost ${per_hour:.3}/hour $")), "{out}");
    assert!(out.contains("\npending 0 pods\n") && !out.contains('\x1b'), "{out}");

    let (code, painted, _) = nodes(&["--url", &url, "--color", "always"]);
    assert!(code == 0 && painted.contains("\x1b[32mReady\x1b[0m"), "{painted:?}");

    // --json: the board as served, for scripts.
    let (code, json, err) = nodes(&["--url", &url, "--json"]);
    assert_eq!(code, 0, "{err}");
    let served: Value = serde_json::from_str(&json).unwrap();
    assert!(served["board"]["nodes"].is_array() && served["builtAt"].is_number(), "{json}");

    assert_eq!(request(&d.addr, "POST", "/sim/scale?deployment=inflate&replicas=0").0, 200);
    until(&d.addr, "no nodes", Duration::from_secs(120), |b| b["nodes"].as_array().unwrap().is_empty());
    let (code, out, err) = nodes(&["--url", &url]);
    eprintln!("{out}");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\nno nodes\n") && out.contains("cost $0.000/hour"), "{out}");
}

#[test]
fn nodes_says_what_to_do_when_it_cannot_reach_the_daemon() {
    let (code, out, err) = nodes(&["--url", "http://127.0.0.1:1"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.starts_with("error: cannot reach capstan at http://127.0.0.1:1: "), "{err}");
    assert!(err.contains("is `capstan run` listening there?") && err.contains("kubectl port-forward"), "{err}");

    let (code, _, err) = nodes(&["--url", "https://capstan.example.com"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("plain http://") && err.contains("kubectl port-forward"), "{err}");
    let (code, _, err) = nodes(&["--url", "not a url"]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = nodes(&["--colour"]);
    assert_eq!(code, 3, "{err}");
}
