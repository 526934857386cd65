//! The store in a folder (`file:///path`), laid out as kOps lays out its own: the object at key
//! `<cluster>/instancegroup/nodes` is the file `<root>/<cluster>/instancegroup/nodes`.
//!
//! ```text
//! put ─► lock (lock.rs, bounded wait) ─► check the version ─► write <cluster>/capstan/.tmp/.tmp-<pid>-<n>
//!                                                          ─► fsync ─► rename onto the key ─► unlock
//! ```
//!
//! Temporary files live under the cluster's own `capstan/` folder, never in a folder kOps reads.
//! A write killed midway leaves its temporary file behind; `tidy` (each reconcile pass) removes such
//! leftovers. Under the lock that is safe: every write holds the lock for as long as its
//! temporary file exists, so whatever temporary file the lock holder finds is a leftover.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::lock::{self, LOCK_FILE};
use super::store::{Object, StateStore, StoreError, etag, valid_key};

/// Folder for temporary files under `<cluster>/capstan/`; dot-named, so never listed as a key.
const TEMP_DIR: &str = ".tmp";

/// The store in a folder. Compare-and-swap holds between processes: every write takes an
/// exclusive lock on `<root>/.capstan-store.lock`, checks the version, and renames a fully
/// written temporary file into place.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    /// How long a write waits for another process's lock before failing with `Busy`.
    lock_timeout: Duration,
}

/// An I/O error, with the path it happened on.
fn at(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{}: {e}", path.display()))
}

impl FileStore {
    pub fn new(root: impl Into<PathBuf>) -> FileStore {
        FileStore { root: root.into(), lock_timeout: lock::DEFAULT_TIMEOUT }
    }

    /// From a `file:///path` URL.
    pub fn from_url(url: &str) -> Result<FileStore, StoreError> {
        let path = url.strip_prefix("file://").ok_or_else(|| StoreError::Io(format!("{url} is not a file:// URL")))?;
        if !path.starts_with('/') {
            return Err(StoreError::Io(format!("{url}: use an absolute path, file:///path")));
        }
        Ok(FileStore::new(path))
    }

    /// The same store, waiting at most `timeout` for the lock.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> FileStore {
        self.lock_timeout = timeout;
        self
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        valid_key(key)?;
        Ok(self.root.join(key))
    }

    /// Runs `f` under the store's exclusive lock. Writers of this process queue for their turn
    /// first, so the file lock only ever waits for another process.
    async fn locked<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        std::fs::create_dir_all(&self.root).map_err(|e| at(&self.root, e))?;
        let path = self.root.join(LOCK_FILE);
        let Ok(_turn) = tokio::time::timeout(self.lock_timeout, TURN.lock()).await else {
            return Err(StoreError::Busy(format!(
                "another write of this process held the store lock {} for {}s; this write was not made",
                path.display(),
                self.lock_timeout.as_secs()
            )));
        };
        let _held = lock::acquire(&path, self.lock_timeout).await?;
        f()
    }

    /// Where the temporary file of a write to `key` goes: the key's cluster's `capstan/.tmp/`.
    fn temp_dir(&self, key: &str) -> PathBuf {
        match key.split_once('/') {
            Some((cluster, _)) => self.root.join(cluster).join("capstan").join(TEMP_DIR),
            None => self.root.join(".capstan-tmp"),
        }
    }

    fn read(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
        match std::fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(at(path, e)),
        }
    }

    fn write(&self, key: &str, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = path.parent().expect("keys have a parent");
        std::fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
        let (tmp, mut file) = tempfile_in(&self.temp_dir(key))?;
        let written = file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| at(&tmp, e));
        let renamed = written.and_then(|()| std::fs::rename(&tmp, path).map_err(|e| at(path, e)));
        if renamed.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        renamed
    }
}

/// A temporary file's name: `.tmp-<pid>-<n>`.
fn is_temporary(name: &str) -> bool {
    let Some((pid, n)) = name.strip_prefix(".tmp-").and_then(|rest| rest.split_once('-')) else { return false };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(pid) && digits(n)
}

/// The entries of `dir`, or `None` when there is no such folder.
fn read_dir(dir: &Path) -> Result<Option<std::fs::ReadDir>, StoreError> {
    match std::fs::read_dir(dir) {
        Ok(e) => Ok(Some(e)),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => Ok(None),
        Err(e) => Err(at(dir, e)),
    }
}

fn sweep(dir: &Path, key: &str, removed: &mut Vec<String>) -> Result<(), StoreError> {
    let Some(entries) = read_dir(dir)? else { return Ok(()) };
    for entry in entries {
        let entry = entry.map_err(|e| at(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if entry.file_type().map_err(|e| at(&path, e))?.is_dir() {
            sweep(&path, &format!("{key}/{name}"), removed)?;
        } else if is_temporary(&name) {
            std::fs::remove_file(&path).map_err(|e| at(&path, e))?;
            removed.push(format!("{key}/{name}"));
        }
    }
    Ok(())
}

/// A new temporary file in `dir`.
fn tempfile_in(dir: &Path) -> Result<(PathBuf, std::fs::File), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
    for n in 0..1000u32 {
        let path = dir.join(format!(".tmp-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(at(&path, e)),
        }
    }
    Err(StoreError::Io(format!("cannot create a temporary file in {}", dir.display())))
}

impl StateStore for FileStore {
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        let path = self.path(key)?;
        Ok(FileStore::read(&path)?.map(|b| Object { etag: etag(&b), bytes: b }))
    }

    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<String, StoreError> {
        let path = self.path(key)?;
        self.locked(|| {
            if FileStore::read(&path)?.is_some() {
                return Err(StoreError::PreconditionFailed(key.to_string()));
            }
            self.write(key, &path, bytes)?;
            Ok(etag(bytes))
        })
        .await
    }

    async fn put_if_match(&self, key: &str, bytes: &[u8], tag: &str) -> Result<String, StoreError> {
        let path = self.path(key)?;
        self.locked(|| match FileStore::read(&path)? {
            None => Err(StoreError::NotFound(key.to_string())),
            Some(b) if etag(&b) != tag => Err(StoreError::PreconditionFailed(key.to_string())),
            Some(_) => {
                self.write(key, &path, bytes)?;
                Ok(etag(bytes))
            }
        })
        .await
    }

    async fn delete_if_match(&self, key: &str, tag: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        self.locked(|| match FileStore::read(&path)? {
            None => Err(StoreError::NotFound(key.to_string())),
            Some(b) if etag(&b) != tag => Err(StoreError::PreconditionFailed(key.to_string())),
            Some(_) => std::fs::remove_file(&path).map_err(|e| at(&path, e)),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Walk only the folder the prefix names, not the whole store.
        let dir = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let mut out = Vec::new();
        if dir.is_empty() || valid_key(dir).is_ok() {
            walk(&self.root.join(dir), dir, &mut out)?;
        }
        out.retain(|k| k.starts_with(prefix));
        out.sort();
        Ok(out)
    }

    /// An object that cannot be read is listed with an empty ETag; `get` says why.
    async fn list_tagged(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for key in self.list(prefix).await? {
            match FileStore::read(&self.path(&key)?) {
                Ok(Some(b)) => out.push((key, etag(&b))),
                Ok(None) => {} // removed since the listing
                Err(_) => out.push((key, String::new())),
            }
        }
        Ok(out)
    }

    /// Removes the temporary files that interrupted writes left under `<cluster>/instancegroup/`
    /// and `<cluster>/capstan/`; returns their keys. Runs under the lock (see the module header).
    async fn tidy(&self, cluster: &str) -> Result<Vec<String>, StoreError> {
        valid_key(cluster)?;
        let base = self.root.join(cluster);
        if !base.is_dir() {
            return Ok(Vec::new());
        }
        self.locked(|| {
            let mut removed = Vec::new();
            for dir in ["instancegroup", "capstan"] {
                sweep(&base.join(dir), &format!("{cluster}/{dir}"), &mut removed)?;
            }
            Ok(removed)
        })
        .await
    }
}

/// The files under `dir` as keys under `prefix`; dot-named entries (the lock, temporary files)
/// are not objects.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), StoreError> {
    let Some(entries) = read_dir(dir)? else { return Ok(()) };
    for entry in entries {
        let entry = entry.map_err(|e| at(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        if entry.file_type().map_err(|e| at(&entry.path(), e))?.is_dir() {
            walk(&entry.path(), &key, out)?;
        } else {
            out.push(key);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_files_are_made_under_the_clusters_own_folder() {
        let store = FileStore::new("/store");
        let ig = store.temp_dir("dev.example.com/instancegroup/nodes");
        assert_eq!(ig, Path::new("/store/dev.example.com/capstan/.tmp"));
        assert_eq!(store.temp_dir("dev.example.com/capstan/backups/instancegroup/nodes/x.yaml"), ig);
        assert_eq!(store.temp_dir("counter"), Path::new("/store/.capstan-tmp"));
    }

    #[test]
    fn temporary_names() {
        assert!(is_temporary(".tmp-4242-0") && is_temporary(".tmp-1-999"));
        assert!(!is_temporary(".tmp-x-0") && !is_temporary(".tmp-1") && !is_temporary("tmp-1-2"));
        assert!(!is_temporary(".tmp-1-2.yaml") && !is_temporary("nodes"));
    }
}
