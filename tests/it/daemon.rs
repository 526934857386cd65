//! `capstan run` as a process: it follows a real Git repository, serves /status, /metrics and
//! the health endpoints, drives the simulated cluster, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::gitops::Repos;

pub fn request(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: capstan\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let code = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

pub fn status(addr: &str) -> Value {
    let (code, body) = request(addr, "GET", "/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

pub fn wait(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

pub struct Daemon {
    pub child: Child,
    pub addr: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

pub fn start(config: &std::path::Path) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["run", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the daemon prints its address").unwrap();
        if let Some(a) = line.strip_prefix("capstan: listening on http://") {
            break a.to_string();
        }
    };
    // The daemon's log, shown with a failing test.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("capstan: {line}");
        }
    });
    Daemon { child, addr }
}

/// `examples/capstan.yaml` with what a test must change: the repository (a throwaway copy of
/// the example fleet, since the test commits to it), the state store, the port, a data folder
/// and the speed of the simulated clock.
pub fn example_config(dir: &Path, repo: &Path, speed: u32) -> std::path::PathBuf {
    let text = std::fs::read_to_string(crate::common::root().join("examples/capstan.yaml")).unwrap();
    let mut cfg: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    cfg["repository"]["url"] = repo.to_str().unwrap().into();
    cfg["repository"].as_mapping_mut().unwrap().remove("path");
    cfg["stateStore"] = format!("file://{}", dir.join("state").display()).into();
    cfg["listen"] = "127.0.0.1:0".into();
    cfg["dataDir"] = dir.join("data").to_str().unwrap().into();
    cfg["sim"]["speed"] = speed.into();
    let workloads = cfg["sim"]["workloads"].as_sequence_mut().unwrap();
    for w in workloads.iter_mut() {
        *w = crate::common::root().join("examples").join(w.as_str().unwrap()).to_str().unwrap().into();
    }
    let path = dir.join("capstan.yaml");
    std::fs::write(&path, serde_yaml::to_string(&cfg).unwrap()).unwrap();
    path
}

#[test]
fn run_follows_commits_and_serves_status_and_metrics() {
    let repos = Repos::new();
    let first = crate::gitops::git(&repos.work(), &["rev-parse", "HEAD"]);
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("inflate.yaml");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/workloads/inflate.yaml"), &workload).unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("capstan.yaml");
    std::fs::write(
        &config,
        format!(
            "cluster: dev\nrepository:\n  url: {}\n  branch: main\n  poll: 1m\nstateStore: file://{}\nbackends: {{cloud: sim, cluster: sim}}\ndataDir: {}\nsim:\n  seedStateStore: true\n  workloads: [inflate.yaml]\n",
            repos.work().display(),
            state.display(),
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut d = start(&config);
    let applied = |addr: &str| status(addr)["appliedRevision"].as_str().unwrap_or_default().to_string();
    wait("the first revision", Duration::from_secs(20), || applied(&d.addr) == format!("main@sha1:{first}"));
    assert_eq!(request(&d.addr, "GET", "/healthz").0, 200);
    wait("ready", Duration::from_secs(10), || request(&d.addr, "GET", "/readyz").0 == 200);
    let metrics = request(&d.addr, "GET", "/metrics").1;
    assert!(
        metrics.contains(&format!("capstan_policy_revision_applied{{revision=\"main@sha1:{first}\"}} 1")),
        "{metrics}"
    );
    assert!(metrics.contains("capstan_pending_pods"), "{metrics}");
    wait("the state store pass", Duration::from_secs(10), || status(&d.addr)["stateStore"]["result"].is_string());

    // A commit lands in the repository; the watch fetches it and it goes in force.
    repos.set_cpu_limit("120");
    let second = repos.commit("Raise the default pool's cpu limit");
    wait("the second revision", Duration::from_secs(10), || applied(&d.addr) == format!("main@sha1:{second}"));

    // The capacity loop acts under the new revision.
    assert_eq!(request(&d.addr, "POST", "/sim/scale?deployment=inflate&replicas=4").0, 200);
    wait("a launch", Duration::from_secs(10), || {
        let s = status(&d.addr);
        s["recentDecisions"].as_array().is_some_and(|ds| ds.iter().any(|x| x["action"] == "launch"))
    });
    let s = status(&d.addr);
    let launch = s["recentDecisions"].as_array().unwrap().iter().find(|x| x["action"] == "launch").unwrap().clone();
    assert_eq!(launch["revision"], format!("main@sha1:{second}"));
    assert!(!s["inFlight"].as_array().unwrap().is_empty());

    Command::new("kill").args(["-TERM", &d.child.id().to_string()]).status().unwrap();
    let start = Instant::now();
    let code = loop {
        if let Some(code) = d.child.try_wait().unwrap() {
            break code;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "{code:?}");
    // The launch decision reached the state store's decision log.
    let log = std::fs::read_dir(state.join("dev.example.com/capstan/decisions")).unwrap().count();
    assert!(log > 0);
}

/// The value of a counter in the daemon's /metrics.
fn counter(addr: &str, name: &str) -> u64 {
    let text = request(addr, "GET", "/metrics").1;
    let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name}: {text}"));
    line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64
}

#[test]
fn an_idle_simulated_cluster_gets_passes_only_at_the_idle_bound() {
    let repos = Repos::new();
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("inflate.yaml");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/workloads/inflate.yaml"), &workload).unwrap();
    let config = dir.path().join("capstan.yaml");
    // Ten simulated seconds per second: the idle bound and the disruption poll (10 s each)
    // come once a wall-clock second.
    std::fs::write(
        &config,
        format!(
            "cluster: dev\nrepository:\n  url: {}\n  branch: main\n  poll: 1m\nstateStore: file://{}\nbackends: {{cloud: sim, cluster: sim}}\ndataDir: {}\nsim:\n  speed: 10\n  seedStateStore: true\n  workloads: [inflate.yaml]\n",
            repos.work().display(),
            dir.path().join("state").display(),
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let d = start(&config);
    wait("ready", Duration::from_secs(20), || request(&d.addr, "GET", "/readyz").0 == 200);
    let passes = "capstan_capacity_passes_total";
    wait("the first pass", Duration::from_secs(10), || counter(&d.addr, passes) > 0);

    // Nothing pending, no node: over 3 s (30 simulated seconds) a pass about every 10
    // simulated seconds, where a fixed 20 ms tick would have run 150.
    let before = counter(&d.addr, passes);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let ran = counter(&d.addr, passes) - before;
    let simulated = started.elapsed().as_secs_f64() * 10.0;
    let bound = (simulated / 10.0).ceil() as u64 + 1;
    assert!(ran <= bound, "{ran} passes in {simulated:.0} simulated seconds of an idle cluster; at most {bound}");
    assert!(ran >= 2, "{ran} passes in {simulated:.0} simulated seconds: the idle bound did not run one");

    // A change still runs a pass at once: scaling up launches.
    assert_eq!(request(&d.addr, "POST", "/sim/scale?deployment=inflate&replicas=2").0, 200);
    wait("a launch", Duration::from_secs(10), || {
        let s = status(&d.addr);
        s["recentDecisions"].as_array().is_some_and(|ds| ds.iter().any(|x| x["action"] == "launch"))
    });
}
