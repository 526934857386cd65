//! Exit codes, one convention for every command:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success, or nothing to change |
//! | 1 | an error, or findings (`validate`'s errors, a broken guardrail, a halted rollout) |
//! | 2 | changes pending or in progress (`plan`, `diff`, `fleet status`) |
//! | 3 | a usage error: a flag clap refuses, or a value that names nothing (`--cluster nope`) |

use std::fmt::Display;
use std::process::ExitCode;

/// An error or findings.
pub const FAILED: u8 = 1;
/// Changes pending, or a rollout in progress.
pub const CHANGES: u8 = 2;
/// The command line asks for something that cannot be done as written.
pub const USAGE: u8 = 3;

/// Says why on standard error and gives exit code 1.
pub(crate) fn fail(message: impl Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(FAILED)
}

/// Says why on standard error and gives the usage exit code.
pub(crate) fn usage(message: impl Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(USAGE)
}
