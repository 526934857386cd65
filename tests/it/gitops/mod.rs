//! Following a config repository with real Git: repositories made with the git CLI, a bare
//! remote served by `git daemon` on 127.0.0.1, commits pushed while the source follows.

mod audit;
mod diff;
mod follow;
mod transports;
mod triggers;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use capstan::gitops::{Follower, GitSource, SourceConfig};

use crate::common::{CLUSTER_SPEC, FLEET, NODE_CLASS, NODE_POOL};

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").current_dir(dir).args(args).output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A work tree with a valid config repository committed on `main`, and a bare remote it
/// pushes to.
pub struct Repos {
    pub dir: tempfile::TempDir,
}

impl Repos {
    pub fn new() -> Repos {
        let repos = Repos { dir: tempfile::tempdir().unwrap() };
        git(repos.dir.path(), &["init", "-q", "--bare", "-b", "main", "remote.git"]);
        git(repos.dir.path(), &["init", "-q", "-b", "main", "work"]);
        let w = repos.work();
        git(&w, &["config", "user.name", "Alice Admin"]);
        git(&w, &["config", "user.email", "alice@example.com"]);
        git(&w, &["remote", "add", "origin", repos.remote().to_str().unwrap()]);
        repos.write("fleet.yaml", FLEET);
        repos.write("base/nodeclasses/default.yaml", NODE_CLASS);
        repos.write("base/nodepools/default.yaml", NODE_POOL);
        repos.write("clusters/dev/cluster.yaml", CLUSTER_SPEC);
        repos.commit("Initial policy");
        repos
    }

    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub fn remote(&self) -> PathBuf {
        self.dir.path().join("remote.git")
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.work().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Commits everything and pushes; returns the new sha.
    pub fn commit(&self, message: &str) -> String {
        self.commit_with(message, &[])
    }

    pub fn commit_with(&self, message: &str, extra: &[&str]) -> String {
        let w = self.work();
        git(&w, &["add", "-A"]);
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["commit", "-q", "-m", message]);
        git(&w, &args);
        git(&w, &["push", "-q", "-f", "origin", "main"]);
        git(&w, &["rev-parse", "HEAD"])
    }

    /// Sets the default NodePool's cpu limit.
    pub fn set_cpu_limit(&self, cpu: &str) {
        self.write("base/nodepools/default.yaml", &NODE_POOL.replace("cpu: \"100\"", &format!("cpu: \"{cpu}\"")));
    }

    pub fn source(&self, url: &str, mirror: &Path) -> SourceConfig {
        SourceConfig::main_branch(url, mirror.to_path_buf())
    }
}

/// `git daemon` serving the folder that holds `remote.git`, on a free port of 127.0.0.1.
pub struct Daemon {
    child: Child,
    pub port: u16,
}

impl Daemon {
    pub fn serve(base: &Path) -> Daemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // git-daemon itself, not the `git daemon` wrapper: killing the wrapper would leave the
        // daemon running (and holding the test's output open).
        let exec_path = git(Path::new("."), &["--exec-path"]);
        let child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1", &format!("--port={port}")])
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git daemon starts");
        // Dropped (killed and waited for) even when it never listens.
        let daemon = Daemon { child, port };
        wait_listening(port, "git daemon");
        daemon
    }

    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to 5 s for something to accept connections on 127.0.0.1:`port`.
pub fn wait_listening(port: u16, what: &str) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{what} did not listen on {port}");
}

pub fn follower(config: SourceConfig) -> Follower<GitSource> {
    Follower::new(GitSource::new(config, None), "dev")
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}
