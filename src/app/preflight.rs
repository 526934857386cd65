//! Start-up checks of a loaded config against the world: every file it names is read, the data
//! folder made, and the repository fetched once, before any task starts. A problem found here
//! is a usage error (`capstan run` exits 2) naming the field and what to do.
//!
//! The repository: one on this machine (a path or `file://`) must be there, hold the followed
//! branch, tag or commit, a `fleet.yaml` at `repository.path`, and this cluster in it. A remote
//! is fetched too (at most [`REMOTE_WAIT`]): when it answers, the same holds; when it cannot be
//! reached (network, credentials, a timeout), the daemon starts anyway, logs why, and the
//! follower keeps retrying every `repository.poll`, as it does for a repository that goes away
//! later.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::checks;
use super::config::{CloudBackend, ClusterBackend, ConfigError, DaemonConfig};
use crate::cluster::workload::{self, Workload};
use crate::gitops::{Fetched, GitSource, Reference, SourceConfig, SourceError};
use crate::policy::ValidateError;

/// How long the first fetch of a remote repository may take before the daemon starts without.
pub const REMOTE_WAIT: Duration = Duration::from_secs(30);

/// What the checks read, for the daemon to use as is.
pub struct Prepared {
    /// The follower's source (credentials checked).
    pub source: SourceConfig,
    /// The webhook's shared secret, when `repository.webhookSecretFile` is set.
    pub webhook_secret: Option<Vec<u8>>,
    /// The simulated cluster's workloads (`sim.workloads`), parsed.
    pub workloads: Vec<Workload>,
}

/// Checks `cfg` against its files and repository; see the module's documentation.
pub async fn preflight(cfg: &DaemonConfig) -> Result<Prepared, ConfigError> {
    let invalid = |message| ConfigError::Invalid { path: cfg.name(), message };
    cfg.check()?;
    data_dir(&cfg.data_dir()).map_err(invalid)?;
    let webhook_secret = cfg.repository.webhook_secret_file.as_deref().map(webhook_secret).transpose();
    let webhook_secret = webhook_secret.map_err(invalid)?;
    let workloads = match cfg.backends.cluster {
        ClusterBackend::Sim => workloads(&cfg.sim.workloads).map_err(invalid)?,
        ClusterBackend::Kube => Vec::new(),
    };
    if cfg.backends.cloud == CloudBackend::Aws {
        real_files(cfg).map_err(invalid)?;
    }
    let source = super::git::source_config(cfg)?;
    repository(cfg, &source).await.map_err(invalid)?;
    Ok(Prepared { source, webhook_secret, workloads })
}

/// The data folder exists (or is made) and can hold the mirror.
fn data_dir(dir: &Path) -> Result<(), String> {
    let what = "point dataDir at a folder capstan may write (it keeps the Git mirror there)";
    if dir.exists() && !dir.is_dir() {
        return Err(format!("dataDir: {} is not a folder; {what}", dir.display()));
    }
    let mirror = dir.join("mirror");
    std::fs::create_dir_all(&mirror).map_err(|e| format!("dataDir: cannot make {}: {e}; {what}", mirror.display()))
}

fn webhook_secret(file: &Path) -> Result<Vec<u8>, String> {
    let field = "repository.webhookSecretFile";
    let secret = std::fs::read(file).map_err(|e| {
        format!(
            "{field}: cannot read {}: {e}; it should hold the secret the Git host signs deliveries with",
            file.display()
        )
    })?;
    let secret = secret.trim_ascii().to_vec();
    if secret.is_empty() {
        return Err(format!(
            "{field}: {} is empty; write the webhook secret there (an empty secret would accept anyone), or remove the field",
            file.display()
        ));
    }
    Ok(secret)
}

fn workloads(files: &[PathBuf]) -> Result<Vec<Workload>, String> {
    let mut all = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let field = format!("sim.workloads[{i}]");
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("{field}: cannot read {}: {e}; give a file of Kubernetes YAML", file.display()))?;
        let parsed = workload::parse(&file.display().to_string(), &text).map_err(|e| format!("{field}: {e}"))?;
        super::scale::check_workloads(&parsed).map_err(|e| format!("{field}: {}: {e}", file.display()))?;
        all.extend(parsed);
    }
    Ok(all)
}

/// The price file (optional: an override of the Pricing API's prices, checked when set) and the
/// kubeconfig of the real backends.
fn real_files(cfg: &DaemonConfig) -> Result<(), String> {
    if let Some(file) = &cfg.aws.prices_file {
        let prices = crate::cloud::prices::read(file).map_err(|e| format!("aws.pricesFile: {e}"))?;
        if prices.is_empty() {
            return Err(format!(
                "aws.pricesFile: {} lists no price; write instance_type,usd_per_hour lines, or remove the field to use the AWS Pricing API's prices",
                file.display()
            ));
        }
    }
    if let Some(file) = &cfg.kube.kubeconfig {
        std::fs::read(file).map_err(|e| format!("kube.kubeconfig: cannot read {}: {e}", file.display()))?;
    }
    Ok(())
}

/// A local repository's path (a path or `file://` URL).
fn local_path(url: &str) -> Option<&Path> {
    url.strip_prefix("file://").or_else(|| url.starts_with('/').then_some(url)).map(Path::new)
}

/// The repository at the followed reference; see the module's documentation.
async fn repository(cfg: &DaemonConfig, source: &SourceConfig) -> Result<(), String> {
    let url = &cfg.repository.url;
    let shown = crate::gitops::auth::redact(url);
    let peek = GitSource::new(source.clone(), None);
    let fetched = match local_path(url) {
        Some(path) => {
            if !path.exists() {
                return Err(format!(
                    "repository.url: {} does not exist; give the path of a Git repository (relative paths start at the config file's folder) or a URL",
                    path.display()
                ));
            }
            peek.peek().await.map_err(|e| fetch_error(source, &e))?
        }
        None => match tokio::time::timeout(REMOTE_WAIT, peek.peek()).await {
            Ok(Ok(f)) => f,
            Ok(Err(e @ SourceError::Reference { .. })) => return Err(fetch_error(source, &e)),
            Ok(Err(e)) => {
                tracing::warn!(url = %shown, error = %e, "cannot fetch the repository at start; starting anyway, the follower retries every poll");
                return Ok(());
            }
            Err(_) => {
                tracing::warn!(url = %shown, seconds = REMOTE_WAIT.as_secs(), "the repository did not answer at start; starting anyway, the follower retries every poll");
                return Ok(());
            }
        },
    };
    fleet(cfg, &fetched)
}

/// The field a fetch error is about.
fn fetch_error(source: &SourceConfig, e: &SourceError) -> String {
    let field = match (e, &source.reference) {
        (SourceError::Reference { .. }, Reference::Branch(_)) => "repository.branch",
        (SourceError::Reference { .. }, Reference::Tag(_)) => "repository.tag",
        (SourceError::Reference { .. }, Reference::Commit(_)) => "repository.commit",
        _ => "repository.url",
    };
    format!("{field}: {e}")
}

/// `fleet.yaml` at `repository.path`, this cluster in it, and a state store for it.
fn fleet(cfg: &DaemonConfig, fetched: &Fetched) -> Result<(), String> {
    let snapshot = &fetched.snapshot;
    if snapshot.get("fleet.yaml").is_none() && snapshot.get("fleet.yml").is_none() {
        let place = match cfg.repository.path.as_str() {
            "" => "the repository's root".to_string(),
            p => format!("`{p}`"),
        };
        return Err(format!(
            "repository.path: no fleet.yaml in {place} at {}; set repository.path to the folder of the repository that holds fleet.yaml",
            fetched.revision
        ));
    }
    let validation = match crate::policy::validate(snapshot, Some(&cfg.cluster)) {
        Ok(v) => v,
        Err(e @ ValidateError::UnknownCluster { .. }) => {
            return Err(format!("cluster: {e} at {}; set cluster to one of them", fetched.revision));
        }
    };
    let entry = validation.policies.first().and_then(|p| p.fleet_entry.as_ref());
    match (&cfg.state_store, entry) {
        (Some(_), _) => {}
        (None, Some(e)) => {
            let field = format!("fleet.yaml's stateStore for {}", cfg.cluster);
            if let Err(why) = checks::state_store(&field, &e.state_store) {
                return Err(format!(
                    "stateStore is not set, and {why}; set stateStore in the config or fix fleet.yaml"
                ));
            }
        }
        // fleet.yaml did not load: the follower reports why, and what holds the store.
        (None, None) => {}
    }
    Ok(())
}
