//! The daemon's Git source: the config's `repository` turned into the follower's
//! [`SourceConfig`]. Every file it names is read once here, so a missing token, key, known_hosts
//! or signers file stops `capstan run` at start with the field to fix, instead of failing every
//! fetch. Secrets stay in their files: the token file is read again at each fetch (a rotated
//! Secret is picked up) and nothing read here is kept or shown.

use std::path::Path;

use super::config::{ConfigError, DaemonConfig, Repository, Signatures};
use crate::gitops::auth::Auth;
use crate::gitops::signature::Trust;
use crate::gitops::{Reference, RepoUrl, SourceConfig};

/// The branch followed when the config names no branch, tag or commit.
const DEFAULT_BRANCH: &str = "main";

/// The follower's configuration for `cfg.repository`, its mirror under the data folder. Errors
/// name the config file, the field, the file it points at, and what to put there.
pub fn source_config(cfg: &DaemonConfig) -> Result<SourceConfig, ConfigError> {
    let repo = &cfg.repository;
    let invalid = |message: String| ConfigError::Invalid { path: config_name(cfg), message };
    check_credentials(repo).map_err(invalid)?;
    let trust = repo.signatures.as_ref().map(trust).transpose().map_err(invalid)?;
    Ok(SourceConfig {
        url: RepoUrl::new(repo.url.clone()),
        reference: reference(repo),
        path: repo.path.clone(),
        auth: Auth {
            username: repo.username.clone(),
            token_env: repo.token_env.clone(),
            token_file: repo.token_file.clone(),
            token: None,
            ca_file: repo.ca_file.clone(),
            ssh_key: repo.ssh_key_file.clone(),
            known_hosts: repo.known_hosts_file.clone(),
            ssh_program: None,
        },
        allow_rewrite: repo.allow_rewrite,
        trust,
        mirror: cfg.data_dir().join("mirror"),
    })
}

fn config_name(cfg: &DaemonConfig) -> String {
    if cfg.file.as_os_str().is_empty() { "the daemon config".into() } else { cfg.file.display().to_string() }
}

/// The tag or commit when one is set, else the branch (default `main`).
fn reference(repo: &Repository) -> Reference {
    match (&repo.tag, &repo.commit) {
        (Some(tag), _) => Reference::Tag(tag.clone()),
        (_, Some(sha)) => Reference::Commit(sha.clone()),
        _ => Reference::Branch(repo.branch.clone().unwrap_or_else(|| DEFAULT_BRANCH.into())),
    }
}

/// Reads a file the config names. The error says which field, which file, and what it should
/// hold; never the content.
fn read(field: &str, file: &Path, holds: &str) -> Result<String, String> {
    std::fs::read_to_string(file)
        .map_err(|e| format!("repository.{field}: cannot read {}: {e}; it should hold {holds}", file.display()))
}

/// The token is there, and so are the key and host keys; the key needs no passphrase.
fn check_credentials(repo: &Repository) -> Result<(), String> {
    if let Some(file) = &repo.token_file {
        let token = read("tokenFile", file, "the access token (a mounted Secret)")?;
        if token.trim().is_empty() {
            return Err(format!("repository.tokenFile: {} is empty; write the access token there", file.display()));
        }
    }
    if let Some(var) = &repo.token_env {
        let set = std::env::var(var).is_ok_and(|t| !t.trim().is_empty());
        if !set {
            return Err(format!(
                "repository.tokenEnv: the environment variable {var} is not set or empty; set it to the access token (e.g. from a Secret with secretKeyRef)"
            ));
        }
    }
    if let Some(file) = &repo.ca_file {
        let holds = "the CA certificates of the Git server, in PEM (-----BEGIN CERTIFICATE-----)";
        read("caFile", file, holds)?;
        crate::gitops::transport::ca_certificates(file).map_err(|e| format!("{e}; it should hold {holds}"))?;
    }
    if let Some(file) = &repo.ssh_key_file {
        check_ssh_key(file, &read("sshKeyFile", file, "the ssh private key")?)?;
    }
    if let Some(file) = &repo.known_hosts_file {
        let hosts = "the server's host key (ssh-keyscan HOST > known_hosts, then check it)";
        let text = read("knownHostsFile", file, hosts)?;
        if !text.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')) {
            return Err(format!("repository.knownHostsFile: {} lists no host; it should hold {hosts}", file.display()));
        }
    }
    Ok(())
}

/// A private key the ssh client can use unattended: not the public half, no passphrase.
fn check_ssh_key(file: &Path, text: &str) -> Result<(), String> {
    let shown = file.display();
    if !text.contains("PRIVATE KEY-----") {
        return Err(format!(
            "repository.sshKeyFile: {shown} is not a private key (the .pub file?); give the private key file"
        ));
    }
    let encrypted = if text.contains("BEGIN OPENSSH PRIVATE KEY") {
        let key = ssh_key::PrivateKey::from_openssh(text)
            .map_err(|e| format!("repository.sshKeyFile: {shown} cannot be read as an OpenSSH private key: {e}"))?;
        key.is_encrypted()
    } else {
        text.contains("ENCRYPTED")
    };
    if encrypted {
        return Err(format!(
            "repository.sshKeyFile: {shown} is protected by a passphrase, which capstan cannot enter; use a key without one (on a copy: ssh-keygen -p -N '' -f COPY)"
        ));
    }
    Ok(())
}

/// The keys of `signatures`: allowed SSH signers, OpenPGP keys, or both.
fn trust(s: &Signatures) -> Result<Trust, String> {
    let mut trust = Trust::default();
    if let Some(file) = &s.allowed_signers_file {
        let field = "signatures.allowedSignersFile";
        read(field, file, "the keys allowed to sign (`principal ssh-ed25519 AAAA…`)")?;
        trust = Trust::from_allowed_signers(file).map_err(|e| format!("repository.{field}: {e}"))?;
    }
    if let Some(file) = &s.keyring_file {
        let field = "signatures.keyringFile";
        read(field, file, "the armored public keys allowed to sign (gpg --export --armor KEYID)")?;
        trust = trust.with_pgp_keyring(file).map_err(|e| format!("repository.{field}: {e}"))?;
    }
    Ok(trust)
}
