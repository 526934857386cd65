//! The daemon's configuration file (`capstan run --config FILE`): which repository, which
//! cluster, which state store and which backends. Relative paths are resolved from the file's
//! folder, so a config kept beside the repository works from any working directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::policy::duration::GoDuration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudBackend {
    Aws,
    Sim,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterBackend {
    Kube,
    Sim,
}

/// Where policy comes from and what it takes to trust it. Credentials are named here (a file, an
/// environment variable), never written: the files are read by `app::git::source_config`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Repository {
    /// A path, `file://`, `git://`, `https://` or `ssh://` URL.
    pub url: String,
    /// The branch to follow; `main` when neither `tag` nor `commit` is set.
    #[serde(default)]
    pub branch: Option<String>,
    /// A tag to follow instead of a branch (a release moved by re-tagging).
    #[serde(default)]
    pub tag: Option<String>,
    /// A commit to pin instead of a branch (the full 40-character sha): policy stays frozen.
    #[serde(default)]
    pub commit: Option<String>,
    /// The folder inside the repository holding `fleet.yaml`.
    #[serde(default)]
    pub path: String,
    /// How often to fetch when no webhook or file watch fires (default 1m).
    #[serde(default)]
    pub poll: Option<GoDuration>,
    /// Accept a tip that does not descend from the last one seen (a force-push); default false.
    #[serde(default)]
    pub allow_rewrite: bool,
    /// https: the user name sent with the token (default `git`; GitHub and GitLab accept any).
    #[serde(default)]
    pub username: Option<String>,
    /// https: a file holding the token (a mounted Secret); read at every fetch, so rotation works.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// https: the environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// https: a PEM file of CA certificates to trust besides the system's (a Git server whose
    /// certificate a private CA signed).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// ssh: the private key file (without a passphrase: the key is used unattended).
    #[serde(default)]
    pub ssh_key_file: Option<PathBuf>,
    /// ssh: the known_hosts file the server's host key must be in (default `~/.ssh/known_hosts`).
    #[serde(default)]
    pub known_hosts_file: Option<PathBuf>,
    /// Require the tip commit to be signed by one of these keys; unset, signatures are not checked.
    #[serde(default)]
    pub signatures: Option<Signatures>,
    /// File holding the shared secret that signs webhook deliveries (`/hooks/git`).
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
}

impl std::fmt::Debug for Repository {
    /// The URL without credentials written in it; the rest names files and variables only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("url", &crate::gitops::auth::redact(&self.url))
            .field("branch", &self.branch)
            .field("tag", &self.tag)
            .field("commit", &self.commit)
            .field("path", &self.path)
            .field("poll", &self.poll)
            .field("allow_rewrite", &self.allow_rewrite)
            .field("username", &self.username)
            .field("token_file", &self.token_file)
            .field("token_env", &self.token_env)
            .field("ca_file", &self.ca_file)
            .field("ssh_key_file", &self.ssh_key_file)
            .field("known_hosts_file", &self.known_hosts_file)
            .field("signatures", &self.signatures)
            .field("webhook_secret_file", &self.webhook_secret_file)
            .finish()
    }
}

/// The keys whose signatures are trusted; at least one of the two files.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signatures {
    /// SSH-signed commits: an allowed-signers file (`principal ssh-ed25519 AAAA…`, as
    /// `ssh-keygen -Y verify` reads).
    #[serde(default)]
    pub allowed_signers_file: Option<PathBuf>,
    /// OpenPGP-signed commits: an armored keyring (`gpg --export --armor KEYID…`).
    #[serde(default)]
    pub keyring_file: Option<PathBuf>,
}

impl Repository {
    /// What can be checked without reading a file: one reference, a full commit id, one token
    /// source, credentials that fit the URL's transport, at least one signature key file.
    pub(super) fn check(&self) -> Result<(), String> {
        let refs = [("branch", &self.branch), ("tag", &self.tag), ("commit", &self.commit)];
        let set: Vec<&str> = refs.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| *k).collect();
        if let [a, b, ..] = set[..] {
            return Err(format!(
                "repository.{a} and repository.{b} are both set; follow one of branch, tag and commit"
            ));
        }
        if let Some((name, _)) = refs.iter().find(|(_, v)| v.as_ref().is_some_and(|v| v.trim().is_empty())) {
            return Err(format!("repository.{name} is empty; name one, or remove the field"));
        }
        if let Some(sha) = &self.commit
            && (sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(format!(
                "repository.commit `{sha}` is not a full commit id; write the 40-character sha (git rev-parse HEAD)"
            ));
        }
        if self.token_file.is_some() && self.token_env.is_some() {
            return Err("repository.tokenFile and repository.tokenEnv are both set; keep one".into());
        }
        let https = ["tokenFile", "tokenEnv", "username", "caFile"];
        let https_set =
            [self.token_file.is_some(), self.token_env.is_some(), self.username.is_some(), self.ca_file.is_some()];
        let ssh = ["sshKeyFile", "knownHostsFile"];
        let ssh_set = [self.ssh_key_file.is_some(), self.known_hosts_file.is_some()];
        match transport(&self.url) {
            Transport::Ssh => {
                if let Some(i) = https_set.iter().position(|s| *s) {
                    return Err(format!(
                        "repository.{} is used over https, but the url is ssh; use repository.sshKeyFile (the user goes in the url: ssh://git@host/…)",
                        https[i]
                    ));
                }
            }
            Transport::Http => {
                if let Some(i) = ssh_set.iter().position(|s| *s) {
                    return Err(format!(
                        "repository.{} is used over ssh, but the url is http(s); use repository.tokenFile or repository.tokenEnv",
                        ssh[i]
                    ));
                }
            }
            Transport::Other => {}
        }
        if let Some(s) = &self.signatures
            && s.allowed_signers_file.is_none()
            && s.keyring_file.is_none()
        {
            return Err("repository.signatures names no key; set signatures.allowedSignersFile and/or signatures.keyringFile, or remove signatures to accept unsigned commits".into());
        }
        Ok(())
    }
}

/// How a repository URL is fetched, for the credentials that apply to it.
enum Transport {
    Ssh,
    Http,
    /// A path, `file://` or `git://`: no credentials.
    Other,
}

fn transport(url: &str) -> Transport {
    let scp_like = !url.contains("://") && !url.starts_with('/') && url.contains('@') && url.contains(':');
    if url.starts_with("ssh://") || scp_like {
        Transport::Ssh
    } else if url.starts_with("https://") || url.starts_with("http://") {
        Transport::Http
    } else {
        Transport::Other
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Backends {
    pub cloud: CloudBackend,
    pub cluster: ClusterBackend,
}

/// Settings of the simulated backends.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sim {
    /// Simulated seconds per wall-clock second (default 1).
    #[serde(default)]
    pub speed: Option<f64>,
    /// Kubernetes YAML applied to the simulated cluster at start.
    #[serde(default)]
    pub workloads: Vec<PathBuf>,
    /// Write the kOps Cluster spec (from the repository's copy) and nodeup scripts to the state
    /// store when they are missing, as `kops create cluster` would have.
    #[serde(default)]
    pub seed_state_store: bool,
}

/// The Kubernetes backend.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kube {
    /// A kubeconfig file; default: in-cluster service account, else `KUBECONFIG` or ~/.kube/config.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Where the leader-election Lease lives (default `kube-system`).
    #[serde(default)]
    pub lease_namespace: Option<String>,
    /// The Lease's name (default `capstan-<cluster>`).
    #[serde(default)]
    pub lease_name: Option<String>,
    /// This replica's name in the Lease (default `POD_NAME`, else host name and process id).
    #[serde(default)]
    pub identity: Option<String>,
}

/// The EC2 backend.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Aws {
    /// Default: the cluster's Fleet entry.
    #[serde(default)]
    pub region: Option<String>,
    /// An EC2 endpoint override (a test server, a VPC endpoint).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// CSV of on-demand prices, `instance_type,usd_per_hour`: an override of the prices read
    /// from the AWS Pricing API (a row here wins over the API's price for that type).
    #[serde(default)]
    pub prices_file: Option<PathBuf>,
    /// The AWS Pricing API (on-demand prices).
    #[serde(default)]
    pub pricing: Pricing,
    /// The interruption queue (SQS, fed by EventBridge): spot interruption warnings, rebalance
    /// recommendations, scheduled changes, instance state changes.
    #[serde(default)]
    pub interruption: Interruption,
}

/// Where on-demand prices come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pricing {
    /// An endpoint override for the Pricing API (a test server, a VPC endpoint).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The Pricing API's region; default: the partition's pricing region for the cluster's region.
    #[serde(default)]
    pub region: Option<String>,
    /// How often prices are read again (default 24h).
    #[serde(default)]
    pub refresh: Option<GoDuration>,
}

pub use crate::cloud::interruption::RebalancePolicy;

/// The interruption queue.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Interruption {
    /// The SQS queue's name or URL; unset, interruptions are learned only when nodes go.
    #[serde(default)]
    pub queue: Option<String>,
    /// An endpoint override for SQS (a test server, a VPC endpoint).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// What a rebalance recommendation does (default `replace`).
    #[serde(default)]
    pub rebalance: RebalancePolicy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DaemonConfig {
    /// The cluster's folder name in the repository (its Fleet entry).
    pub cluster: String,
    pub repository: Repository,
    /// The kOps state store URL; default: the cluster's Fleet entry.
    #[serde(default)]
    pub state_store: Option<String>,
    pub backends: Backends,
    /// Address of the HTTP server (metrics, health, status, webhook); default 127.0.0.1:8080.
    #[serde(default)]
    pub listen: Option<String>,
    /// Host names the status page and the other routes answer to beyond IP addresses,
    /// `localhost`, single-label and cluster service names (an ingress name, say).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Where the Git mirror is kept; default a folder under the system's temporary directory.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Time between kOps state-store passes (default 1m); a new revision triggers one at once.
    #[serde(default)]
    pub reconcile_interval: Option<GoDuration>,
    #[serde(default)]
    pub sim: Sim,
    #[serde(default)]
    pub kube: Kube,
    #[serde(default)]
    pub aws: Aws,
    #[serde(default)]
    pub rollout: Rollout,
    /// How every S3 state store is reached (this cluster's and the other clusters' of the fleet).
    #[serde(default)]
    pub s3: S3,
    /// Log lines as `text` (default) or `json`, one object per line; `--log-format` overrides it.
    #[serde(default)]
    pub log_format: Option<super::logs::LogFormat>,
    /// The file this was loaded from, named in errors found after loading (empty when the config
    /// was built in code).
    #[serde(skip)]
    pub file: PathBuf,
}

/// The fleet rollout on this cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    /// How often the gate runs and the heartbeat in `status.json` is written (default 10s); a
    /// newly accepted revision runs it at once. Keep it well below the Fleet's heartbeatTimeout.
    #[serde(default)]
    pub interval: Option<GoDuration>,
}

/// S3 endpoint and addressing, for S3-compatible stores and VPC endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3 {
    /// Default: the AWS chain's.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`).
    #[serde(default)]
    pub force_path_style: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl DaemonConfig {
    /// The file this was loaded from, as errors name it.
    pub fn name(&self) -> String {
        if self.file.as_os_str().is_empty() { "the daemon config".into() } else { self.file.display().to_string() }
    }

    pub(super) fn resolve(&mut self, base: &Path) {
        let url = &self.repository.url;
        if !url.contains("://") && !url.starts_with('/') && !url.contains('@') {
            self.repository.url = base.join(url).display().to_string();
        }
        for w in &mut self.sim.workloads {
            if w.is_relative() {
                *w = base.join(&*w);
            }
        }
        let r = &mut self.repository;
        let mut files = vec![
            &mut self.data_dir,
            &mut self.kube.kubeconfig,
            &mut self.aws.prices_file,
            &mut r.webhook_secret_file,
            &mut r.token_file,
            &mut r.ca_file,
            &mut r.ssh_key_file,
            &mut r.known_hosts_file,
        ];
        if let Some(s) = &mut r.signatures {
            files.extend([&mut s.allowed_signers_file, &mut s.keyring_file]);
        }
        for f in files.into_iter().flatten() {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
        if let Some(s) = &self.state_store
            && let Some(rel) = s.strip_prefix("file://").filter(|r| !r.starts_with('/'))
        {
            self.state_store = Some(format!("file://{}", base.join(rel).display()));
        }
    }

    pub fn poll(&self) -> Duration {
        self.repository.poll.as_ref().map_or(Duration::from_secs(60), |d| d.duration())
    }

    pub fn reconcile_interval(&self) -> Duration {
        self.reconcile_interval.as_ref().map_or(Duration::from_secs(60), |d| d.duration())
    }

    /// Time between rollout passes; never below 100ms.
    pub fn rollout_interval(&self) -> Duration {
        self.rollout.interval.as_ref().map_or(Duration::from_secs(10), |d| d.duration()).max(Duration::from_millis(100))
    }

    pub fn s3_options(&self) -> crate::kops::s3::S3Options {
        crate::kops::s3::S3Options {
            endpoint: self.s3.endpoint.clone(),
            region: None,
            path_style: self.s3.force_path_style,
        }
    }

    pub fn listen(&self) -> &str {
        self.listen.as_deref().unwrap_or("127.0.0.1:8080")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("capstan-{}", self.cluster)))
    }
}

impl DaemonConfig {
    pub fn identity(&self) -> String {
        self.kube.identity.clone().or_else(|| std::env::var("POD_NAME").ok()).unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "capstan".into());
            format!("{host}-{}", std::process::id())
        })
    }

    pub fn lease(&self) -> (String, String) {
        (
            self.kube.lease_namespace.clone().unwrap_or_else(|| "kube-system".into()),
            self.kube.lease_name.clone().unwrap_or_else(|| format!("capstan-{}", self.cluster)),
        )
    }
}
