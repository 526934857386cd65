//! One store type for every URL scheme, so callers pick the backend at run time.

use super::s3::{S3Options, S3Store};
use super::store::{FileStore, MemoryStore, Object, StateStore, StoreError};

#[derive(Debug)]
pub enum Store {
    Memory(MemoryStore),
    File(FileStore),
    S3(S3Store),
}

impl Store {
    /// Opens `s3://bucket[/prefix]`, `file:///path` or `memory://`.
    pub async fn open(url: &str, s3: &S3Options) -> Result<Store, StoreError> {
        match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("s3") => Ok(Store::S3(S3Store::connect(url, s3).await?)),
            Some("file") => Ok(Store::File(FileStore::from_url(url)?)),
            Some("memory") => Ok(Store::Memory(MemoryStore::default())),
            _ => Err(StoreError::Io(format!(
                "state store `{url}`: use s3://bucket[/prefix] or file:///absolute/path (as in `kops --state`)"
            ))),
        }
    }

    /// The same store, waiting at most `timeout` for the folder store's lock (other backends
    /// take no lock).
    pub fn with_lock_timeout(self, timeout: std::time::Duration) -> Store {
        match self {
            Store::File(f) => Store::File(f.with_lock_timeout(timeout)),
            other => other,
        }
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Memory($s) => $call,
            Store::File($s) => $call,
            Store::S3($s) => $call,
        }
    };
}

impl StateStore for Store {
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        each!(self, s => s.get(key).await)
    }

    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<String, StoreError> {
        each!(self, s => s.put_if_absent(key, bytes).await)
    }

    async fn put_if_match(&self, key: &str, bytes: &[u8], etag: &str) -> Result<String, StoreError> {
        each!(self, s => s.put_if_match(key, bytes, etag).await)
    }

    async fn delete_if_match(&self, key: &str, etag: &str) -> Result<(), StoreError> {
        each!(self, s => s.delete_if_match(key, etag).await)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        each!(self, s => s.list(prefix).await)
    }

    async fn list_tagged(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        each!(self, s => s.list_tagged(prefix).await)
    }

    async fn tidy(&self, cluster: &str) -> Result<Vec<String>, StoreError> {
        each!(self, s => s.tidy(cluster).await)
    }
}
