//! What a daemon config must satisfy before anything reads a file or the network: values in
//! their range, URLs capstan can follow or open, a pair of backends it runs. Run when the file
//! is loaded and again after command-line overrides; every error names the field, what was
//! found, and what is allowed.
//!
//! The files a config names, the data folder and the repository itself are checked next, at
//! start, by [`super::preflight`].

use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use super::config::{CloudBackend, ClusterBackend, ConfigError, DaemonConfig};
use crate::policy::duration::GoDuration;

/// The range of `repository.poll` and `reconcileInterval`: at least a second (a zero interval
/// would fetch or reconcile in a busy loop), at most a day.
pub const INTERVAL: RangeInclusive<Duration> = Duration::from_secs(1)..=Duration::from_secs(24 * 3600);

/// The range of `rollout.interval`: it must stay well below the Fleet's heartbeatTimeout.
pub const ROLLOUT_INTERVAL: RangeInclusive<Duration> = Duration::from_secs(1)..=Duration::from_secs(3600);

/// The range of `sim.speed`, simulated seconds per wall-clock second.
pub const SPEED: RangeInclusive<f64> = 0.001..=1000.0;

/// The range of `aws.pricing.refresh`: prices change a few times a year, and each read is about
/// ten pages of the Pricing API; at most a month, so the cached copy stays recent.
pub const PRICE_REFRESH: RangeInclusive<Duration> = Duration::from_secs(600)..=Duration::from_secs(30 * 24 * 3600);

/// The URL schemes a repository is fetched with (besides a path and `user@host:path`).
const REPOSITORY_SCHEMES: [&str; 7] = ["file", "git", "http", "https", "ssh", "git+ssh", "ssh+git"];

// Loading lives beside the checks it ends with, so the config model needs neither.
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
        cfg.file = path.to_path_buf();
        cfg.check()?;
        Ok(cfg)
    }

    /// Everything that needs no file and no network ([`check`]): run at load, and
    /// again after command-line overrides.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |message| ConfigError::Invalid { path: self.name(), message };
        self.repository.check().map_err(invalid)?;
        check(self).map_err(invalid)
    }
}

/// Everything about `cfg` that needs no file and no network.
pub fn check(cfg: &DaemonConfig) -> Result<(), String> {
    cluster_name(&cfg.cluster)?;
    backends(cfg)?;
    interval("repository.poll", cfg.repository.poll.as_ref(), &INTERVAL)?;
    interval("reconcileInterval", cfg.reconcile_interval.as_ref(), &INTERVAL)?;
    interval("rollout.interval", cfg.rollout.interval.as_ref(), &ROLLOUT_INTERVAL)?;
    speed(cfg.sim.speed)?;
    repository_url(&cfg.repository.url)?;
    if let Some(url) = &cfg.state_store {
        state_store("stateStore", url)?;
    }
    interval("aws.pricing.refresh", cfg.aws.pricing.refresh.as_ref(), &PRICE_REFRESH)?;
    let endpoints = [
        ("s3.endpoint", &cfg.s3.endpoint),
        ("aws.endpoint", &cfg.aws.endpoint),
        ("aws.pricing.endpoint", &cfg.aws.pricing.endpoint),
    ];
    for (field, url) in endpoints {
        if let Some(url) = url {
            endpoint(field, url)?;
        }
    }
    Ok(())
}

/// A folder name of the repository: it also names the default data folder and the Lease.
fn cluster_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if name.is_empty() || name.starts_with('.') || !name.chars().all(allowed) {
        return Err(format!(
            "cluster `{name}` is not a cluster name; write the name of the cluster's folder under clusters/ and its fleet.yaml entry (letters, digits, `-`, `.`, `_`)"
        ));
    }
    Ok(())
}

fn backends(cfg: &DaemonConfig) -> Result<(), String> {
    match (cfg.backends.cloud, cfg.backends.cluster) {
        (CloudBackend::Sim, ClusterBackend::Sim) => Ok(()),
        (CloudBackend::Aws, ClusterBackend::Kube) => Ok(()),
        (cloud, cluster) => Err(format!(
            "backends: cloud: {} with cluster: {} is not a combination capstan runs; use {{cloud: aws, cluster: kube}} or {{cloud: sim, cluster: sim}}",
            cloud_name(cloud),
            cluster_backend_name(cluster)
        )),
    }
}

fn cloud_name(b: CloudBackend) -> &'static str {
    match b {
        CloudBackend::Aws => "aws",
        CloudBackend::Sim => "sim",
    }
}

fn cluster_backend_name(b: ClusterBackend) -> &'static str {
    match b {
        ClusterBackend::Kube => "kube",
        ClusterBackend::Sim => "sim",
    }
}

fn interval(field: &str, value: Option<&GoDuration>, range: &RangeInclusive<Duration>) -> Result<(), String> {
    let Some(d) = value else { return Ok(()) };
    if range.contains(&d.duration()) {
        return Ok(());
    }
    let shown = |d: &Duration| GoDuration::from_secs(d.as_secs()).as_str().to_string();
    Err(format!(
        "{field}: {} is out of range; write a duration from {} to {}",
        d.as_str(),
        shown(range.start()),
        shown(range.end())
    ))
}

/// `sim.speed` (also set by `--speed`): a finite number in [`SPEED`].
pub fn speed(value: Option<f64>) -> Result<(), String> {
    match value {
        Some(s) if !SPEED.contains(&s) => Err(format!(
            "sim.speed: {s} is out of range; write a number of simulated seconds per second from {} to {}",
            SPEED.start(),
            SPEED.end()
        )),
        _ => Ok(()),
    }
}

/// A path (made absolute from the config's folder), `user@host:path`, or a URL whose scheme
/// Git fetches with and which names a host (or, for `file://`, an absolute path).
fn repository_url(url: &str) -> Result<(), String> {
    let hint = "write a path, or a file://, git://, https:// or ssh:// URL (or user@host:path)";
    if url.trim().is_empty() {
        return Err(format!("repository.url is empty; {hint}"));
    }
    if url.chars().any(char::is_control) {
        return Err(format!("repository.url `{}` contains control characters; {hint}", shown(url)));
    }
    let Some((scheme, rest)) = url.split_once("://") else { return Ok(()) };
    // A local path may hold spaces; a URL may not.
    if url.chars().any(char::is_whitespace) {
        return Err(format!("repository.url `{}` contains spaces; {hint}", shown(url)));
    }
    // A scheme is letters, digits, `+`, `-` and `.`; anything else before `://` is the scp form's
    // user-info (which may hold a password), never printed.
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !is_scheme {
        return Ok(());
    }
    if !REPOSITORY_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return Err(format!("repository.url: the scheme `{scheme}://` is not one Git fetches with; {hint}"));
    }
    // The user-info runs to the last `@`; the host to the first `/`, `?` or `#` after it.
    let place = rest.rsplit_once('@').map_or(rest, |(_, p)| p);
    let host = place.split(['/', '?', '#']).next().unwrap_or_default();
    if scheme == "file" {
        if !rest.starts_with('/') {
            return Err(format!(
                "repository.url `{}`: write an absolute path, file:///path, or a plain path",
                shown(url)
            ));
        }
    } else if host.is_empty() || host.starts_with(':') {
        return Err(format!("repository.url `{}` names no host; {hint}", shown(url)));
    }
    Ok(())
}

/// The URL without credentials, for an error message.
fn shown(url: &str) -> String {
    crate::gitops::auth::redact(url)
}

/// A state store URL as `kops --state` takes it: `s3://bucket[/prefix]`, `file:///path`, or
/// `memory://` (tests).
pub fn state_store(field: &str, url: &str) -> Result<(), String> {
    let hint = "use s3://bucket[/prefix] or file:///absolute/path (as in `kops --state`)";
    match url.split_once("://") {
        Some(("s3", rest)) if !rest.trim_start_matches('/').is_empty() && !rest.contains(char::is_whitespace) => Ok(()),
        Some(("file", rest)) if rest.starts_with('/') => Ok(()),
        Some(("memory", _)) => Ok(()),
        _ => Err(format!("{field} `{url}` is not a state store capstan opens; {hint}")),
    }
}

/// An endpoint override: an http(s) URL with a host.
fn endpoint(field: &str, url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!(
            "{field} `{url}` is not an endpoint; write an http:// or https:// URL, e.g. https://s3.eu-west-1.amazonaws.com"
        )),
    }
}
