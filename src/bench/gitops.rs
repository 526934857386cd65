//! Commit → revision in force: a config repository copied into a fresh Git repository, then
//! commits made with the git CLI while a follower watches it (file watch) or is told by a
//! signed webhook; the time from the commit command's start to the revision in force.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use crate::gitops::{Follower, GitSource, SourceConfig, webhook};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Watch,
    Webhook,
}

#[derive(Debug, Clone, Serialize)]
pub struct GitopsResult {
    pub trigger: Trigger,
    pub commits: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
}

fn git(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("git").current_dir(dir).args(args).output().map_err(|e| format!("git: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(format!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr))) }
}

/// `git commit -q` as a fixed bench author, with `args`.
fn commit(dir: &Path, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q"];
    all.extend_from_slice(args);
    git(dir, &all)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

async fn post_webhook(port: u16, secret: &[u8]) -> Result<(), String> {
    let body = r#"{"ref":"refs/heads/main"}"#;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: capstan\r\nX-Hub-Signature-256: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        webhook::PATH,
        webhook::sign(secret, body.as_bytes()),
        body.len()
    );
    s.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.map_err(|e| e.to_string())?;
    if answer.starts_with("HTTP/1.1 202") { Ok(()) } else { Err(format!("webhook answered: {answer}")) }
}

/// Runs the benchmark in a fresh folder under the system's temporary directory.
pub async fn run(repo: &Path, cluster: &str, commits: usize, trigger: Trigger) -> Result<GitopsResult, String> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let root: PathBuf = std::env::temp_dir().join(format!("capstan-bench-gitops-{}-{nanos}", std::process::id()));
    let result = measure(repo, cluster, commits, trigger, &root).await;
    let _ = std::fs::remove_dir_all(&root);
    result
}

async fn measure(
    repo: &Path,
    cluster: &str,
    commits: usize,
    trigger: Trigger,
    root: &Path,
) -> Result<GitopsResult, String> {
    let work = root.join("work");
    copy_dir(repo, &work)?;
    git(&work, &["init", "-q", "-b", "main"])?;
    commit(&work, &["--allow-empty", "-m", "start"])?;
    git(&work, &["add", "-A"])?;
    commit(&work, &["-m", "policy"])?;
    let config = SourceConfig::main_branch(&work.display().to_string(), root.join("mirror.git"));
    let follower = Arc::new(Follower::new(GitSource::new(config, None), cluster));
    let secret = b"bench-secret".to_vec();
    let _watch = match trigger {
        Trigger::Watch => Some(crate::gitops::watch::watch_refs(&work, follower.trigger.clone())?),
        Trigger::Webhook => None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let app = webhook::router(secret.clone(), follower.trigger.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let stop = Arc::new(Notify::new());
    let (runner, stopper) = (follower.clone(), stop.clone());
    let looping = tokio::spawn(async move { runner.run(Duration::from_secs(3600), stopper).await });
    let mut status = follower.subscribe();
    let mut policy = follower.policy();
    let mut took = Vec::new();
    for n in 0..commits {
        let mut fleet = std::fs::read_to_string(work.join("fleet.yaml")).map_err(|e| e.to_string())?;
        fleet.push_str(&format!("# bench commit {n}\n"));
        std::fs::write(work.join("fleet.yaml"), fleet).map_err(|e| e.to_string())?;
        let start = Instant::now();
        commit(&work, &["-am", &format!("bench {n}")])?;
        if trigger == Trigger::Webhook {
            post_webhook(port, &secret).await?;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let st = status.borrow_and_update().clone();
            if policy.borrow_and_update().as_ref().is_some_and(|a| a.commit.subject == format!("bench {n}")) {
                took.push(start.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("commit {n} was not in force after 30 s; last error: {:?}", st.last_error));
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), policy.changed()).await;
        }
    }
    stop.notify_one();
    let _ = looping.await;
    server.abort();
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    Ok(GitopsResult { trigger, commits, median_ms: at(0.5), p90_ms: at(0.9), max_ms: at(1.0) })
}
