//! `capstan plan` and `capstan reconcile`: the repository's InstanceGroups against the kOps
//! state store.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::out::{out, outln};
use super::output::OutputArg;
use super::{Output, exit, read_repo};
use crate::kops::show::{self, Style};
use crate::kops::{self, Cache, S3Options, Store, Target};
use crate::policy::EffectivePolicy;

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The config repository (a folder).
    #[arg(default_value = ".")]
    pub repo: PathBuf,
    /// The cluster: its name in fleet.yaml (`dev`) or its kOps name (`dev.example.com`).
    #[arg(long)]
    pub cluster: String,
    /// The kOps state store, `s3://bucket[/prefix]` or `file:///path`; default: the cluster's
    /// `stateStore` in fleet.yaml. `KOPS_STATE_STORE` is used when fleet.yaml names none, and
    /// must agree with it when it does.
    #[arg(long)]
    pub state_store: Option<String>,
    #[command(flatten)]
    pub s3: S3Args,
    /// AWS region of the bucket (default: the cluster's region in fleet.yaml, then the AWS chain).
    #[arg(long)]
    pub region: Option<String>,
    #[command(flatten)]
    pub output: OutputArg,
    /// How long a write to a folder store waits for another process's lock before the pass
    /// fails: a Go duration such as 500ms, 30s or 1m (units ns, us, ms, s, m, h), from 0s (do not
    /// wait) to 1h.
    #[arg(long, default_value = "30s", value_parser = super::duration::lock_timeout)]
    pub lock_timeout: Duration,
}

/// Where S3 is, for every command that opens a state store.
#[derive(Debug, Args)]
pub struct S3Args {
    /// S3 endpoint, for S3-compatible stores (default: the AWS chain's).
    #[arg(long)]
    pub s3_endpoint: Option<String>,
    /// Path-style S3 addressing, for S3-compatible stores.
    #[arg(long)]
    pub s3_path_style: bool,
}

impl S3Args {
    pub fn options(&self, region: Option<String>) -> S3Options {
        S3Options { endpoint: self.s3_endpoint.clone(), region, path_style: self.s3_path_style }
    }
}

struct Prepared {
    policy: EffectivePolicy,
    url: String,
    store: Store,
    target: Target,
    /// IGs read in earlier passes, re-read only when their ETag changes.
    cache: Cache,
}

fn style() -> Style {
    Style { color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() }
}

/// Warnings from the library (a wait for the store's lock, leftovers removed) on standard
/// error; `RUST_LOG` changes the level.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let ansi = crate::app::logs::colour();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

async fn prepare(args: &StoreArgs) -> Result<Prepared, ExitCode> {
    init_logs();
    let snapshot = read_repo(&args.repo)?;
    let cluster = super::cluster::resolve(&snapshot, &args.cluster).map_err(exit::usage)?;
    let v = crate::policy::validate(&snapshot, Some(&cluster)).map_err(exit::usage)?;
    if v.diagnostics.has_errors() {
        for d in v.diagnostics.sorted().iter().filter(|d| d.is_error()) {
            eprintln!("{}: {d}", args.repo.display());
        }
        eprintln!("error: the repository has {} error(s); nothing is planned from it", v.diagnostics.errors());
        return Err(ExitCode::from(1));
    }
    let policy = v.policies.into_iter().next().expect("one cluster was asked for");
    let fleet = policy.fleet_entry.as_ref();
    let env = std::env::var("KOPS_STATE_STORE").ok().filter(|v| !v.trim().is_empty());
    let url = store_url(args.state_store.as_deref(), fleet.map(|f| f.state_store.as_str()), env.as_deref(), &cluster)
        .map_err(exit::usage)?;
    let s3 = args.s3.options(args.region.clone().or_else(|| fleet.map(|f| f.region.clone())));
    let store = Store::open(&url, &s3).await.map_err(exit::usage)?;
    let store = store.with_lock_timeout(args.lock_timeout);
    let revision = format!("{}@{}", args.repo.display(), snapshot.digest());
    let target = Target::from_policy(&policy, &revision);
    Ok(Prepared { policy, url, store, target, cache: Cache::default() })
}

fn header(p: &Prepared) {
    outln!(
        "cluster {} (kOps {}), state store {}, revision {}",
        p.policy.cluster,
        p.target.cluster,
        p.url,
        p.target.revision
    );
}

pub fn plan(args: &StoreArgs) -> ExitCode {
    super::runtime().block_on(async {
        let p = match prepare(args).await {
            Ok(p) => p,
            Err(code) => return code,
        };
        let plan = match kops::plan_cluster(&p.store, &p.target, &p.cache).await {
            Ok(plan) => plan,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        match args.output.get() {
            Output::Text => {
                header(&p);
                out!("{}", show::plan_text(&plan, style()));
            }
            json_or_yaml => json_or_yaml.print(&plan),
        }
        if !plan.errors.is_empty() {
            ExitCode::from(exit::FAILED)
        } else if plan.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(exit::CHANGES)
        }
    })
}

pub fn reconcile(args: &StoreArgs, once: bool, interval: Duration) -> ExitCode {
    super::runtime().block_on(async {
        let p = match prepare(args).await {
            Ok(p) => p,
            Err(code) => return code,
        };
        loop {
            let code = pass(&p, args.output.get()).await;
            if once {
                return code;
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = tokio::signal::ctrl_c() => return code,
            }
        }
    })
}

async fn pass(p: &Prepared, format: Output) -> ExitCode {
    let report = match kops::reconcile_once(&p.store, &p.target, &p.cache, chrono::Utc::now()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match format {
        // One line per pass, so that a running reconcile is a stream of JSON lines.
        Output::Json => outln!("{}", serde_json::to_string(&report).expect("reports serialise")),
        Output::Yaml => out!("---\n{}", serde_yaml::to_string(&report).expect("reports serialise")),
        Output::Text => {
            header(p);
            out!("{}", show::plan_text(&report.plan, style()));
            out!("{}", show::outcome_text(&report.outcome, style()));
            outln!(
                "Reconcile: {}; status in {}/{}",
                report.result,
                p.url.trim_end_matches('/'),
                kops::object::status_key(&p.target.cluster)
            );
        }
    }
    if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// The state store a command uses for `cluster`: the flag, else fleet.yaml's, else
/// `KOPS_STATE_STORE`. When the variable and fleet.yaml name different stores the command stops
/// rather than guess: a shell's `KOPS_STATE_STORE` of another environment must never send one
/// cluster's InstanceGroups to another's bucket.
pub fn store_url(flag: Option<&str>, fleet: Option<&str>, env: Option<&str>, cluster: &str) -> Result<String, String> {
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    match (flag, fleet, env) {
        (Some(flag), _, _) => Ok(flag.to_string()),
        (None, Some(f), Some(e)) if !same(f, e) => Err(format!(
            "KOPS_STATE_STORE is {e} but fleet.yaml gives cluster {cluster} the state store {f}; pass --state-store to choose, or unset KOPS_STATE_STORE"
        )),
        (None, Some(f), _) => Ok(f.to_string()),
        (None, None, Some(e)) => Ok(e.to_string()),
        (None, None, None) => Err(
            "no state store: pass --state-store, set the cluster's stateStore in fleet.yaml, or set KOPS_STATE_STORE"
                .into(),
        ),
    }
}
