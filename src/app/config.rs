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

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Repository {
    /// A path, `file://`, `git://`, `https://` or `ssh://` URL.
    pub url: String,
    #[serde(default = "main")]
    pub branch: String,
    /// The folder inside the repository holding `fleet.yaml`.
    #[serde(default)]
    pub path: String,
    /// How often to fetch when no webhook or file watch fires (default 1m).
    #[serde(default)]
    pub poll: Option<GoDuration>,
    /// File holding the shared secret that signs webhook deliveries (`/hooks/git`).
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
}

fn main() -> String {
    "main".to_string()
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
    /// CSV of on-demand prices, `instance_type,usd_per_hour`: the catalog is read from EC2 and
    /// priced from it.
    #[serde(default)]
    pub prices_file: Option<PathBuf>,
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
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl DaemonConfig {
    pub fn load(path: &Path) -> Result<DaemonConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let mut cfg: DaemonConfig = serde_yaml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.display().to_string(),
            message: match e.location() {
                Some(l) => format!("line {} column {}: {e}", l.line(), l.column()),
                None => e.to_string(),
            },
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        cfg.resolve(&base);
        if cfg.sim.speed.is_some_and(|s| s.is_nan() || s <= 0.0) {
            return Err(ConfigError::Invalid {
                path: path.display().to_string(),
                message: "sim.speed must be above 0".into(),
            });
        }
        Ok(cfg)
    }

    fn resolve(&mut self, base: &Path) {
        let url = &self.repository.url;
        if !url.contains("://") && !url.starts_with('/') && !url.contains('@') {
            self.repository.url = base.join(url).display().to_string();
        }
        for w in &mut self.sim.workloads {
            if w.is_relative() {
                *w = base.join(&*w);
            }
        }
        for f in [&mut self.kube.kubeconfig, &mut self.aws.prices_file].into_iter().flatten() {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
        if let Some(f) = &mut self.repository.webhook_secret_file
            && f.is_relative()
        {
            *f = base.join(&*f);
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
