//! Reads what one cluster's state store holds: the Cluster spec, the InstanceGroups (each
//! object that cannot be read or parsed reported by key and set aside, the others read), and
//! what capstan last applied.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use super::object::{self, Corrupt};
use super::plan::Current;
use super::store::{StateStore, StoreError};
use crate::policy::kops::Cluster;

/// Objects read at once.
const CONCURRENCY: usize = 16;

#[derive(Debug, Default)]
pub struct ClusterState {
    /// `None` when `<cluster>/config` does not exist.
    pub spec: Option<Result<Cluster, Corrupt>>,
    pub current: Vec<Current>,
    /// Unreadable IG objects by name, with why.
    pub unreadable: BTreeMap<String, Corrupt>,
    pub last_applied: BTreeMap<String, Value>,
    pub warnings: Vec<String>,
}

/// An InstanceGroup object, read: usable, or why not.
type Parsed = Result<Current, Corrupt>;

/// InstanceGroups read before, by key: an object whose listed ETag is unchanged is not read
/// again. Safe because every write is conditional on the ETag anyway.
#[derive(Debug, Default)]
pub struct Cache {
    objects: Mutex<HashMap<String, (String, Parsed)>>,
}

impl Cache {
    fn lookup(&self, key: &str, etag: &str) -> Option<Parsed> {
        let map = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).filter(|(e, _)| e == etag).map(|(_, v)| v.clone())
    }

    /// Records what this process just wrote, under the ETag the store answered with.
    pub fn remember(&self, key: &str, current: Current) {
        let etag = current.etag.clone();
        self.keep(key, &etag, Ok(current));
    }

    fn keep(&self, key: &str, etag: &str, value: Parsed) {
        let mut map = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(key.to_string(), (etag.to_string(), value));
    }
}

/// One InstanceGroup: from the cache when its ETag is unchanged, else read and parsed.
async fn instance_group<S: StateStore>(
    store: &S,
    cache: &Cache,
    key: &str,
    name: &str,
    listed_etag: &str,
) -> Result<Option<Parsed>, StoreError> {
    if let Some(hit) = cache.lookup(key, listed_etag) {
        return Ok(Some(hit));
    }
    let Some(found) = store.get(key).await? else { return Ok(None) }; // deleted since the listing
    let parsed = object::read_instance_group(key, &found.bytes).map(|value| Current {
        name: name.to_string(),
        value,
        bytes: found.bytes,
        etag: found.etag.clone(),
    });
    cache.keep(key, &found.etag, parsed.clone());
    Ok(Some(parsed))
}

pub async fn read<S: StateStore>(store: &S, cluster: &str, cache: &Cache) -> Result<ClusterState, StoreError> {
    let mut state = ClusterState::default();
    let config_key = object::config_key(cluster);
    state.spec = store.get(&config_key).await?.map(|o| object::read_cluster(&config_key, &o.bytes));

    let prefix = object::instance_groups_prefix(cluster);
    let listed: Vec<(String, String)> =
        store.list_tagged(&prefix).await?.into_iter().filter(|(k, _)| !k[prefix.len()..].contains('/')).collect();
    let skip = prefix.len();
    let objects: Vec<(String, Result<Option<Parsed>, StoreError>)> = stream::iter(listed)
        .map(|(key, etag)| async move {
            let name = key[skip..].to_string();
            let got = instance_group(store, cache, &key, &name, &etag).await;
            (name, got)
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    for (name, got) in objects {
        match got {
            Ok(None) => {}
            Ok(Some(Ok(current))) => state.current.push(current),
            Ok(Some(Err(e))) => {
                state.unreadable.insert(name, e);
            }
            // One object the store cannot hand over stops only that IG.
            Err(e) => {
                let key = object::instance_group_key(cluster, &name);
                state.unreadable.insert(name, Corrupt::unreadable(&key, &e));
            }
        }
    }

    let applied_key = object::last_applied_key(cluster);
    if let Some(o) = store.get(&applied_key).await? {
        match serde_json::from_slice::<BTreeMap<String, Value>>(&o.bytes) {
            Ok(map) => state.last_applied = map,
            Err(e) => state.warnings.push(format!(
                "{applied_key} is unreadable ({e}); fields removed from the repository are not removed from the store until it is rewritten by this pass"
            )),
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kops::store::{MemoryStore, Object};

    /// The in-memory store, except that one key cannot be read.
    #[derive(Default)]
    struct Unreadable {
        inner: MemoryStore,
    }

    impl StateStore for Unreadable {
        async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
            if key.ends_with("/locked") {
                return Err(StoreError::Io(format!("{key}: Permission denied (os error 13)")));
            }
            self.inner.get(key).await
        }
        async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<String, StoreError> {
            self.inner.put_if_absent(key, bytes).await
        }
        async fn put_if_match(&self, key: &str, bytes: &[u8], etag: &str) -> Result<String, StoreError> {
            self.inner.put_if_match(key, bytes, etag).await
        }
        async fn delete_if_match(&self, key: &str, etag: &str) -> Result<(), StoreError> {
            self.inner.delete_if_match(key, etag).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
            self.inner.list(prefix).await
        }
        async fn list_tagged(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
            self.inner.list_tagged(prefix).await
        }
    }

    fn ig(name: &str) -> String {
        format!(
            "apiVersion: kops.k8s.io/v1alpha2\nkind: InstanceGroup\nmetadata:\n  name: {name}\nspec:\n  role: Node\n"
        )
    }

    #[test]
    fn an_object_that_cannot_be_read_is_set_aside_by_key_and_the_others_are_read() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let store = Unreadable::default();
        let state = rt.block_on(async {
            for name in ["locked", "nodes"] {
                store.put_if_absent(&object::instance_group_key("c", name), ig(name).as_bytes()).await.unwrap();
            }
            read(&store, "c", &Cache::default()).await.expect("one bad object does not stop the read")
        });
        assert_eq!(state.current.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["nodes"]);
        let why = state.unreadable["locked"].to_string();
        assert!(why.starts_with("c/instancegroup/locked:1:1: error: cannot be read:"), "{why}");
        assert!(why.contains("Permission denied") && why.contains("hint: check the object's permissions"), "{why}");
    }
}
