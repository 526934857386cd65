//! `StateStore`: objects with versions (ETags), written only conditionally.
//!
//! Contract, for every backend:
//! - `get` returns the bytes and the ETag, or `None` when the key does not exist.
//! - `put_if_absent` creates; `PreconditionFailed` when the key exists.
//! - `put_if_match` replaces only the version named by the ETag; `PreconditionFailed` when the
//!   object changed since, `NotFound` when it is gone.
//! - `delete_if_match` deletes only that version, with the same errors.
//! - `list` returns the keys under a prefix, sorted.
//!
//! Of two writers racing on one version, exactly one succeeds.
//!
//! Backends: in memory (tests, the demo), a folder (`file:///path`; atomic writes by temp file
//! and rename, ETags from a content hash, compare-and-swap between processes under a file
//! lock), and S3.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The object changed (or appeared) since it was read: re-read, re-plan, retry.
    #[error("{0} changed since it was read")]
    PreconditionFailed(String),
    #[error("{0} does not exist")]
    NotFound(String),
    /// A key that would leave the store (`..`, an absolute path).
    #[error("invalid key {0}")]
    InvalidKey(String),
    #[error("state store: {0}")]
    Io(String),
}

/// An object's content and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub etag: String,
}

pub trait StateStore: Send + Sync {
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Object>, StoreError>> + Send;
    fn put_if_absent(&self, key: &str, bytes: &[u8]) -> impl Future<Output = Result<String, StoreError>> + Send;
    fn put_if_match(
        &self,
        key: &str,
        bytes: &[u8],
        etag: &str,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
    fn delete_if_match(&self, key: &str, etag: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// The keys under a prefix with their ETags, sorted by key: what changed since a previous
    /// read, without reading what did not.
    fn list_tagged(&self, prefix: &str) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
}

/// Refuses a key that would leave the store: empty, absolute, or with `.`, `..` or empty parts.
pub fn valid_key(key: &str) -> Result<(), StoreError> {
    let bad = key.is_empty() || key.starts_with('/') || key.split('/').any(|p| p == ".." || p == "." || p.is_empty());
    if bad {
        return Err(StoreError::InvalidKey(key.to_string()));
    }
    Ok(())
}

/// The ETag of some content: a quoted FNV-1a digest, stable across releases and processes.
pub fn etag(bytes: &[u8]) -> String {
    let h = crate::digest::fnv64(bytes);
    format!("\"{h:016x}-{}\"", bytes.len())
}

/// The store in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Vec<u8>>) -> T) -> T {
        f(&mut self.objects.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl StateStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        Ok(self.with(|m| m.get(key).map(|b| Object { etag: etag(b), bytes: b.clone() })))
    }

    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<String, StoreError> {
        self.with(|m| {
            if m.contains_key(key) {
                return Err(StoreError::PreconditionFailed(key.to_string()));
            }
            m.insert(key.to_string(), bytes.to_vec());
            Ok(etag(bytes))
        })
    }

    async fn put_if_match(&self, key: &str, bytes: &[u8], tag: &str) -> Result<String, StoreError> {
        self.with(|m| match m.get(key) {
            None => Err(StoreError::NotFound(key.to_string())),
            Some(b) if etag(b) != tag => Err(StoreError::PreconditionFailed(key.to_string())),
            Some(_) => {
                m.insert(key.to_string(), bytes.to_vec());
                Ok(etag(bytes))
            }
        })
    }

    async fn delete_if_match(&self, key: &str, tag: &str) -> Result<(), StoreError> {
        self.with(|m| match m.get(key) {
            None => Err(StoreError::NotFound(key.to_string())),
            Some(b) if etag(b) != tag => Err(StoreError::PreconditionFailed(key.to_string())),
            Some(_) => {
                m.remove(key);
                Ok(())
            }
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.with(|m| m.keys().filter(|k| k.starts_with(prefix)).cloned().collect()))
    }

    async fn list_tagged(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self.with(|m| m.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, b)| (k.clone(), etag(b))).collect()))
    }
}

/// The store in a folder. Compare-and-swap holds between processes: every write takes an
/// exclusive lock on `<root>/.capstan-store.lock`, checks the version, and renames a fully
/// written temporary file into place.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

impl FileStore {
    pub fn new(root: impl Into<PathBuf>) -> FileStore {
        FileStore { root: root.into() }
    }

    /// From a `file:///path` URL.
    pub fn from_url(url: &str) -> Result<FileStore, StoreError> {
        let path = url.strip_prefix("file://").ok_or_else(|| StoreError::Io(format!("{url} is not a file:// URL")))?;
        if !path.starts_with('/') {
            return Err(StoreError::Io(format!("{url}: use an absolute path, file:///path")));
        }
        Ok(FileStore::new(path))
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        valid_key(key)?;
        Ok(self.root.join(key))
    }

    /// Runs `f` under the store's exclusive lock.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        std::fs::create_dir_all(&self.root).map_err(io)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(".capstan-store.lock"))
            .map_err(io)?;
        lock.lock().map_err(io)?;
        let out = f();
        lock.unlock().map_err(io)?;
        out
    }

    fn read(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
        match std::fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    fn write(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = path.parent().expect("keys have a parent");
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut tmp = tempfile_in(dir)?;
        tmp.1.write_all(bytes).map_err(io)?;
        tmp.1.sync_all().map_err(io)?;
        std::fs::rename(&tmp.0, path).map_err(io)
    }
}

/// A new temporary file beside the target (same filesystem, so rename is atomic).
fn tempfile_in(dir: &Path) -> Result<(PathBuf, std::fs::File), StoreError> {
    for n in 0..1000u32 {
        let path = dir.join(format!(".tmp-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(e)),
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
            FileStore::write(&path, bytes)?;
            Ok(etag(bytes))
        })
    }

    async fn put_if_match(&self, key: &str, bytes: &[u8], tag: &str) -> Result<String, StoreError> {
        let path = self.path(key)?;
        self.locked(|| match FileStore::read(&path)? {
            None => Err(StoreError::NotFound(key.to_string())),
            Some(b) if etag(&b) != tag => Err(StoreError::PreconditionFailed(key.to_string())),
            Some(_) => {
                FileStore::write(&path, bytes)?;
                Ok(etag(bytes))
            }
        })
    }

    async fn delete_if_match(&self, key: &str, tag: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        self.locked(|| match FileStore::read(&path)? {
            None => Err(StoreError::NotFound(key.to_string())),
            Some(b) if etag(&b) != tag => Err(StoreError::PreconditionFailed(key.to_string())),
            Some(_) => std::fs::remove_file(&path).map_err(io),
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Walk only the folder the prefix names, not the whole store.
        let dir = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let mut out = Vec::new();
        if dir.is_empty() || valid_key(dir).is_ok() {
            walk(&self.root.join(dir), dir, &mut out).map_err(io)?;
        }
        out.retain(|k| k.starts_with(prefix));
        out.sort();
        Ok(out)
    }

    async fn list_tagged(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for key in self.list(prefix).await? {
            // A file removed since the listing is simply not listed.
            if let Some(b) = FileStore::read(&self.path(&key)?)? {
                out.push((key, etag(&b)));
            }
        }
        Ok(out)
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &key, out)?;
        } else {
            out.push(key);
        }
    }
    Ok(())
}
