//! Fleet rollout with real processes: three `capstan run` daemons (dev wave 0, staging wave 1,
//! prod wave 2) on the simulated cluster and EC2, one moto S3 bucket holding their state stores
//! (a folder each), and one Git repository served by `git daemon` on 127.0.0.1.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{CLUSTER_SPEC, NODE_POOL};
use crate::daemon::{Daemon, request, start, status, wait};
use crate::gitops::{self, Repos, git};

const CLUSTERS: [&str; 3] = ["dev", "staging", "prod"];

struct Fleet {
    repos: Repos,
    server: gitops::Daemon,
    bucket: String,
    dir: tempfile::TempDir,
}

fn moto() -> String {
    crate::aws_catalog::moto()
}

fn new_bucket() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let bucket = format!("fleet-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    crate::kops::rt().block_on(async {
        let store =
            capstan::kops::any::Store::open(&format!("s3://{bucket}"), &crate::kops::s3_options()).await.unwrap();
        let capstan::kops::any::Store::S3(s3) = &store else { unreachable!() };
        s3.client().create_bucket().bucket(&bucket).send().await.unwrap();
    });
    bucket
}

impl Fleet {
    /// `soaks`: per wave; `approval`: prod requires approval.
    fn new(soaks: [&str; 3], approval: bool) -> Fleet {
        let repos = Repos::new();
        let bucket = new_bucket();
        let mut fleet = String::from(
            "apiVersion: capstan.io/v1alpha1\nkind: Fleet\nmetadata:\n  name: test\nspec:\n  heartbeatTimeout: 4s\n  clusters:\n",
        );
        for (wave, c) in CLUSTERS.iter().enumerate() {
            fleet += &format!(
                "    - name: {c}\n      kopsName: {c}.example.com\n      stateStore: s3://{bucket}\n      region: us-east-1\n      wave: {wave}\n"
            );
            repos.write(
                &format!("clusters/{c}/cluster.yaml"),
                &CLUSTER_SPEC.replace("dev.example.com", &format!("{c}.example.com")),
            );
        }
        fleet += "  waves:\n";
        for (wave, soak) in soaks.iter().enumerate() {
            fleet += &format!("    - wave: {wave}\n      soakTime: {soak}\n");
            if approval && wave == 2 {
                fleet += "      requireApproval: true\n";
            }
        }
        repos.write("fleet.yaml", &fleet);
        repos.write(
            "base/policy.yaml",
            "apiVersion: capstan.io/v1alpha1\nkind: ClusterPolicy\nmetadata:\n  name: default\nspec:\n  health:\n    maxPendingTime: 2s\n",
        );
        repos.commit("A fleet of three");
        let server = gitops::Daemon::serve(repos.dir.path());
        Fleet { repos, server, bucket, dir: tempfile::tempdir().unwrap() }
    }

    fn head(&self) -> String {
        git(&self.repos.work(), &["rev-parse", "HEAD"])
    }

    fn config(&self, cluster: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{cluster}.yaml"));
        let workload = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/workloads/inflate.yaml");
        std::fs::write(
            &path,
            format!(
                "cluster: {cluster}\nrepository:\n  url: {}\n  poll: 1s\nbackends: {{cloud: sim, cluster: sim}}\ndataDir: {}\nrollout:\n  interval: 1s\ns3:\n  endpoint: {}\n  forcePathStyle: true\nsim:\n  seedStateStore: true\n  workloads: [{workload}]\n",
                self.server.url("remote.git"),
                self.dir.path().join(format!("data-{cluster}")).display(),
                moto(),
            ),
        )
        .unwrap();
        path
    }

    fn start(&self, cluster: &str) -> Daemon {
        start(&self.config(cluster))
    }

    /// Commits a change of the default NodePool's cpu limit.
    fn limit(&self, cpu: &str, message: &str) -> String {
        self.repos.set_cpu_limit(cpu);
        self.repos.commit(message)
    }

    fn approve(&self, sha: &str) -> String {
        let fleet = std::fs::read_to_string(self.repos.work().join("fleet.yaml")).unwrap();
        let fleet = match fleet.split_once("  approvals:\n") {
            Some((head, _)) => head.to_string(),
            None => fleet,
        };
        self.repos.write("fleet.yaml", &format!("{fleet}  approvals:\n    - wave: 2\n      revision: {sha}\n"));
        self.repos.commit(&format!("Approve {sha} for prod"))
    }

    /// `capstan fleet status` on the repository: exit code and output.
    fn status_cli(&self) -> (i32, String) {
        let work = self.repos.work();
        let m = moto();
        let run = crate::common::capstan(&[
            "fleet",
            "status",
            work.to_str().unwrap(),
            "--s3-endpoint",
            &m,
            "--s3-path-style",
        ]);
        (run.code, run.stdout + &run.stderr)
    }

    /// The rollout decisions in a cluster's decision log.
    fn decisions(&self, cluster: &str) -> Vec<Value> {
        crate::kops::rt().block_on(async {
            use capstan::kops::store::StateStore;
            let store = capstan::kops::any::Store::open(&format!("s3://{}", self.bucket), &crate::kops::s3_options())
                .await
                .unwrap();
            let mut out = Vec::new();
            for key in store.list(&format!("{cluster}.example.com/capstan/decisions/")).await.unwrap() {
                let o = store.get(&key).await.unwrap().unwrap();
                for line in String::from_utf8(o.bytes).unwrap().lines() {
                    let v: Value = serde_json::from_str(line).unwrap();
                    if v["action"].as_str().is_some_and(|a| a.starts_with("rollout-")) {
                        out.push(v);
                    }
                }
            }
            out
        })
    }
}

fn applied(d: &Daemon) -> String {
    status(&d.addr)["appliedRevision"].as_str().unwrap_or_default().rsplit(':').next().unwrap_or_default().to_string()
}

fn state(d: &Daemon) -> String {
    status(&d.addr)["rollout"]["state"].as_str().unwrap_or_default().to_string()
}

/// Waits until every daemon has `sha` in force; returns when each was first seen with it.
fn times_in_force(daemons: &[&Daemon], sha: &str, limit: Duration) -> Vec<Instant> {
    let start = Instant::now();
    let mut seen: Vec<Option<Instant>> = vec![None; daemons.len()];
    while seen.iter().any(Option::is_none) {
        if start.elapsed() > limit {
            let why: Vec<Value> = daemons.iter().map(|d| status(&d.addr)["rollout"].clone()).collect();
            panic!("not every cluster took {sha}: {seen:?}; {why:#?}");
        }
        for (i, d) in daemons.iter().enumerate() {
            if seen[i].is_none() && applied(d) == sha {
                seen[i] = Some(Instant::now());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    seen.into_iter().map(Option::unwrap).collect()
}

fn applied_count(decisions: &[Value], sha: &str) -> usize {
    decisions
        .iter()
        .filter(|d| d["action"] == "rollout-applied" && d["to"].as_str().is_some_and(|t| t.ends_with(sha)))
        .count()
}

#[test]
fn a_good_commit_rolls_out_in_order_a_bad_one_halts_and_rolls_back_and_a_newer_one_supersedes_it() {
    let f = Fleet::new(["10s", "4s", "0s"], false);
    let initial = f.head();
    let (dev, staging, prod) = (f.start("dev"), f.start("staging"), f.start("prod"));
    times_in_force(&[&dev, &staging, &prod], &initial, Duration::from_secs(90));

    // (a) in order, each wave after the previous one's soak.
    let good = f.limit("120", "Raise the default pool's cpu limit");
    let t = times_in_force(&[&dev, &staging, &prod], &good, Duration::from_secs(90));
    assert!(t[1] - t[0] >= Duration::from_secs(10), "staging took it {:?} after dev", t[1] - t[0]);
    assert!(t[2] - t[1] >= Duration::from_secs(4), "prod took it {:?} after staging", t[2] - t[1]);
    wait("fleet status: converged", Duration::from_secs(20), || f.status_cli().0 == 0);

    // (b) a commit that leaves pods unserved halts at dev, which goes back; nobody else takes it.
    let bad = f.limit("1", "Cap the default pool at 1 cpu");
    wait("dev on the bad commit", Duration::from_secs(20), || applied(&dev) == bad);
    assert_eq!(request(&dev.addr, "POST", "/sim/scale?deployment=inflate&replicas=4").0, 200);
    wait("dev rolled back", Duration::from_secs(30), || state(&dev) == "rolled-back" && applied(&dev) == good);
    let (code, out) = f.status_cli();
    assert_eq!(code, 1, "fleet status with dev rolled back: {out}");
    assert!(out.contains("rolled-back"), "{out}");
    let metrics = request(&dev.addr, "GET", "/metrics").1;
    for line in [
        "capstan_fleet_halts_total{cluster=\"dev\"} 1".to_string(),
        "capstan_fleet_rollbacks_total{cluster=\"dev\"} 1".to_string(),
        format!("capstan_fleet_revision_in_force{{cluster=\"dev\",revision=\"main@sha1:{good}\"}} 1"),
        "capstan_fleet_wave_state{cluster=\"dev\",state=\"rolled-back\"} 1".to_string(),
    ] {
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    let s = status(&dev.addr);
    assert!(s["rollout"]["halted"].as_array().unwrap().iter().any(|h| h["sha"] == bad.as_str()), "{s}");
    assert_eq!(s["lastKnownGood"].as_str().unwrap().rsplit(':').next(), Some(good.as_str()));
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        assert_eq!(applied(&staging), good, "staging must never take the halted revision");
        assert_eq!(applied(&prod), good, "prod must never take the halted revision");
        std::thread::sleep(Duration::from_millis(200));
    }
    let dev_log = f.decisions("dev");
    assert!(dev_log.iter().any(|d| d["action"] == "rollout-halted"), "{dev_log:?}");
    let back = dev_log.iter().find(|d| d["action"] == "rollout-rolled-back").expect("a rollback decision");
    assert!(back["from"].as_str().unwrap().ends_with(&bad) && back["to"].as_str().unwrap().ends_with(&good), "{back}");

    // (d) a newer good commit starts a new rollout from wave 0.
    assert_eq!(request(&dev.addr, "POST", "/sim/scale?deployment=inflate&replicas=0").0, 200);
    let fixed = f.limit("150", "Cap the default pool at 150 cpu");
    wait("dev on the fix", Duration::from_secs(20), || applied(&dev) == fixed);
    let (code, out) = f.status_cli();
    assert_eq!(code, 2, "fleet status while dev soaks the fix: {out}");
    times_in_force(&[&dev, &staging, &prod], &fixed, Duration::from_secs(90));
    wait("fleet status: converged again", Duration::from_secs(20), || f.status_cli().0 == 0);
    for c in ["staging", "prod"] {
        assert_eq!(applied_count(&f.decisions(c), &bad), 0, "{c} applied the halted revision");
    }
}

#[test]
fn a_dead_staging_holds_prod_and_an_approval_gates_prod() {
    let f = Fleet::new(["2s", "8s", "0s"], true);
    let initial = f.head();
    f.approve(&initial);
    let (dev, mut staging, prod) = (f.start("dev"), f.start("staging"), f.start("prod"));
    let approved = f.head();
    times_in_force(&[&dev, &staging, &prod], &approved, Duration::from_secs(90));

    // (c) staging is killed in its soak: prod waits; restarted, staging resumes and prod follows.
    let good = f.limit("120", "Raise the default pool's cpu limit");
    let approval = f.approve(&good);
    wait("staging on the new revision", Duration::from_secs(30), || {
        let a = applied(&staging);
        a == good || a == approval
    });
    staging.child.kill().unwrap();
    staging.child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(14));
    assert_eq!(applied(&prod), approved, "prod took a revision while staging was dead");
    let reason = status(&prod.addr)["rollout"]["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("staging"), "{reason}");
    staging = f.start("staging");
    wait("staging resumed", Duration::from_secs(20), || !applied(&staging).is_empty());
    let resumed = applied(&staging);
    assert!(resumed == good || resumed == approval, "staging resumed on {resumed}");
    times_in_force(&[&prod], &approval, Duration::from_secs(60));
    let log = f.decisions("staging");
    for sha in [&good, &approval] {
        assert!(applied_count(&log, sha) <= 1, "staging applied {sha} twice: {log:?}");
    }

    // (e) without an approval prod waits; the approval commit lets it through.
    let next = f.limit("130", "Raise it again");
    times_in_force(&[&dev, &staging], &next, Duration::from_secs(60));
    // Once staging has held it for its soak, only the approval is missing.
    wait("prod awaiting approval", Duration::from_secs(40), || state(&prod) == "awaiting-approval");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(applied(&prod), approval, "prod took a revision nobody approved");
    assert_eq!(state(&prod), "awaiting-approval");
    let approved_next = f.approve(&next);
    wait("prod on the approved revision", Duration::from_secs(40), || {
        let a = applied(&prod);
        a == next || a == approved_next
    });
}

#[test]
fn a_force_push_refused_before_a_restart_stays_refused_after_it() {
    let f = Fleet::new(["0s", "0s", "0s"], false);
    let dev = f.start("dev");
    let good = f.limit("120", "Raise the default pool's cpu limit");
    wait("dev on the commit", Duration::from_secs(30), || applied(&dev) == good);
    // The last-known-good follows the applied revision once a pass under it has succeeded.
    wait("the commit as last-known-good", Duration::from_secs(20), || {
        status(&dev.addr)["lastKnownGood"].as_str().is_some_and(|r| r.ends_with(good.as_str()))
    });
    let known_good = status(&dev.addr)["lastKnownGood"].clone();

    // Rewrite history: drop the last commit and push another in its place.
    let w = f.repos.work();
    git(&w, &["reset", "-q", "--hard", "HEAD~1"]);
    f.repos.write("base/nodepools/default.yaml", &NODE_POOL.replace("cpu: \"100\"", "cpu: \"90\""));
    let rewritten = f.repos.commit("Rewritten history");
    let refused =
        |d: &Daemon| status(&d.addr)["policyError"].as_str().unwrap_or_default().contains("history was rewritten");
    wait("the force-push refused", Duration::from_secs(20), || refused(&dev));
    assert_eq!(applied(&dev), good);

    let mut dev = dev;
    Command::new("kill").args(["-9", &dev.child.id().to_string()]).status().unwrap();
    dev.child.wait().unwrap();
    let dev = f.start("dev");
    wait("the force-push refused after the restart", Duration::from_secs(20), || refused(&dev));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(applied(&dev), good, "the rewritten tip {rewritten} went in force after a restart");
    assert_eq!(status(&dev.addr)["lastKnownGood"], known_good);
}
