//! The transports under the fetch with real Git on the far side: https against `git
//! http-backend` behind TLS, its certificate signed by a test CA that is trusted only through
//! `caFile`; ssh through a stand-in for the OpenSSH client that runs the remote command
//! (`git-upload-pack`) here, with the arguments it was given kept for inspection, and the failures
//! ssh reports (unknown host key, key refused) named with what to check; redirects, which keep
//! the token at its own host. (Tokens over http are in the follow tests.)

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Repos, follower, git, rt};

/// `git http-backend` behind basic auth (and TLS with a certificate and key), in a test-owned
/// Python process.
pub struct HttpGit {
    child: std::process::Child,
    pub port: u16,
}

impl HttpGit {
    pub fn serve(root: &Path, user: &str, token: &str, tls: Option<(&Path, &Path)>) -> HttpGit {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = crate::common::root().join("tests/support/git_http_server.py");
        let mut command = Command::new("python3");
        command.arg(script).arg(root).args([&port.to_string(), user, token]);
        if let Some((cert, key)) = tls {
            command.args([cert, key]);
        }
        let child = command.stdout(std::process::Stdio::null()).spawn().expect("python3 runs");
        let server = HttpGit { child, port };
        super::wait_listening(port, "the git HTTP server");
        server
    }
}

impl Drop for HttpGit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA and a certificate it signs for 127.0.0.1, made with the openssl CLI: (CA, cert, key).
fn test_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &["-days", "2", "-subj", "/CN=capstan-test-ca", "-keyout", "ca.key", "-out", "ca.crt"],
        ]
        .concat(),
    );
    openssl(&[&["req"], &ec[..], &["-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"]].concat());
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
    (dir.join("ca.crt"), dir.join("server.crt"), dir.join("server.key"))
}

#[test]
fn https_is_verified_and_a_private_ca_is_trusted_through_ca_file() {
    let repos = Repos::new();
    let dir = repos.dir.path();
    let (ca, cert, key) = test_ca(dir);
    let server = HttpGit::serve(dir, "bot", "tls-token-789", Some((&cert, &key)));
    let url = format!("https://bot:tls-token-789@127.0.0.1:{}/remote.git", server.port);
    let mut config = repos.source(&url, &dir.join("mirror.git"));
    rt().block_on(async {
        let f = follower(config.clone());
        assert!(!f.sync_once().await, "a certificate no trusted CA signed is refused");
        let e = f.status().last_error.unwrap();
        assert!(e.contains("certificate") && e.contains("repository.caFile"), "{e}");
        assert!(!e.contains("tls-token-789"), "{e}");

        config.auth.ca_file = Some(ca);
        let f = follower(config.clone());
        assert!(f.sync_once().await, "{:?}", f.status().last_error);
        let head = git(&repos.work(), &["rev-parse", "HEAD"]);
        assert_eq!(f.status().applied_revision.unwrap().sha, head);
    });
    // The same from a single-threaded runtime, as a command-line tool would run it.
    config.mirror = dir.join("mirror2.git");
    let f = follower(config);
    let single = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    single.block_on(async {
        assert!(f.sync_once().await, "{:?}", f.status().last_error);
    });
}

/// A program that stands in for `ssh`: it saves its arguments, then runs `body`.
fn stand_in(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let args = dir.join(format!("{name}.args"));
    let script = format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n{body}\n", args.display());
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn ssh_runs_upload_pack_through_the_client_with_the_host_key_checked() {
    let repos = Repos::new();
    let dir = repos.dir.path();
    // The remote command is the last argument, as ssh would run it on the server.
    let ssh = stand_in(dir, "ssh", "for last; do :; done\nexec sh -c \"$last\"");
    let url = format!("ssh://git@git.example.invalid:2222{}", repos.remote().display());
    let mut config = repos.source(&url, &dir.join("mirror.git"));
    config.auth.ssh_key = Some(dir.join("deploy-key"));
    config.auth.known_hosts = Some(dir.join("known_hosts"));
    config.auth.ssh_program = Some(ssh);
    let f = follower(config);
    rt().block_on(async {
        assert!(f.sync_once().await, "{:?}", f.status().last_error);
        let head = git(&repos.work(), &["rev-parse", "HEAD"]);
        assert_eq!(f.status().applied_revision.unwrap().sha, head);
        repos.set_cpu_limit("200");
        let second = repos.commit("Raise the cpu limit");
        assert!(f.sync_once().await, "{:?}", f.status().last_error);
        assert_eq!(f.status().applied_revision.unwrap().sha, second);
    });
    let args = std::fs::read_to_string(dir.join("ssh.args")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    for expected in [
        "StrictHostKeyChecking=yes",
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        &format!("UserKnownHostsFile={}", dir.join("known_hosts").display()),
        &dir.join("deploy-key").display().to_string(),
        "2222",
        "git@git.example.invalid",
    ] {
        assert!(args.contains(&expected), "{expected} in {args:?}");
    }
    assert_eq!(args.last().unwrap(), &format!("git-upload-pack '{}'", repos.remote().display()));
}

#[test]
fn ssh_failures_say_what_to_check() {
    let repos = Repos::new();
    let dir = repos.dir.path();
    // The last one closes its output and then waits for its input to close, as a client whose
    // connection went away may: it must not hold the fetch.
    let cases = [
        ("Host key verification failed.", "known_hosts", "exit 255"),
        (
            "git@git.example.invalid: Permission denied (publickey).",
            "authentication to ssh://git@git.example.invalid/org/policy.git failed",
            "exit 255",
        ),
        ("Connection closed by 192.0.2.1 port 22", "ssh closed the connection", "exec >&-\ncat >/dev/null"),
    ];
    for (i, (said, expected, then)) in cases.iter().enumerate() {
        let ssh = stand_in(dir, &format!("ssh-{i}"), &format!("echo '{said}' >&2\n{then}"));
        let mut config = repos.source("ssh://git@git.example.invalid/org/policy.git", &dir.join(format!("m{i}.git")));
        config.auth.ssh_program = Some(ssh);
        let f = follower(config);
        rt().block_on(async {
            assert!(!f.sync_once().await);
            let e = f.status().last_error.unwrap();
            assert!(e.contains(expected) && e.contains(said.trim_end_matches('.')), "{e}");
        });
    }
    let mut config = repos.source("ssh://git@git.example.invalid/org/policy.git", &dir.join("m.git"));
    config.auth.ssh_program = Some(dir.join("no-such-ssh"));
    let f = follower(config);
    rt().block_on(async {
        assert!(!f.sync_once().await);
        let e = f.status().last_error.unwrap();
        assert!(e.contains("the OpenSSH client"), "{e}");
    });
}

#[test]
fn a_redirect_is_followed_but_the_token_stays_with_its_host() {
    let repos = Repos::new();
    let dir = repos.dir.path();
    let home = HttpGit::serve(dir, "bot", "home-token-321", None);
    let elsewhere = HttpGit::serve(dir, "bot", "home-token-321", None);
    let url = |path: &str| format!("http://bot:home-token-321@127.0.0.1:{}/{path}", home.port);
    rt().block_on(async {
        let f = follower(repos.source(&url("moved/remote.git"), &dir.join("m1.git")));
        assert!(f.sync_once().await, "the same host keeps the token: {:?}", f.status().last_error);

        let away = url(&format!("away/{}/remote.git", elsewhere.port));
        let f = follower(repos.source(&away, &dir.join("m2.git")));
        assert!(!f.sync_once().await, "another host does not get the token");
        let e = f.status().last_error.unwrap();
        assert!(e.contains("asks for credentials (401)") && !e.contains("home-token-321"), "{e}");
    });
}
