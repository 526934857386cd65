//! `capstan run --config FILE`: the daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::app::logs::{self, LogFormat};
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
    /// Log lines as text, or as JSON (one object per line); default: the config's logFormat,
    /// else text.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

/// Logs go to standard error in `format`; `RUST_LOG` filters them (default `info`).
pub fn init_logging(format: LogFormat) {
    logs::init(format, "info");
}

pub fn run(args: RunArgs) -> ExitCode {
    let loaded = DaemonConfig::load(&args.config);
    let format = args.log_format.or(loaded.as_ref().ok().and_then(|c| c.log_format)).unwrap_or_default();
    init_logging(format);
    // An error that stops the daemon, in the format of its other lines.
    let usage = |e: &dyn std::fmt::Display| match format {
        LogFormat::Text => super::usage(e),
        LogFormat::Json => {
            logs::always(format, "ERROR", &e.to_string());
            ExitCode::from(super::exit::USAGE)
        }
    };
    let mut cfg = match loaded {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    if let Some(l) = args.listen {
        cfg.listen = Some(l);
    }
    if args.speed.is_some() {
        cfg.sim.speed = args.speed;
        if let Err(e) = app::checks::speed(args.speed) {
            return usage(&format!("--speed: {e}"));
        }
    }
    let runtime = super::runtime();
    let code = runtime.block_on(async move {
        // The whole config, its files and the repository, before anything starts: exit 3 (usage).
        let prepared = match app::preflight::preflight(&cfg).await {
            Ok(p) => p,
            Err(e) => return usage(&e),
        };
        let addr = cfg.listen().to_string();
        let listener = match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => l,
            Err(e) => return usage(&app::AppError::Listen { addr, source: e }),
        };
        if let Ok(a) = listener.local_addr() {
            logs::always(format, "INFO", &format!("capstan: listening on http://{a}"));
        }
        match app::run(cfg, prepared, listener).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                match format {
                    LogFormat::Text => eprintln!("error: {e}"),
                    LogFormat::Json => logs::always(format, "ERROR", &e.to_string()),
                }
                ExitCode::from(1)
            }
        }
    });
    // A blocking call still running (a Git fetch that hangs, say) must not hold the exit.
    runtime.shutdown_timeout(app::supervise::GRACE);
    code
}
