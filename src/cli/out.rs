//! Standard output for every command. `println!` panics when the reader goes away
//! (`capstan validate | head -1`); these macros stop writing instead, and the command runs to its
//! end and exits with the code it would have had (1 for findings, 2 for changes to plan…), so a
//! pipeline under `pipefail` still sees a failure. Any other write error is reported on standard
//! error with exit 1.
//!
//! ```text
//! outln!("{d}")  ─► stdout ─ ok ───────────► go on
//!                          ├ broken pipe ──► nothing more is written; the exit code stands
//!                          └ other error ──► "error: cannot write to standard output: …", exit 1
//! ```

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Like `println!`, on standard output.
macro_rules! outln {
    () => {
        $crate::cli::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Like `print!`, on standard output.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};

/// Set once the reader of standard output has gone away.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes and flushes; once the reader went away, writes nothing (see the module header).
pub(crate) fn write(args: fmt::Arguments) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::Relaxed);
            return;
        }
        fail(&e);
    }
}

fn fail(e: &io::Error) -> ! {
    // Standard error may be gone too; nothing more can be said then.
    let _ = writeln!(io::stderr(), "error: cannot write to standard output: {e}");
    std::process::exit(1);
}
