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
//! Backends: in memory (tests, the demo), a folder (`folder.rs`, `file:///path`; atomic writes
//! by temp file and rename, ETags from a content hash, compare-and-swap between processes under
//! a file lock), and S3.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use thiserror::Error;

pub use super::folder::FileStore;

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
    /// The folder store's lock stayed held past the timeout: another writer is busy or stuck;
    /// nothing was written, a later pass retries.
    #[error("state store: {0}")]
    Busy(String),
    /// Anything else, with the key or path and what to check.
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
    /// Removes what interrupted writes left behind for `cluster` (the folder store's temporary
    /// files) and returns the keys removed. Idempotent; backends whose writes are atomic have
    /// nothing to remove.
    fn tidy(&self, _cluster: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        async { Ok(Vec::new()) }
    }
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
