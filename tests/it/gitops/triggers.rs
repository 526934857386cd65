//! What makes the follower fetch at once: a signed webhook (and nothing else), and, for a
//! repository on this machine, a commit landing in it.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan::gitops::webhook;
use capstan::gitops::{Follower, GitSource};
use tokio::sync::Notify;

use super::{Repos, rt};

/// One HTTP/1.1 POST; returns the status code.
fn post(port: u16, headers: &[(&str, String)], body: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!(
        "POST {} HTTP/1.1\r\nHost: capstan\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        webhook::PATH,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn wait_for(f: &Follower<GitSource>, what: impl Fn(&capstan::gitops::GitStatus) -> bool) -> Option<Duration> {
    let start = Instant::now();
    let mut rx = f.subscribe();
    while start.elapsed() < Duration::from_secs(10) {
        if what(&rx.borrow_and_update()) {
            return Some(start.elapsed());
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
    }
    None
}

#[test]
fn a_signed_webhook_fetches_at_once_and_a_bad_one_fetches_nothing() {
    let repos = Repos::new();
    let config = repos.source(&repos.remote().display().to_string(), &repos.dir.path().join("mirror.git"));
    let f = Arc::new(Follower::new(GitSource::new(config, None), "dev"));
    let secret = b"webhook-secret".to_vec();
    rt().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = webhook::router(secret.clone(), f.trigger.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let stop = Arc::new(Notify::new());
        let runner = f.clone();
        let stopper = stop.clone();
        // Polling once an hour: only the webhook can make it fetch during the test.
        tokio::spawn(async move { runner.run(Duration::from_secs(3600), stopper).await });
        assert!(wait_for(&f, |s| s.fetches == 1).await.is_some());

        let body = r#"{"ref":"refs/heads/main"}"#;
        let bad = [
            vec![],
            vec![("X-Hub-Signature-256", webhook::sign(b"wrong-secret", body.as_bytes()))],
            vec![("X-Gitlab-Token", "wrong".to_string())],
            vec![("X-Capstan-Signature-256", "sha256=00".to_string())],
        ];
        for headers in &bad {
            let code = tokio::task::spawn_blocking({
                let h = headers.clone();
                move || post(port, &h, body)
            });
            assert_eq!(code.await.unwrap(), 401, "{headers:?}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(f.status().fetches, 1, "a refused webhook fetches nothing");

        let good = [
            ("X-Hub-Signature-256", webhook::sign(&secret, body.as_bytes())),
            ("X-Gitlab-Token", "webhook-secret".to_string()),
            ("X-Capstan-Signature-256", webhook::sign(&secret, body.as_bytes())),
        ];
        for (n, header) in good.into_iter().enumerate() {
            repos.set_cpu_limit(&format!("{}", 200 + n));
            let sha = repos.commit("Raise the cpu limit");
            let code = tokio::task::spawn_blocking(move || post(port, &[header], body)).await.unwrap();
            assert_eq!(code, 202);
            let took = wait_for(&f, |s| s.applied_revision.as_ref().is_some_and(|r| r.sha == sha)).await;
            assert!(took.is_some(), "webhook {n}: {:?}", f.status());
        }
        stop.notify_one();
    });
}

#[test]
fn a_commit_to_a_local_repository_is_picked_up_by_the_file_watch() {
    let repos = Repos::new();
    let work = repos.work();
    let config = repos.source(&work.display().to_string(), &repos.dir.path().join("mirror.git"));
    let f = Arc::new(Follower::new(GitSource::new(config, None), "dev"));
    rt().block_on(async {
        let _watch = capstan::gitops::watch::watch_refs(&work, f.trigger.clone()).unwrap();
        let stop = Arc::new(Notify::new());
        let (runner, stopper) = (f.clone(), stop.clone());
        tokio::spawn(async move { runner.run(Duration::from_secs(3600), stopper).await });
        assert!(wait_for(&f, |s| s.applied_revision.is_some()).await.is_some());
        for n in 0..3 {
            repos.set_cpu_limit(&format!("{}", 300 + n));
            let sha = repos.commit("Change the cpu limit");
            let took = wait_for(&f, |s| s.applied_revision.as_ref().is_some_and(|r| r.sha == sha)).await;
            println!("commit {n} in force after {took:?}");
            assert!(took.is_some(), "commit {n} picked up without polling: {:?}", f.status());
        }
        stop.notify_one();
    });
    assert!(capstan::gitops::watch::watch_refs(repos.dir.path(), Arc::new(Notify::new())).is_err());
}
