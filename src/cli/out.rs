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

/// A file written whole or not at all: the text goes to a temporary file beside it, then
/// replaces it, so a reader never sees half of it and a failure keeps the old one.
pub(crate) struct FileOut {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
}

impl FileOut {
    /// Checks that `path` can be written by creating its temporary file now, so that a long
    /// run does not find out at its end.
    pub(crate) fn create(path: &std::path::Path) -> io::Result<FileOut> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        std::fs::write(&tmp, b"")?;
        Ok(FileOut { path: path.to_path_buf(), tmp })
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Writes `text` and puts it in place.
    pub(crate) fn commit(self, text: &str) -> io::Result<()> {
        std::fs::write(&self.tmp, text)?;
        std::fs::rename(&self.tmp, &self.path)
    }
}

impl Drop for FileOut {
    fn drop(&mut self) {
        // After a commit the temporary file is gone; otherwise it is removed.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// The output file of `--out`, created now; `Err` is the exit code after saying why it cannot.
pub(crate) fn file_out(path: Option<&std::path::Path>) -> Result<Option<FileOut>, std::process::ExitCode> {
    let Some(path) = path else { return Ok(None) };
    FileOut::create(path).map(Some).map_err(|e| {
        let _ = writeln!(io::stderr(), "error: cannot write {}: {e}", path.display());
        std::process::ExitCode::from(1)
    })
}
