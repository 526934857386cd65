//! The daemon's status page in headless Chromium (Debian's `chromium`, driven by Playwright):
//! `capstan run` with the example config on the simulated backends, `inflate` scaled 0 → 16 → 0
//! and two policy commits, one good and one rejected, each seen on the page without a reload.
//! The screenshots go to `target/test-env/screenshots/`; `status-scaled-up.png` is the README's.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::{example_fleet, root};
use crate::daemon::{example_config, request, start, wait};

/// Simulated seconds per second: a node is Ready (121 simulated seconds) in about a second.
const SPEED: u32 = 100;

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git").current_dir(repo).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Replaces `from` with `to` in the arm64 NodePool and commits; returns the commit.
fn commit(repo: &Path, from: &str, to: &str, message: &str) -> String {
    let file = repo.join("base/nodepools/arm64.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(from), "{from} in {}", file.display());
    std::fs::write(&file, text.replacen(from, to, 1)).unwrap();
    git(repo, &["commit", "-q", "-am", message]);
    git(repo, &["rev-parse", "HEAD"])
}

/// The raw answer to `GET path` sent with `Host: host`.
fn raw_get(addr: &str, path: &str, host: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

/// A child process killed when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn screenshots() -> PathBuf {
    let dir = root().join("target/test-env/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_status_page_shows_the_proof_of_concept_live() {
    let dir = tempfile::tempdir().unwrap();
    let repo = example_fleet(dir.path());
    let d = start(&example_config(dir.path(), &repo, SPEED));
    wait("ready", std::time::Duration::from_secs(30), || request(&d.addr, "GET", "/readyz").0 == 200);
    // A name pointed at the daemon by someone else's page (DNS rebinding) gets no board.
    let rebound = raw_get(&d.addr, "/status/board", "attacker.example.com");
    assert!(rebound.starts_with("HTTP/1.1 421"), "{rebound}");
    let local = raw_get(&d.addr, "/status", &d.addr);
    assert!(local.starts_with("HTTP/1.1 200"), "{local}");

    let (chromium, playwright) = crate::common::browser();
    let mut node = Command::new("node")
        .arg(root().join("tests/it/status_page.mjs"))
        .arg(format!("http://{}/", d.addr))
        .arg(screenshots())
        .env("CAPSTAN_TEST_CHROMIUM", chromium)
        .env("CAPSTAN_TEST_PLAYWRIGHT", playwright)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut to_page = node.stdin.take().unwrap();
    let lines = BufReader::new(node.stdout.take().unwrap()).lines();
    // Chromium goes with the script, whatever the test's end.
    let mut node = Killed(node);
    let mut steps: Vec<Value> = Vec::new();
    for line in lines {
        let line = line.unwrap();
        let step: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        eprintln!("page: {line}");
        let sha = match step["step"].as_str() {
            Some("commit") => Some(commit(&repo, "cpu: \"64\"", "cpu: \"96\"", "Raise the arm64 cpu limit")),
            Some("bad-commit") => {
                Some(commit(&repo, "cpu: \"96\"", "cpu: \"lots\"", "A cpu limit that is no quantity"))
            }
            _ => None,
        };
        if let Some(sha) = sha {
            writeln!(to_page, "{sha}").unwrap();
        }
        steps.push(step);
    }
    assert!(node.0.wait().unwrap().success(), "the page script failed: {steps:?}");
    let step = |name: &str| steps.iter().find(|s| s["step"] == name).unwrap_or_else(|| panic!("no {name}: {steps:?}"));

    let loaded = step("loaded");
    assert_eq!(loaded["cluster"], "dev");
    assert_eq!(loaded["nodes"], 0);
    let first = git(&repo, &["rev-list", "--max-parents=0", "HEAD"]);
    assert_eq!(loaded["revision"], format!("main@sha1:{first}"));

    let up = step("scaled-up");
    assert!(up["nodesAfter"].as_f64().unwrap() <= 5.0, "nodes appeared {}s after the scale", up["nodesAfter"]);
    assert!(up["podsAfter"].as_f64().unwrap() <= 5.0, "pods on nodes {}s after the scale", up["podsAfter"]);
    let nodes = up["nodes"].as_array().unwrap();
    assert!(nodes.iter().map(|n| n["pods"].as_u64().unwrap()).sum::<u64>() >= 16, "{nodes:?}");
    for n in nodes {
        assert_eq!(n["state"], "ready", "{n}");
        let text = n["text"].as_str().unwrap();
        assert!(text.contains("on-demand") && text.contains("/h") && text.contains("pods"), "{text}");
    }
    assert!(up["cost"].as_str().unwrap().starts_with('$'), "{up}");
    assert_eq!(up["decisions"][0], "launch", "newest decision first: {up}");

    // The page polls each second and the simulated drain takes a fraction of one: the states
    // between Ready and gone are seldom drawn, but a node must never look like it is launching.
    let down = step("scaled-down");
    let states: Vec<&str> = down["states"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(states.iter().all(|s| ["ready", "cordoned", "draining", "terminating"].contains(s)), "{down}");
    let decisions: Vec<&str> = down["decisions"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let count = |action: &str| decisions.iter().filter(|d| **d == action).count();
    assert_eq!(decisions[0], "terminate", "newest first: {down}");
    assert_eq!((count("disrupt"), count("terminate"), count("launch")), (2, 2, 2), "{down}");

    let committed = step("committed");
    assert!(committed["revision"].as_str().unwrap().starts_with("main@sha1:"), "{committed}");
    let rejected = step("rejected");
    assert_eq!(rejected["inForce"], committed["revision"], "the good revision stays in force");
    let errors: Vec<&str> = rejected["errors"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(
        errors.iter().any(|e| e.contains("base/nodepools/arm64.yaml:") && e.contains("lots")),
        "the error names the file and line: {errors:?}"
    );

    let done = step("done");
    assert_eq!(done["consoleErrors"], serde_json::json!([]), "console errors");
    assert_eq!(done["outside"], serde_json::json!([]), "requests leaving the daemon");
}

/// At 5,000 nodes and 150,000 pods the page draws tiles, counts pods by owner, and still draws
/// each new board: the numbers are printed (what they are on this machine is for a person to
/// read, not a limit the test holds).
#[test]
fn the_status_page_draws_five_thousand_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("board.json");
    let out = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["bench", "board", "--rounds", "1", "--json", "--out", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bench: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bench["nodes"], 5000);
    assert!(bench["pods"].as_u64().unwrap() >= 150_000, "{bench}");
    assert_eq!(bench["podsListed"], false, "{bench}");

    let (page_dir, png) = (root().join("src/view/page"), screenshots().join("status-5000-nodes.png"));
    let args = [page_dir.as_os_str(), file.as_os_str(), png.as_os_str()];
    let seen = crate::common::node_script("tests/it/status_page_large.mjs", &args);
    eprintln!("5,000 nodes, {} pods, {} bytes: {seen}", bench["pods"], bench["bytes"]);
    assert_eq!(seen["tiles"], 5000, "{seen}");
    assert_eq!(seen["cards"], 0, "{seen}");
    assert_eq!(seen["nodeCount"], "5000");
    assert_eq!(seen["consoleErrors"], serde_json::json!([]));
    assert_eq!(seen["outside"], serde_json::json!([]));
    assert_eq!(seen["renderMs"].as_array().unwrap().len(), 3, "{seen}");
}
