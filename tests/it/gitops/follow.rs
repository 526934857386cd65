//! The gate: pushed commits are followed, an invalid or unsigned revision keeps the last known
//! good one in force, a rewritten history is refused, and a wrong URL, branch or credential
//! says which and what to check without showing the secret.

use std::path::Path;
use std::process::Command;

use capstan::gitops::signature::Trust;
use capstan::gitops::{GitSource, Reference, SourceError};

use super::transports::HttpGit;
use super::{Daemon, Repos, follower, git, rt};

#[test]
fn pushed_commits_are_followed_and_a_bad_one_keeps_the_last_known_good() {
    let repos = Repos::new();
    let daemon = Daemon::serve(repos.dir.path());
    let mirror = repos.dir.path().join("mirror.git");
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = capstan::gitops::metrics::GitMetrics::register(&mut registry);
    let f = follower(repos.source(&daemon.url("remote.git"), &mirror)).with_metrics(metrics);
    rt().block_on(async {
        let first = git(&repos.work(), &["rev-parse", "HEAD"]);
        assert!(f.sync_once().await, "{:?}", f.status().last_error);
        assert_eq!(f.status().applied_revision.unwrap().to_string(), format!("main@sha1:{first}"));
        assert!(!f.sync_once().await, "nothing new");

        repos.set_cpu_limit("200");
        let second = repos.commit("Raise the cpu limit");
        assert!(f.sync_once().await);
        let st = f.status();
        assert_eq!(st.applied_revision.unwrap().sha, second);
        let policy = f.accepted().unwrap().policy.clone();
        assert_eq!(policy.node_pool("default").unwrap().value.spec.limits.as_ref().unwrap()["cpu"].to_string(), "200");

        repos.set_cpu_limit("20x");
        let bad = repos.commit("Typo in the cpu limit");
        assert!(!f.sync_once().await, "an invalid revision is not put in force");
        let st = f.status();
        assert_eq!(st.applied_revision.as_ref().unwrap().sha, second, "the last known good stays");
        assert_eq!(st.last_revision.as_ref().unwrap().sha, bad);
        assert!(st.last_error.as_ref().unwrap().contains("stays in force"), "{:?}", st.last_error);
        assert!(
            st.last_errors[0].contains("base/nodepools/default.yaml:") && st.last_errors[0].contains("20x"),
            "{:?}",
            st.last_errors
        );
        assert!(!f.sync_once().await, "still rejected");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(&format!("capstan_policy_revision_applied{{revision=\"main@sha1:{second}\"}} 1")),
            "{text}"
        );
        assert!(
            text.contains(&format!("capstan_policy_revision_applied{{revision=\"main@sha1:{first}\"}} 0")),
            "{text}"
        );
        assert!(text.contains("capstan_policy_failures_total{reason=\"rejected\"} 1"), "judged once: {text}");
        assert!(text.contains("capstan_policy_fetches_total 5"), "{text}");

        repos.set_cpu_limit("300");
        let fixed = repos.commit("Fix the cpu limit");
        assert!(f.sync_once().await);
        assert_eq!(f.status().applied_revision.unwrap().sha, fixed);
        assert_eq!(f.status().last_error, None);
    });
}

#[test]
fn a_force_push_is_refused_unless_allowed() {
    let repos = Repos::new();
    let mirror = repos.dir.path().join("mirror.git");
    let remote = repos.remote().display().to_string();
    let f = follower(repos.source(&remote, &mirror));
    rt().block_on(async {
        repos.set_cpu_limit("200");
        let kept = repos.commit("Raise the cpu limit");
        assert!(f.sync_once().await);
        git(&repos.work(), &["reset", "-q", "--hard", "HEAD~1"]);
        repos.set_cpu_limit("150");
        let rewritten = repos.commit("Rewritten history");
        assert!(!f.sync_once().await);
        let st = f.status();
        assert_eq!(st.applied_revision.unwrap().sha, kept);
        let error = st.last_error.unwrap();
        assert!(error.contains("history was rewritten") && error.contains("allowRewrite"), "{error}");

        let mut config = repos.source(&remote, &repos.dir.path().join("mirror2.git"));
        config.allow_rewrite = true;
        let source = GitSource::new(config, Some(&kept));
        let f2 = capstan::gitops::Follower::new(source, "dev");
        assert!(f2.sync_once().await, "{:?}", f2.status().last_error);
        assert_eq!(f2.status().applied_revision.unwrap().sha, rewritten);
    });
}

fn keygen(dir: &Path, name: &str) -> std::path::PathBuf {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    key
}

#[test]
fn only_commits_signed_by_an_allowed_key_are_put_in_force() {
    let repos = Repos::new();
    let keys = repos.dir.path();
    let trusted = keygen(keys, "trusted");
    let stranger = keygen(keys, "stranger");
    let public = std::fs::read_to_string(trusted.with_extension("pub")).unwrap();
    let allowed = keys.join("allowed_signers");
    std::fs::write(&allowed, format!("alice@example.com namespaces=\"git\" {public}")).unwrap();
    let mut config = repos.source(&repos.remote().display().to_string(), &keys.join("mirror.git"));
    config.trust = Some(Trust::from_allowed_signers(&allowed).unwrap());
    let f = follower(config);
    let sign = |key: &Path| {
        vec![
            "-c".to_string(),
            "gpg.format=ssh".into(),
            "-c".into(),
            format!("user.signingkey={}", key.display()),
            "-c".into(),
            "commit.gpgsign=true".into(),
        ]
    };
    rt().block_on(async {
        assert!(!f.sync_once().await, "the initial commit is unsigned");
        assert!(f.status().last_errors[0].contains("not signed"), "{:?}", f.status().last_errors);

        repos.set_cpu_limit("200");
        let args = sign(&stranger);
        let untrusted = repos.commit_with("Signed by a stranger", &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!f.sync_once().await);
        let st = f.status();
        assert_eq!(st.last_revision.unwrap().sha, untrusted);
        assert!(st.last_errors[0].contains("not an allowed signer"), "{:?}", st.last_errors);
        assert!(st.applied_revision.is_none());

        repos.set_cpu_limit("300");
        let args = sign(&trusted);
        let good = repos.commit_with("Signed by Alice", &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(f.sync_once().await, "{:?}", f.status().last_errors);
        assert_eq!(f.status().applied_revision.unwrap().sha, good);
    });
}

#[test]
fn a_wrong_url_branch_or_credential_says_which_and_never_shows_the_secret() {
    let repos = Repos::new();
    let daemon = Daemon::serve(repos.dir.path());
    let mirror = repos.dir.path().join("mirror.git");
    rt().block_on(async {
        let f = follower(repos.source(&daemon.url("nope.git"), &mirror));
        f.sync_once().await;
        let e = f.status().last_error.unwrap();
        assert!(e.contains("cannot fetch git://127.0.0.1") && e.contains("check the repository URL"), "{e}");

        let mut config = repos.source(&daemon.url("remote.git"), &mirror);
        config.reference = Reference::Branch("release".into());
        let f = follower(config);
        f.sync_once().await;
        let e = f.status().last_error.unwrap();
        assert!(e.contains("branch `release` not found"), "{e}");

        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("https://bot:TOPSECRET-token@127.0.0.1:{port}/org/policy.git");
        let f = follower(repos.source(&url, &mirror));
        f.sync_once().await;
        let e = f.status().last_error.unwrap();
        assert!(!e.contains("TOPSECRET"), "the token never shows: {e}");
        assert!(e.contains(&format!("https://127.0.0.1:{port}/org/policy.git")), "{e}");
    });
    let e = SourceError::Auth { url: "u".into(), message: "m".into() };
    assert!(e.to_string().starts_with("authentication to u failed"));
}

#[test]
fn a_token_authenticates_over_http_and_a_wrong_one_is_named_but_never_shown() {
    let repos = Repos::new();
    let server = HttpGit::serve(repos.dir.path(), "bot", "right-token-123", None);
    let url = format!("http://127.0.0.1:{}/remote.git", server.port);
    let token_file = repos.dir.path().join("token");
    rt().block_on(async {
        std::fs::write(&token_file, "wrong-token-456\n").unwrap();
        let mut config = repos.source(&url, &repos.dir.path().join("mirror.git"));
        config.auth.username = Some("bot".into());
        config.auth.token_file = Some(token_file.clone());
        let f = follower(config.clone());
        f.sync_once().await;
        let e = f.status().last_error.unwrap();
        assert!(e.contains(&format!("authentication to {url} failed")), "{e}");
        assert!(e.contains(&format!("check the token in {}", token_file.display())), "{e}");
        assert!(!e.contains("wrong-token-456") && !e.contains("right-token-123"), "{e}");

        std::fs::write(&token_file, "right-token-123\n").unwrap();
        let f = follower(config);
        assert!(f.sync_once().await, "{:?}", f.status().last_error);

        let with_creds = format!("http://bot:right-token-123@127.0.0.1:{}/remote.git", server.port);
        let f = follower(repos.source(&with_creds, &repos.dir.path().join("mirror2.git")));
        assert!(f.sync_once().await, "{:?}", f.status().last_error);
        let shown = format!("{:?}", f.status());
        assert!(!shown.contains("right-token-123"), "{shown}");
    });
}

/// A throwaway GnuPG home with one ed25519 signing key; returns (home, fingerprint).
fn gpg_key(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let home = dir.join(format!("gnupg-{name}"));
    std::fs::create_dir_all(&home).unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg").env("GNUPGHOME", &home).args(["--batch", "--quiet"]).args(args).output().unwrap();
        assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    gpg(&["--passphrase", "", "--quick-gen-key", &format!("{name} <{name}@example.com>"), "ed25519", "sign", "never"]);
    let listing = gpg(&["--with-colons", "--list-keys"]);
    let fpr = listing.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap().to_string();
    (home, fpr)
}

#[test]
fn openpgp_signatures_are_checked_against_the_keyring() {
    let repos = Repos::new();
    let dir = repos.dir.path();
    let (bob_home, bob) = gpg_key(dir, "bob");
    let (eve_home, eve) = gpg_key(dir, "eve");
    let export = Command::new("gpg")
        .env("GNUPGHOME", &bob_home)
        .args(["--batch", "--armor", "--export", &bob])
        .output()
        .unwrap();
    let keyring = dir.join("keyring.asc");
    std::fs::write(&keyring, export.stdout).unwrap();
    let ssh_allowed = dir.join("allowed_signers");
    let trusted_ssh = keygen(dir, "ssh-trusted");
    std::fs::write(
        &ssh_allowed,
        format!("alice@example.com {}", std::fs::read_to_string(trusted_ssh.with_extension("pub")).unwrap()),
    )
    .unwrap();
    let trust = Trust::from_allowed_signers(&ssh_allowed).unwrap().with_pgp_keyring(&keyring).unwrap();
    let mut config = repos.source(&repos.remote().display().to_string(), &dir.join("mirror.git"));
    config.trust = Some(trust);
    let f = follower(config);
    let signed_commit = |home: &Path, fpr: &str, message: &str| {
        let w = repos.work();
        git(&w, &["add", "-A"]);
        let out = Command::new("git")
            .current_dir(&w)
            .env("GNUPGHOME", home)
            .args([
                "-c",
                "gpg.format=openpgp",
                "-c",
                &format!("user.signingkey={fpr}"),
                "commit",
                "-q",
                "-S",
                "-m",
                message,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        git(&w, &["push", "-q", "origin", "main"]);
        git(&w, &["rev-parse", "HEAD"])
    };
    rt().block_on(async {
        repos.set_cpu_limit("200");
        signed_commit(&eve_home, &eve, "Signed by Eve");
        assert!(!f.sync_once().await);
        assert!(f.status().last_errors[0].contains("not in the keyring"), "{:?}", f.status().last_errors);
        repos.set_cpu_limit("300");
        let good = signed_commit(&bob_home, &bob, "Signed by Bob");
        assert!(f.sync_once().await, "{:?}", f.status().last_errors);
        assert_eq!(f.status().applied_revision.unwrap().sha, good);
    });
}

#[test]
fn a_tag_or_a_pinned_commit_is_followed_instead_of_the_branch() {
    let repos = Repos::new();
    let remote = repos.remote().display().to_string();
    let first = git(&repos.work(), &["rev-parse", "HEAD"]);
    git(&repos.work(), &["tag", "v1"]);
    git(&repos.work(), &["push", "-q", "origin", "v1"]);
    repos.set_cpu_limit("200");
    let second = repos.commit("Raise the cpu limit");
    rt().block_on(async {
        let mut tagged = repos.source(&remote, &repos.dir.path().join("m1.git"));
        tagged.reference = Reference::Tag("v1".into());
        let f = follower(tagged);
        assert!(f.sync_once().await, "{:?}", f.status().last_error);
        assert_eq!(f.status().applied_revision.unwrap().to_string(), format!("v1@sha1:{first}"));

        let mut pinned = repos.source(&remote, &repos.dir.path().join("m2.git"));
        pinned.reference = Reference::Commit(first.clone());
        let f = follower(pinned);
        assert!(f.sync_once().await, "{:?}", f.status().last_error);
        assert_eq!(f.status().applied_revision.unwrap().sha, first, "not the newer {second}");

        let mut unknown = repos.source(&remote, &repos.dir.path().join("m3.git"));
        unknown.reference = Reference::Commit("0123456789012345678901234567890123456789".into());
        let f = follower(unknown);
        f.sync_once().await;
        assert!(f.status().last_error.unwrap().contains("check the pinned commit"));
    });
}
