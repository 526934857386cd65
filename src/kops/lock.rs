//! The folder store's lock, `<root>/.capstan-store.lock`: an exclusive file lock held while one
//! write checks a version and renames its file into place.
//!
//! The holder records itself in the file (`capstan pid 4242 since 2026-12-01T19:00:00Z`) and
//! clears the record on release, so a writer that has to wait can say whom it waits for. The
//! wait is bounded: progress is logged every few seconds once it has lasted a second, and after
//! the timeout the write fails with [`StoreError::Busy`] instead of hanging.

use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};

use super::store::StoreError;

/// The lock's file name in the store folder.
pub const LOCK_FILE: &str = ".capstan-store.lock";
/// How long a write waits for the lock by default. Writers hold it for milliseconds; a wait this
/// long means the holder is stuck.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Time between "waiting for the lock" log lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// A wait shorter than this is not worth a log line: writers in one daemon take turns often.
const QUIET: Duration = Duration::from_secs(1);
/// Longest pause between two tries.
const MAX_POLL: Duration = Duration::from_millis(50);

/// The lock, held until dropped.
#[derive(Debug)]
pub struct Held {
    file: File,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Clear the record first, so that nobody reads a released lock's holder as current.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Takes the lock at `path`, waiting at most `timeout` for another holder to release it.
pub async fn acquire(path: &Path, timeout: Duration) -> Result<Held, StoreError> {
    let mut file = open(path)?;
    let start = Instant::now();
    let mut next_report = start + QUIET.min(timeout / 2);
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => {
                record(&mut file);
                return Ok(Held { file });
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::Io(format!("cannot lock the store lock {}: {e}", path.display())));
            }
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(StoreError::Busy(format!(
                "the store lock {} is still held by {} after {}s; this write was not made. Another capstan is writing to this store, or a process holding the lock hung: check that process, or raise --lock-timeout",
                path.display(),
                holder(path),
                waited.as_secs()
            )));
        }
        if Instant::now() >= next_report {
            tracing::warn!(
                "waiting for the lock at {}, held by {} ({}s so far, giving up after {}s)",
                path.display(),
                holder(path),
                waited.as_secs(),
                timeout.as_secs()
            );
            next_report += PROGRESS_EVERY;
        }
        tokio::time::sleep(pause.min(timeout.saturating_sub(waited))).await;
        pause = (pause * 2).min(MAX_POLL);
    }
}

fn open(path: &Path) -> Result<File, StoreError> {
    match std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path) {
        Ok(f) => Ok(f),
        Err(_) if path.is_dir() => Err(StoreError::Io(format!(
            "the store lock {} is a directory, not a file; remove it (`rmdir {0}`) when no capstan is writing to this store, and capstan creates the file again",
            path.display()
        ))),
        Err(e) => Err(StoreError::Io(format!(
            "cannot open the store lock {}: {e}; capstan creates and writes this file in the store folder, so check the folder's owner and permissions",
            path.display()
        ))),
    }
}

/// Who holds the lock, as its holder recorded it.
fn holder(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        "a process that did not record itself (not capstan: an operator's `flock`?)".to_string()
    } else {
        text.chars().take(200).collect()
    }
}

/// Best effort: a holder that cannot record itself still holds the lock.
fn record(file: &mut File) {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let _ = file.set_len(0);
    let _ = writeln!(file, "capstan pid {} since {now}", std::process::id());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn a_held_lock_times_out_naming_the_holder_and_is_cleared_on_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        let held = rt().block_on(acquire(&path, DEFAULT_TIMEOUT)).unwrap();
        let recorded = std::fs::read_to_string(&path).unwrap();
        assert!(recorded.starts_with(&format!("capstan pid {} since ", std::process::id())), "{recorded}");
        let e = rt().block_on(acquire(&path, Duration::from_millis(50))).unwrap_err();
        assert!(matches!(e, StoreError::Busy(_)), "{e}");
        assert!(e.to_string().contains(recorded.trim()), "{e}");
        drop(held);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "", "the record goes with the lock");
        rt().block_on(acquire(&path, Duration::from_millis(50))).expect("free again");
    }

    #[test]
    fn a_directory_in_place_of_the_lock_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        std::fs::create_dir(&path).unwrap();
        let e = rt().block_on(acquire(&path, DEFAULT_TIMEOUT)).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()) && e.contains("is a directory") && e.contains("rmdir"), "{e}");
    }
}
