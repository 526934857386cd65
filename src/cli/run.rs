//! `capstan run --config FILE`: the daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::app::{self, config::DaemonConfig};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The daemon's configuration (see examples/capstan.yaml).
    #[arg(long)]
    config: PathBuf,
    /// Override the config's listen address (`127.0.0.1:0` picks a free port).
    #[arg(long)]
    listen: Option<String>,
    /// Simulated seconds per wall-clock second, with the sim backends.
    #[arg(long)]
    speed: Option<f64>,
}

/// Logs go to standard error; `RUST_LOG` filters them (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub fn run(args: RunArgs) -> ExitCode {
    init_logging();
    let mut cfg = match DaemonConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => return super::usage(e),
    };
    if let Some(l) = args.listen {
        cfg.listen = Some(l);
    }
    if args.speed.is_some() {
        cfg.sim.speed = args.speed;
        if let Err(e) = app::checks::speed(args.speed) {
            return super::usage(format!("--speed: {e}"));
        }
    }
    let runtime = super::runtime();
    let code = runtime.block_on(async move {
        // The whole config, its files and the repository, before anything starts: exit 2.
        let prepared = match app::preflight::preflight(&cfg).await {
            Ok(p) => p,
            Err(e) => return super::usage(e),
        };
        let addr = cfg.listen().to_string();
        let listener = match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => l,
            Err(e) => return super::usage(app::AppError::Listen { addr, source: e }),
        };
        if let Ok(a) = listener.local_addr() {
            eprintln!("capstan: listening on http://{a}");
        }
        match app::run(cfg, prepared, listener).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    });
    // A blocking call still running (a Git fetch that hangs, say) must not hold the exit.
    runtime.shutdown_timeout(app::supervise::GRACE);
    code
}
