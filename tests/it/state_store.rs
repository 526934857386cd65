//! The StateStore contract, run against every backend, and compare-and-swap under races.

use capstan::kops::store::{FileStore, MemoryStore, StateStore, StoreError};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn contract(store: &impl StateStore) {
    let key = "dev.example.com/instancegroup/nodes";
    assert_eq!(store.get(key).await.unwrap(), None);
    let v1 = store.put_if_absent(key, b"minSize: 1\n").await.unwrap();
    assert_eq!(store.put_if_absent(key, b"other\n").await, Err(StoreError::PreconditionFailed(key.into())));
    let got = store.get(key).await.unwrap().unwrap();
    assert_eq!((got.bytes.as_slice(), got.etag.as_str()), (&b"minSize: 1\n"[..], v1.as_str()));
    let v2 = store.put_if_match(key, b"minSize: 2\n", &v1).await.unwrap();
    assert_ne!(v1, v2);
    assert_eq!(
        store.put_if_match(key, b"minSize: 3\n", &v1).await,
        Err(StoreError::PreconditionFailed(key.into())),
        "a stale ETag"
    );
    assert_eq!(store.get(key).await.unwrap().unwrap().bytes, b"minSize: 2\n", "nothing lost");
    assert_eq!(
        store.put_if_match("dev.example.com/instancegroup/gone", b"x", &v1).await,
        Err(StoreError::NotFound("dev.example.com/instancegroup/gone".into()))
    );
    store.put_if_absent("dev.example.com/config", b"kind: Cluster\n").await.unwrap();
    store.put_if_absent("prod.example.com/config", b"kind: Cluster\n").await.unwrap();
    assert_eq!(store.list("dev.example.com/").await.unwrap(), ["dev.example.com/config", key]);
    assert_eq!(store.delete_if_match(key, &v1).await, Err(StoreError::PreconditionFailed(key.into())));
    store.delete_if_match(key, &v2).await.unwrap();
    assert_eq!(store.get(key).await.unwrap(), None);
    assert_eq!(store.delete_if_match(key, &v2).await, Err(StoreError::NotFound(key.into())));
}

#[test]
fn memory_store_keeps_the_contract() {
    rt().block_on(contract(&MemoryStore::default()));
}

#[test]
fn file_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::from_url(&format!("file://{}", dir.path().display())).unwrap();
    rt().block_on(contract(&store));
    assert!(FileStore::from_url("s3://bucket").is_err());
    assert!(FileStore::from_url("file://relative/path").is_err());
    let err = rt().block_on(store.put_if_absent("../escape", b"x")).unwrap_err();
    assert_eq!(err, StoreError::InvalidKey("../escape".into()));
}

/// Writers that each open their own store on one folder (as separate processes would) and
/// increment a counter by read → compare-and-swap → retry: no increment is lost.
#[test]
fn concurrent_writers_never_lose_an_update() {
    let dir = tempfile::tempdir().unwrap();
    let key = "c/counter";
    rt().block_on(FileStore::new(dir.path()).put_if_absent(key, b"0")).unwrap();
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let root = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let store = FileStore::new(root);
                let rt = rt();
                let mut conflicts = 0;
                for _ in 0..40 {
                    loop {
                        let cur = rt.block_on(store.get(key)).unwrap().unwrap();
                        let n: u32 = String::from_utf8(cur.bytes).unwrap().parse().unwrap();
                        match rt.block_on(store.put_if_match(key, (n + 1).to_string().as_bytes(), &cur.etag)) {
                            Ok(_) => break,
                            Err(StoreError::PreconditionFailed(_)) => conflicts += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: u32 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let end = rt().block_on(FileStore::new(dir.path()).get(key)).unwrap().unwrap();
    assert_eq!(
        String::from_utf8(end.bytes).unwrap(),
        "320",
        "8 writers × 40 increments, none lost ({conflicts} conflicts retried)"
    );
}
