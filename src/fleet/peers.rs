//! Reading other clusters' rollout records from their own state stores (each Fleet entry names
//! its store and region), many at once, each store opened once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::Mutex;

use super::gate::Peer;
use super::record::Record;
use crate::kops::any::Store;
use crate::kops::object;
use crate::kops::s3::S3Options;
use crate::kops::store::StateStore;
use crate::policy::capstan::{FleetCluster, FleetSpec};

/// Reads in flight at once.
const CONCURRENCY: usize = 32;

/// State stores by URL and region, opened on first use.
#[derive(Default)]
pub struct Stores {
    s3: S3Options,
    opened: Mutex<HashMap<(String, String), Arc<Store>>>,
}

impl Stores {
    /// `s3`: endpoint and addressing for every S3 store (the region comes from each entry).
    pub fn new(s3: S3Options) -> Stores {
        Stores { s3, opened: Mutex::default() }
    }

    pub async fn open(&self, url: &str, region: &str) -> Result<Arc<Store>, String> {
        let key = (url.to_string(), region.to_string());
        if let Some(s) = self.opened.lock().await.get(&key) {
            return Ok(s.clone());
        }
        let options = S3Options { region: Some(region.to_string()), ..self.s3.clone() };
        let store = Arc::new(Store::open(url, &options).await.map_err(|e| e.to_string())?);
        self.opened.lock().await.insert(key, store.clone());
        Ok(store)
    }

    /// The store of a Fleet entry.
    pub async fn of(&self, entry: &FleetCluster) -> Result<Arc<Store>, String> {
        self.open(&entry.state_store, &entry.region).await
    }
}

/// A cluster's rollout record in its store.
pub async fn read<S: StateStore>(store: &S, kops_name: &str) -> Peer {
    match store.get(&object::status_key(kops_name)).await {
        Ok(None) => Peer::Missing,
        Err(e) => Peer::Unreadable(e.to_string()),
        Ok(Some(o)) => {
            let doc: serde_json::Value = match serde_json::from_slice(&o.bytes) {
                Ok(v) => v,
                Err(e) => return Peer::Unreadable(format!("{}: not JSON: {e}", object::status_key(kops_name))),
            };
            match doc.get("rollout") {
                None => Peer::Missing,
                Some(r) => match serde_json::from_value::<Record>(r.clone()) {
                    Ok(rec) => Peer::Read(Box::new(rec)),
                    Err(e) => Peer::Unreadable(format!("{}: rollout: {e}", object::status_key(kops_name))),
                },
            }
        }
    }
}

/// The records of the clusters named, read concurrently.
pub async fn read_all(stores: &Arc<Stores>, fleet: &FleetSpec, names: &[String]) -> BTreeMap<String, Peer> {
    let entries: Vec<FleetCluster> =
        names.iter().filter_map(|n| fleet.clusters.iter().find(|c| &c.name == n).cloned()).collect();
    let reads = futures_util::stream::iter(entries)
        .map(|entry| {
            let stores = stores.clone();
            async move {
                let peer = match stores.of(&entry).await {
                    Ok(store) => read(store.as_ref(), &entry.kops_name).await,
                    Err(e) => Peer::Unreadable(e),
                };
                (entry.name, peer)
            }
        })
        .buffer_unordered(CONCURRENCY);
    reads.collect().await
}
