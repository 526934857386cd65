//! `capstan run` given bad input: a config that cannot work stops it at start with exit 3 and
//! the field to fix; a task that fails takes the daemon down instead of leaving it half alive;
//! `/sim/scale` and the webhook bound what a client can make it hold.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use capstan::app::supervise::{Failure, Supervisor};
use capstan::gitops::webhook;
use tokio_util::sync::CancellationToken;

use crate::daemon::{request, start};
use crate::gitops::{Daemon as GitDaemon, Repos, rt};

/// A config repository and a folder for the daemon's configs, data and other files.
struct Setup {
    repos: Repos,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup { repos: Repos::new(), dir: tempfile::tempdir().unwrap() }
    }

    /// A config that starts: the work tree on `main`, the simulated backends, `inflate`.
    fn base(&self) -> String {
        let workload = self.file(
            "inflate.yaml",
            &std::fs::read_to_string(crate::common::root().join("examples/workloads/inflate.yaml")).unwrap(),
        );
        format!(
            "cluster: dev\nrepository:\n  url: {}\n  poll: 1m\nstateStore: file://{}\nbackends: {{cloud: sim, cluster: sim}}\ndataDir: data\nsim:\n  workloads: [{}]\n",
            self.repos.work().display(),
            self.dir.path().join("state").display(),
            workload.display()
        )
    }

    /// Writes `text` to `rel` in the folder; returns its path.
    fn file(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// How `capstan run` ended within a time limit: its exit code (`None`: still running, then
/// killed) and its standard error.
struct Ended {
    code: Option<i32>,
    stderr: String,
}

/// Runs `capstan run --config config ARGS` for at most `limit`.
fn run_for(config: &Path, args: &[&str], limit: Duration) -> Ended {
    let log_path = config.with_extension("stderr");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["run", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ended { code, stderr: std::fs::read_to_string(&log_path).unwrap_or_default() }
}

/// Each case (name, config text, `capstan run` arguments, what standard error must say) must
/// exit 3 (usage) at start. The cases run side by side, each in its own folder.
fn refused(setup: &Setup, cases: &[(&str, String, &[&str], &[&str])]) {
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .map(|(name, yaml, args, expected)| {
                let config = setup.file(&format!("{name}/capstan.yaml"), yaml);
                scope.spawn(move || {
                    let ended = run_for(&config, args, Duration::from_secs(60));
                    let said = expected.iter().all(|e| ended.stderr.contains(e));
                    (ended.code != Some(3) || !said).then(|| {
                        format!("{name}: exit {:?}, expected 3 and {expected:?} in:\n{}", ended.code, ended.stderr)
                    })
                })
            })
            .collect();
        runs.into_iter().filter_map(|r| r.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn an_unbounded_speed_or_interval_is_refused_at_start_with_its_range() {
    let s = Setup::new();
    let base = s.base();
    let speed = |v: &str| base.replace("sim:\n", &format!("sim:\n  speed: {v}\n"));
    let ranged = ["sim.speed", "from 0.001 to 1000"];
    let interval = ["from 1s to 24h"];
    refused(
        &s,
        &[
            ("speed-inf", speed(".inf"), &[], &ranged),
            ("speed-huge", speed("1e308"), &[], &ranged),
            ("speed-zero", speed("0"), &[], &ranged),
            ("speed-nan", speed(".nan"), &[], &ranged),
            ("speed-flag", base.clone(), &["--speed", "inf"], &["--speed", "sim.speed"]),
            ("poll-zero", base.replace("poll: 1m", "poll: 0s"), &[], &["repository.poll", interval[0]]),
            ("poll-long", base.replace("poll: 1m", "poll: 48h"), &[], &["repository.poll", interval[0]]),
            ("reconcile-zero", format!("{base}reconcileInterval: 0s\n"), &[], &["reconcileInterval", interval[0]]),
            ("rollout-zero", format!("{base}rollout:\n  interval: 0s\n"), &[], &["rollout.interval", "from 1s to 1h"]),
        ],
    );
}

#[test]
fn a_config_that_cannot_work_is_refused_at_start_naming_the_field() {
    let s = Setup::new();
    let base = s.base();
    let work = s.repos.work().display().to_string();
    let repository = |extra: &str| base.replace("  poll: 1m\n", &format!("  poll: 1m\n{extra}"));
    let url = |u: &str| base.replace(&work, u);
    let empty = s.file("secrets/empty", "\n");
    let data_file = s.file("not-a-folder", "x");
    let garbage = s.file("garbage.yaml", "{[: not yaml\n");
    let inflate = std::fs::read_to_string(crate::common::root().join("examples/workloads/inflate.yaml")).unwrap();
    let huge = s.file("huge.yaml", &inflate.replace("replicas: 0", "replicas: 2000000000"));
    let workload = |w: &Path| {
        let start = base.find("  workloads: [").unwrap();
        format!("{}  workloads: [{}]\n", &base[..start], w.display())
    };
    let remote = GitDaemon::serve(s.repos.dir.path());
    let remote_url = remote.url("remote.git");
    refused(
        &s,
        &[
            (
                "unknown-cluster",
                base.replace("cluster: dev", "cluster: nope"),
                &[],
                &["cluster:", "`nope` is not listed in fleet.yaml"],
            ),
            ("no-fleet", repository("  path: nowhere\n"), &[], &["repository.path", "no fleet.yaml"]),
            ("ftp", url("ftp://example.com/policy.git"), &[], &["repository.url", "ftp://"]),
            ("garbage-url", url("'not a url at all'"), &[], &["repository.url"]),
            ("no-host", url("https:///policy.git"), &[], &["repository.url", "names no host"]),
            ("no-path", url("/nonexistent/capstan-policy"), &[], &["repository.url", "does not exist"]),
            ("no-repository", url(&s.dir.path().display().to_string()), &[], &["repository.url"]),
            ("no-branch", repository("  branch: nope\n"), &[], &["repository.branch", "`nope` not found"]),
            (
                "remote-no-branch",
                url(&remote_url).replace("  poll: 1m\n", "  poll: 1m\n  branch: nope\n"),
                &[],
                &["repository.branch", "`nope` not found"],
            ),
            (
                "remote-unknown-cluster",
                url(&remote_url).replace("cluster: dev", "cluster: nope"),
                &[],
                &["cluster:", "`nope` is not listed"],
            ),
            (
                "gopher",
                base.replace("stateStore: file://", "stateStore: gopher://"),
                &[],
                &["stateStore", "s3://bucket"],
            ),
            (
                "empty-secret",
                repository(&format!("  webhookSecretFile: {}\n", empty.display())),
                &[],
                &["repository.webhookSecretFile", "is empty"],
            ),
            (
                "missing-secret",
                repository("  webhookSecretFile: no-such-secret\n"),
                &[],
                &["repository.webhookSecretFile", "cannot read"],
            ),
            (
                "data-is-a-file",
                base.replace("dataDir: data", &format!("dataDir: {}", data_file.display())),
                &[],
                &["dataDir", "is not a folder"],
            ),
            (
                "aws-with-sim",
                base.replace("cloud: sim", "cloud: aws"),
                &[],
                &["backends", "{cloud: sim, cluster: sim}"],
            ),
            (
                "missing-workload",
                workload(Path::new("/nonexistent/inflate.yaml")),
                &[],
                &["sim.workloads[0]", "cannot read"],
            ),
            ("garbage-workload", workload(&garbage), &[], &["sim.workloads[0]", "garbage.yaml"]),
            ("huge-workload", workload(&huge), &[], &["sim.workloads[0]", "at most 10000"]),
        ],
    );
}

#[test]
fn an_unreachable_remote_starts_and_keeps_retrying() {
    let s = Setup::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let yaml = s.base().replace(&s.repos.work().display().to_string(), &format!("git://127.0.0.1:{port}/remote.git"));
    let mut d = start(&s.file("capstan.yaml", &yaml.replace("poll: 1m", "poll: 1s")));
    crate::daemon::wait("the failed fetch on record", Duration::from_secs(20), || {
        crate::daemon::status(&d.addr)["rollout"]["error"].as_str().is_some_and(|e| e.contains("cannot fetch"))
    });
    assert_eq!(request(&d.addr, "GET", "/healthz").0, 200);
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon keeps running");
}

#[test]
fn a_task_that_panics_fails_health_and_stops_the_daemon() {
    rt().block_on(async {
        let failure = Failure::default();
        let (stop, http_stop) = (CancellationToken::new(), CancellationToken::new());
        let mut tasks = Supervisor::new(failure.clone(), stop.clone(), http_stop.clone());
        let stopped = Arc::new(AtomicBool::new(false));
        let flag = stopped.clone();
        tasks.spawn("state store", async move {
            stop.cancelled().await;
            flag.store(true, Ordering::SeqCst);
        });
        tasks.spawn("capacity", async { panic!("cannot convert float seconds to Duration") });
        let seen_failed = Arc::new(AtomicBool::new(false));
        let (seen, during) = (seen_failed.clone(), failure.clone());
        // The HTTP server stops last: it still answers, failed, while the others finish.
        tasks.spawn_last("http", async move {
            http_stop.cancelled().await;
            seen.store(during.get().is_some(), Ordering::SeqCst);
        });
        let ended = tokio::time::timeout(Duration::from_secs(20), tasks.run_until(std::future::pending()));
        let failed = ended.await.expect("the supervisor returns").expect_err("a panicked task fails the daemon");
        assert_eq!(failed.task, "capacity");
        assert!(failed.to_string().contains("panicked: cannot convert float seconds to Duration"), "{failed}");
        assert!(stopped.load(Ordering::SeqCst), "the other tasks are stopped");
        assert!(seen_failed.load(Ordering::SeqCst), "the failure is set before the HTTP server stops");
        assert!(failure.get().is_some_and(|f| f.contains("capacity")), "{:?}", failure.get());
    });
}

#[test]
fn a_task_that_returns_early_fails_the_daemon_and_a_signal_does_not() {
    rt().block_on(async {
        let run = |early: bool| async move {
            let (stop, last) = (CancellationToken::new(), CancellationToken::new());
            let mut tasks = Supervisor::new(Failure::default(), stop.clone(), last.clone());
            tasks.spawn("follower", async move { stop.cancelled().await });
            tasks.spawn_last("http", async move { last.cancelled().await });
            if early {
                tasks.spawn("rollout", async {});
                tasks.run_until(std::future::pending()).await
            } else {
                tasks.run_until(tokio::time::sleep(Duration::from_millis(10))).await
            }
        };
        let failed = run(true).await.expect_err("a returned task fails the daemon");
        assert_eq!(failed.task, "rollout");
        assert!(run(false).await.is_ok());
    });
}

/// The daemon's HTTP answers in a failed state, as served by the daemon's own router.
#[test]
fn healthz_and_readyz_answer_503_naming_the_failed_task() {
    use capstan::app::http::{Shared, router};
    rt().block_on(async {
        let failure = Failure::default();
        let (_git_tx, git) = tokio::sync::watch::channel(Default::default());
        let (_lead_tx, leading) = tokio::sync::watch::channel(true);
        let registry = prometheus_client::registry::Registry::default();
        let shared = Arc::new(Shared::new("dev", git, leading, registry, None, failure.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, router(shared, &[])).await });
        let get = |path: &'static str| {
            let addr = addr.clone();
            tokio::task::spawn_blocking(move || request(&addr, "GET", path))
        };
        assert_eq!(get("/healthz").await.unwrap().0, 200);
        failure.set("the capacity task panicked: boom".into());
        for path in ["/healthz", "/readyz"] {
            let (code, body) = get(path).await.unwrap();
            assert_eq!(code, 503, "{path}: {body}");
            assert!(body.contains("the capacity task panicked: boom"), "{path}: {body}");
        }
    });
}

#[test]
fn sim_scale_refuses_unbounded_replicas_and_bad_parameters() {
    let s = Setup::new();
    let d = start(&s.file("capstan.yaml", &s.base()));
    let scale = |query: &str| request(&d.addr, "POST", &format!("/sim/scale?{query}"));
    for (query, says) in [
        ("deployment=inflate&replicas=4294967295", "at most 10000"),
        ("deployment=inflate&replicas=10001", "at most 10000"),
        ("deployment=inflate&replicas=-1", "not a whole number"),
        ("deployment=inflate&replicas=many", "not a whole number"),
        ("deployment=inflate", "give deployment=NAME&replicas=N"),
        ("deployment=Inflate_1&replicas=1", "not a Kubernetes name"),
        ("deployment=inflate&replicas=1&namespace=a/b", "not a Kubernetes name"),
        ("deployment=inflate&replicas=1&replica=2", "unknown parameter `replica`"),
        ("deployment=inflate&replicas=1&replicas=2", "given twice"),
    ] {
        let (code, body) = scale(query);
        assert_eq!(code, 400, "{query}: {body}");
        assert!(body.contains(says), "{query}: {body}");
    }
    assert_eq!(scale("deployment=nothere&replicas=1").0, 404);
    let (code, body) = scale("deployment=inflate&replicas=10000");
    assert_eq!(code, 200, "{body}");
    assert_eq!(request(&d.addr, "GET", "/healthz").0, 200);
}

/// Sends `head` (request line and headers, without the blank line) and `body`; the status and
/// body of the answer. A refusal may come before the body is sent: writing it may then fail.
fn send(addr: &str, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(format!("{head}\r\nHost: capstan\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let code = answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

#[test]
fn the_webhook_takes_github_sized_bodies_and_refuses_unsigned_ones_unread() {
    let s = Setup::new();
    let secret = "hook-secret-1f0c";
    let secret_file = s.file("secrets/webhook", secret);
    let yaml =
        s.base().replace("  poll: 1m\n", &format!("  poll: 1m\n  webhookSecretFile: {}\n", secret_file.display()));
    let d = start(&s.file("capstan.yaml", &yaml));
    let post = |len: usize, headers: &str| format!("POST /hooks/git HTTP/1.1\r\nContent-Length: {len}{headers}");

    let body = vec![b'x'; 3 * 1024 * 1024];
    let signed = format!("\r\nX-Hub-Signature-256: {}", webhook::sign(secret.as_bytes(), &body));
    let (code, text) = send(&d.addr, &post(body.len(), &signed), &body);
    assert_eq!(code, 202, "a signed 3 MB delivery: {text}");
    let wrong = format!("\r\nX-Hub-Signature-256: {}", webhook::sign(b"wrong", &body));
    assert_eq!(send(&d.addr, &post(body.len(), &wrong), &body).0, 401);

    // Refused from the headers alone: no body is sent, the answer comes anyway.
    assert_eq!(send(&d.addr, &post(10 * 1024 * 1024, ""), b"").0, 401, "unsigned");
    assert_eq!(send(&d.addr, &post(10 * 1024 * 1024, "\r\nX-Gitlab-Token: wrong"), b"").0, 401, "a wrong token");
    let malformed = "\r\nX-Hub-Signature-256: sha256=zz";
    assert_eq!(send(&d.addr, &post(10 * 1024 * 1024, malformed), b"").0, 401, "a malformed signature");
    assert_eq!(send(&d.addr, &post(26 * 1024 * 1024, &signed), b"").0, 413, "above 25 MB");
    assert_eq!(request(&d.addr, "GET", "/healthz").0, 200);
}

#[test]
fn sim_scale_parameters_are_checked_before_the_cluster_is_touched() {
    use capstan::app::scale::{MAX_REPLICAS, Scale, parse};
    let p =
        |pairs: &[(&str, &str)]| parse(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>());
    let ok = Scale { namespace: "default".into(), deployment: "inflate".into(), replicas: MAX_REPLICAS };
    assert_eq!(p(&[("deployment", "inflate"), ("replicas", "10000")]), Ok(ok));
    assert!(p(&[("deployment", "inflate"), ("replicas", "99999999999999999999999")]).is_err());
    assert!(p(&[("deployment", &"a".repeat(254)), ("replicas", "1")]).is_err());
    assert!(p(&[("deployment", "-inflate"), ("replicas", "1")]).is_err());
    assert!(p(&[("deployment", "inflate"), ("replicas", "1"), ("namespace", &"n".repeat(64))]).is_err());
}
