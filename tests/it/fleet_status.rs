//! `capstan fleet status`: a three-wave fleet whose records live in a folder state store.

use std::path::Path;

use capstan::fleet::record::{Held, Phase, Record, Soak};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::common::{CLUSTER_SPEC, NODE_CLASS, NODE_POOL, Run, TempRepo, capstan};

/// A commit both sides of a rollout agree on.
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
/// The commit before it.
const OLD: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// (name, kOps name, wave).
const CLUSTERS: [(&str, &str, u32); 3] =
    [("dev", "dev.example.com", 0), ("staging", "staging.example.com", 1), ("prod", "prod.example.com", 2)];

/// A config repository with dev, staging and prod in waves 0, 1 and 2, and their state store.
struct Fleet {
    repo: TempRepo,
    state: tempfile::TempDir,
}

impl Fleet {
    /// Every cluster's `stateStore` is `store`, or the temporary folder when none is given.
    fn new(store: Option<&str>) -> Fleet {
        let repo = TempRepo { dir: tempfile::tempdir().expect("tempdir") };
        let state = tempfile::tempdir().expect("tempdir");
        let url = store.map_or_else(|| format!("file://{}", state.path().display()), str::to_string);
        let mut fleet =
            String::from("apiVersion: capstan.io/v1alpha1\nkind: Fleet\nmetadata:\n  name: test\nspec:\n  clusters:\n");
        for (name, kops, wave) in CLUSTERS {
            fleet.push_str(&format!(
                "    - name: {name}\n      kopsName: {kops}\n      stateStore: {url}\n      region: us-east-1\n      wave: {wave}\n"
            ));
            repo.write(&format!("clusters/{name}/cluster.yaml"), CLUSTER_SPEC.replace("dev.example.com", kops));
        }
        fleet.push_str("  waves:\n");
        for (_, _, wave) in CLUSTERS {
            fleet.push_str(&format!("    - wave: {wave}\n      soakTime: 10m\n"));
        }
        repo.write("fleet.yaml", fleet);
        repo.write("base/nodeclasses/default.yaml", NODE_CLASS);
        repo.write("base/nodepools/default.yaml", NODE_POOL);
        Fleet { repo, state }
    }

    /// Writes `record` as the `rollout` section of its cluster's status.json.
    fn put(&self, record: &Record) {
        let kops = CLUSTERS.iter().find(|c| c.0 == record.cluster).expect("a fleet cluster").1;
        let path = self.state.path().join(kops).join("capstan/status.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let doc = serde_json::json!({ "rollout": record });
        std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    }

    fn put_all(&self, phases: [Phase; 3]) {
        for ((name, _, wave), phase) in CLUSTERS.into_iter().zip(phases) {
            self.put(&record(name, wave, phase));
        }
    }

    fn status(&self, extra: &[&str]) -> Run {
        let mut args = vec!["fleet", "status", self.repo.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        capstan(&args)
    }
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn held(sha: &str) -> Held {
    Held {
        revision: format!("main@sha1:{sha}"),
        sha: sha.to_string(),
        digest: format!("sha256:{sha}"),
        epoch: sha.to_string(),
        since: at("2025-03-01T10:00:00Z"),
    }
}

/// A record as a daemon in `phase` would write it.
fn record(cluster: &str, wave: u32, phase: Phase) -> Record {
    let mut r = Record {
        cluster: cluster.to_string(),
        wave,
        incarnation: format!("{cluster}-1"),
        heartbeat: 7,
        time: Some(at("2025-03-01T10:30:00Z")),
        accepted: Some(format!("main@sha1:{SHA}")),
        in_force: Some(held(SHA)),
        last_known_good: Some(held(OLD)),
        healthy: true,
        soak: Soak { healthy_since: Some(at("2025-03-01T10:01:00Z")), completed: true },
        soak_seconds: 600,
        phase,
        reason: format!("soaked {SHA:.12} for 10m"),
        ..Record::default()
    };
    match phase {
        Phase::Healthy => r.last_known_good = Some(held(SHA)),
        Phase::Soaking => {
            r.soak.completed = false;
            r.reason = "soaking since 2025-03-01T10:25:00Z (5m of 10m)".to_string();
        }
        Phase::RolledBack => {
            r.in_force = Some(held(OLD));
            r.healthy = true;
            r.reason = format!("rolled back from main@sha1:{SHA}: node NotReady for 3m");
        }
        _ => {}
    }
    r
}

/// The rows of a text table, as (cluster, state).
fn rows(run: &Run) -> Vec<(String, String)> {
    run.stdout
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("fleet:"))
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (cells[0].to_string(), cells[4].to_string())
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// The JSON form, checked to have one entry per cluster in wave order.
fn json(fleet: &Fleet) -> Value {
    let run = fleet.status(&["--format", "json"]);
    let v = run.json();
    let names: Vec<&str> = v["clusters"].as_array().unwrap().iter().map(|c| c["cluster"].as_str().unwrap()).collect();
    assert_eq!(names, ["dev", "staging", "prod"], "{}", run.stdout);
    v
}

#[test]
fn converged_fleet_exits_0() {
    let fleet = Fleet::new(None);
    fleet.put_all([Phase::Healthy; 3]);
    let run = fleet.status(&[]);
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    let header = run.stdout.lines().next().unwrap();
    let words: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(words, ["CLUSTER", "WAVE", "IN", "FORCE", "LAST-KNOWN-GOOD", "STATE", "WHY"], "{header}");
    let column = |line: &str, at: usize| line[at..].split_whitespace().next().map(str::to_string);
    let state_at = header.find("STATE").unwrap();
    for line in run.stdout.lines().skip(1).take(3) {
        assert_eq!(column(line, state_at).as_deref(), Some("healthy"), "aligned under STATE: {line}");
    }
    assert_eq!(rows(&run), pairs(&[("dev", "healthy"), ("staging", "healthy"), ("prod", "healthy")]));
    assert!(run.stdout.contains("main@0123456789ab"), "{}", run.stdout);
    assert!(run.stdout.contains("fleet: converged on main@0123456789ab"), "{}", run.stdout);

    let v = json(&fleet);
    assert_eq!(v["converged"], true);
    assert_eq!(v["halted"], false);
    let dev = &v["clusters"][0];
    assert_eq!(dev["wave"], 0);
    assert_eq!(dev["state"], "healthy");
    assert_eq!(dev["inForce"]["revision"], format!("main@sha1:{SHA}"));
    assert_eq!(dev["lastKnownGood"]["sha"], SHA);
    assert_eq!(dev["healthy"], true);
    assert_eq!(dev["heartbeat"], "dev-1/7");
    assert_eq!(dev["time"], "2025-03-01T10:30:00Z");
    assert_eq!(dev["halted"], serde_json::json!([]));
}

#[test]
fn a_soaking_cluster_is_in_progress() {
    let fleet = Fleet::new(None);
    fleet.put_all([Phase::Healthy, Phase::Healthy, Phase::Soaking]);
    let run = fleet.status(&[]);
    assert_eq!(run.code, 2, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert_eq!(rows(&run), pairs(&[("dev", "healthy"), ("staging", "healthy"), ("prod", "soaking")]));
    assert!(run.stdout.contains("soaking since 2025-03-01T10:25:00Z"), "{}", run.stdout);
    assert!(run.stdout.contains("fleet: in progress (prod soaking)"), "{}", run.stdout);

    let v = json(&fleet);
    assert_eq!((v["converged"].as_bool(), v["halted"].as_bool()), (Some(false), Some(false)));
    assert_eq!(v["clusters"][2]["state"], "soaking");
}

#[test]
fn a_rolled_back_cluster_is_halted() {
    let fleet = Fleet::new(None);
    let mut staging = record("staging", 1, Phase::RolledBack);
    staging.halted.push(capstan::fleet::record::Halted {
        revision: format!("main@sha1:{SHA}"),
        sha: SHA.to_string(),
        digest: format!("sha256:{SHA}"),
        cluster: "staging".to_string(),
        reason: "node NotReady for 3m".to_string(),
        at: at("2025-03-01T10:20:00Z"),
    });
    fleet.put(&record("dev", 0, Phase::Healthy));
    fleet.put(&staging);
    fleet.put(&record("prod", 2, Phase::Waiting));
    let run = fleet.status(&[]);
    assert_eq!(run.code, 1, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert_eq!(rows(&run), pairs(&[("dev", "healthy"), ("staging", "rolled-back"), ("prod", "waiting")]));
    assert!(run.stdout.contains("main@fedcba987654"), "staging's revision in force: {}", run.stdout);
    assert!(run.stdout.contains("rolled back from"), "{}", run.stdout);
    assert!(run.stdout.contains("fleet: halted (staging rolled-back)"), "{}", run.stdout);

    let v = json(&fleet);
    assert_eq!((v["converged"].as_bool(), v["halted"].as_bool()), (Some(false), Some(true)));
    let staging = &v["clusters"][1];
    assert_eq!(staging["state"], "rolled-back");
    assert_eq!(staging["inForce"]["sha"], OLD);
    assert_eq!(staging["halted"][0]["sha"], SHA);
}

#[test]
fn a_missing_record_is_in_progress() {
    let fleet = Fleet::new(None);
    fleet.put(&record("dev", 0, Phase::Healthy));
    fleet.put(&record("staging", 1, Phase::Healthy));
    let run = fleet.status(&[]);
    assert_eq!(run.code, 2, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert_eq!(rows(&run), pairs(&[("dev", "healthy"), ("staging", "healthy"), ("prod", "missing")]));
    assert!(run.stdout.contains("prod.example.com/capstan/status.json"), "where it looked: {}", run.stdout);

    let v = json(&fleet);
    let prod = &v["clusters"][2];
    assert_eq!(prod["state"], "missing");
    assert_eq!((prod["inForce"].is_null(), prod["healthy"].is_null()), (true, true));
}

#[test]
fn an_unreadable_record_is_in_progress() {
    let fleet = Fleet::new(None);
    fleet.put_all([Phase::Healthy; 3]);
    std::fs::write(fleet.state.path().join("prod.example.com/capstan/status.json"), "{ not json").unwrap();
    let run = fleet.status(&[]);
    assert_eq!(run.code, 2, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert_eq!(rows(&run).last().unwrap(), &("prod".to_string(), "unreadable".to_string()));
    assert!(run.stdout.contains("not JSON"), "{}", run.stdout);
}

#[test]
fn state_store_flag_overrides_every_cluster_store() {
    let fleet = Fleet::new(Some("file:///nonexistent/capstan-fleet-status"));
    fleet.put_all([Phase::Healthy; 3]);
    let url = format!("file://{}", fleet.state.path().display());
    let run = fleet.status(&["--state-store", &url]);
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    let without = fleet.status(&[]);
    assert_eq!(without.code, 2, "the fleet.yaml stores hold nothing: {}", without.stdout);
}

#[test]
fn usage_and_read_errors_exit_3() {
    let fleet = Fleet::new(None);
    fleet.put_all([Phase::Healthy; 3]);

    let missing = Path::new(fleet.repo.path()).join("no-such-folder");
    let run = capstan(&["fleet", "status", missing.to_str().unwrap()]);
    assert_eq!(run.code, 3, "bad repository path; stderr: {}", run.stderr);
    assert!(run.stderr.contains("cannot read config repository"), "{}", run.stderr);

    fleet.repo.remove("fleet.yaml");
    let run = fleet.status(&[]);
    assert_eq!(run.code, 3, "no fleet.yaml; stderr: {}", run.stderr);
    assert!(run.stderr.contains("no fleet.yaml"), "{}", run.stderr);

    fleet.repo.write("fleet.yaml", "apiVersion: capstan.io/v1alpha1\nkind: Fleet\nspec: [\n");
    let run = fleet.status(&[]);
    assert_eq!(run.code, 3, "broken fleet.yaml; stderr: {}", run.stderr);
    assert!(run.stderr.contains("fleet.yaml"), "{}", run.stderr);

    let run = fleet.status(&["--format", "xml"]);
    assert_eq!(run.code, 3, "bad flag value; stderr: {}", run.stderr);
    let run = capstan(&["fleet", "status", "--no-such-flag"]);
    assert_eq!(run.code, 3, "unknown flag; stderr: {}", run.stderr);
}

#[test]
fn help_states_the_exit_codes() {
    let run = capstan(&["fleet", "status", "--help"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("exit codes: 0 converged, 1 halted, 2 in progress, 3 usage or read error"),
        "{}",
        run.stdout
    );
}
