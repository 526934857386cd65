//! The daemon config's `repository`: every Git setting of the follower is reachable from the
//! file, relative paths start at the file's folder, and what is wrong is named by its field (at
//! load when no file is needed, at start otherwise), never showing a secret.

use std::path::Path;
use std::process::Command;

use capstan::app::config::DaemonConfig;
use capstan::app::git::source_config;
use capstan::gitops::{Reference, SourceConfig};

use crate::gitops::{Repos, follower, rt};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const BOB: &str = "bob@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIGHtj39k4fCmIJ22ewu1UueQsbQlCt7Uz3LnJgeBaLz\n";
const HOSTS: &str =
    "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIGHtj39k4fCmIJ22ewu1UueQsbQlCt7Uz3LnJgeBaLz\n";

/// Writes `dir/capstan.yaml` with `repository` (a YAML flow mapping) and loads it.
fn load(dir: &Path, repository: &str) -> Result<DaemonConfig, String> {
    let text =
        format!("cluster: dev\nbackends: {{cloud: sim, cluster: sim}}\ndataDir: data\nrepository: {repository}\n");
    std::fs::write(dir.join("capstan.yaml"), text).unwrap();
    DaemonConfig::load(&dir.join("capstan.yaml")).map_err(|e| e.to_string())
}

/// Loads, then builds the follower's source config; either step's error as text.
fn source(dir: &Path, repository: &str) -> Result<SourceConfig, String> {
    source_config(&load(dir, repository)?).map_err(|e| e.to_string())
}

fn write(dir: &Path, rel: &str, text: &str) {
    std::fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
    std::fs::write(dir.join(rel), text).unwrap();
}

/// An ed25519 key pair at `dir/rel` (and `.pub`), with `passphrase` ("" for none).
fn keygen(dir: &Path, rel: &str, passphrase: &str) {
    std::fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
    let out =
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", passphrase, "-f"]).arg(dir.join(rel)).output();
    assert!(out.expect("ssh-keygen runs").status.success());
}

#[test]
fn branch_tag_or_commit_and_allow_rewrite_map_onto_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let reference = |repo: &str| source(dir.path(), repo).unwrap().reference;
    assert_eq!(reference("{url: /srv/policy}"), Reference::Branch("main".into()));
    assert_eq!(reference("{url: /srv/policy, branch: release}"), Reference::Branch("release".into()));
    assert_eq!(reference("{url: /srv/policy, tag: v1.2.0}"), Reference::Tag("v1.2.0".into()));
    assert_eq!(reference(&format!("{{url: /srv/policy, commit: {SHA}}}")), Reference::Commit(SHA.into()));

    let s = source(dir.path(), "{url: /srv/policy}").unwrap();
    assert!(!s.allow_rewrite && s.trust.is_none(), "{s:?}");
    assert_eq!(s.mirror, dir.path().join("data/mirror"), "dataDir is relative to the config file");
    assert!(source(dir.path(), "{url: /srv/policy, allowRewrite: true}").unwrap().allow_rewrite);
}

#[test]
fn credentials_and_signers_map_onto_auth_and_trust_from_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "secrets/token", "tok-123\n");
    let s = source(d, "{url: https://git.example.com/policy.git, username: bot, tokenFile: secrets/token}").unwrap();
    assert_eq!(s.auth.username.as_deref(), Some("bot"));
    assert_eq!(s.auth.token_file, Some(d.join("secrets/token")));
    // Any variable that is set will do: the token is only checked to be there.
    let s = source(d, "{url: https://git.example.com/policy.git, tokenEnv: PATH}").unwrap();
    assert_eq!(s.auth.token_env.as_deref(), Some("PATH"));

    keygen(d, "keys/deploy", "");
    write(d, "keys/known_hosts", HOSTS);
    write(d, "keys/allowed_signers", BOB);
    let s = source(
        d,
        "{url: 'ssh://git@git.example.com/policy.git', sshKeyFile: keys/deploy, knownHostsFile: keys/known_hosts,
          signatures: {allowedSignersFile: keys/allowed_signers}}",
    )
    .unwrap();
    assert_eq!(s.auth.ssh_key, Some(d.join("keys/deploy")));
    assert_eq!(s.auth.known_hosts, Some(d.join("keys/known_hosts")));
    assert_eq!(s.trust.unwrap().signers[0].principal, "bob@example.com");
}

#[test]
fn a_missing_or_unusable_file_is_named_by_its_field_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let error = |repo: &str| source(d, repo).unwrap_err();
    let e = error("{url: https://h/p.git, tokenFile: token}");
    let config = d.join("capstan.yaml").display().to_string();
    assert!(e.starts_with(&config) && e.contains("repository.tokenFile: cannot read"), "{e}");
    assert!(e.contains(&d.join("token").display().to_string()) && e.contains("it should hold the access token"), "{e}");
    let e = error("{url: 'ssh://git@h/p.git', knownHostsFile: known_hosts}");
    assert!(e.contains("repository.knownHostsFile: cannot read") && e.contains("ssh-keyscan"), "{e}");
    let e = error("{url: https://h/p.git, tokenEnv: CAPSTAN_NO_SUCH_TOKEN_VARIABLE}");
    assert!(e.contains("repository.tokenEnv: the environment variable CAPSTAN_NO_SUCH_TOKEN_VARIABLE"), "{e}");
    let e = error("{url: /srv/policy, signatures: {allowedSignersFile: allowed_signers}}");
    assert!(e.contains("repository.signatures.allowedSignersFile: cannot read"), "{e}");
    write(d, "ca.crt", "-----BEGIN PRIVATE KEY-----\n");
    let e = error("{url: https://h/p.git, caFile: ca.crt}");
    assert!(e.contains("repository.caFile") && e.contains("holds no certificate") && e.contains("PEM"), "{e}");
    write(d, "keyring.asc", "not a keyring");
    let e = error("{url: /srv/policy, signatures: {keyringFile: keyring.asc}}");
    assert!(e.contains("repository.signatures.keyringFile: OpenPGP keyring") && e.contains("gpg --export"), "{e}");

    keygen(d, "locked", "a passphrase");
    let e = error("{url: 'ssh://git@h/p.git', sshKeyFile: locked.pub}");
    assert!(e.contains("repository.sshKeyFile") && e.contains("is not a private key"), "{e}");
    let e = error("{url: 'ssh://git@h/p.git', sshKeyFile: locked}");
    assert!(e.contains("repository.sshKeyFile") && e.contains("passphrase"), "{e}");
}

#[test]
fn contradictions_are_refused_when_the_config_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let error = |repo: &str| load(dir.path(), repo).unwrap_err();
    let e = error(&format!("{{url: /srv/policy, tag: v1, commit: {SHA}}}"));
    assert!(e.contains("repository.tag and repository.commit are both set"), "{e}");
    assert!(error("{url: /srv/policy, branch: main, tag: v1}").contains("repository.branch and repository.tag"));
    let e = error("{url: /srv/policy, commit: abc123}");
    assert!(e.contains("repository.commit `abc123` is not a full commit id") && e.contains("40-character"), "{e}");
    let e = error("{url: https://h/p.git, tokenFile: t, tokenEnv: T}");
    assert!(e.contains("repository.tokenFile and repository.tokenEnv are both set"), "{e}");
    let e = error("{url: 'ssh://git@h/p.git', tokenFile: t}");
    assert!(e.contains("repository.tokenFile is used over https, but the url is ssh"), "{e}");
    let e = error("{url: 'git@h:p.git', caFile: ca.crt}");
    assert!(e.contains("repository.caFile is used over https, but the url is ssh"), "{e}");
    let e = error("{url: https://h/p.git, sshKeyFile: id}");
    assert!(e.contains("repository.sshKeyFile is used over ssh"), "{e}");
    assert!(error("{url: /srv/policy, signatures: {}}").contains("repository.signatures names no key"));
    assert!(error("{url: /srv/policy, knownHosts: k}").contains("unknown field `knownHosts`"));
}

#[test]
fn the_token_never_shows_in_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "token", "tok-SECRET-0042\n");
    let repo = "{url: 'https://bot:url-SECRET-0042@git.example.com/policy.git', tokenFile: token}";
    let cfg = load(dir.path(), repo).unwrap();
    let s = source_config(&cfg).unwrap();
    for shown in [format!("{cfg:?}"), format!("{s:?}")] {
        assert!(!shown.contains("SECRET") && shown.contains("git.example.com/policy.git"), "{shown}");
    }
}

#[test]
fn required_signatures_make_the_daemon_refuse_an_unsigned_commit() {
    let repos = Repos::new();
    write(repos.dir.path(), "allowed_signers", BOB);
    let config = source(repos.dir.path(), "{url: remote.git, signatures: {allowedSignersFile: allowed_signers}}");
    let f = follower(config.unwrap());
    rt().block_on(async {
        assert!(!f.sync_once().await, "the initial commit is unsigned");
        let st = f.status();
        assert!(st.last_errors[0].contains("not signed, and signed commits are required"), "{:?}", st.last_errors);
        assert!(st.applied_revision.is_none());
    });
}
