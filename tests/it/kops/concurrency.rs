//! No lost update: a `kops edit ig` between capstan's read and its write, 100 times, and two
//! capstan processes reconciling at once while another writer edits the same IGs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use capstan::kops::object::{self, read_instance_group, write_yaml};
use capstan::kops::plan::desired_document;
use capstan::kops::store::{Object, StoreError};
use capstan::kops::{Cache, StateStore, Store, Target, reconcile_once};
use capstan::policy::kops::InstanceGroup;
use serde_json::{Value, json};

use super::{Backend, CLUSTER, TestStore, kops_ig, on_each_backend, rt};
use crate::common::{TempRepo, capstan, karpenter_ig};

type Edit = Box<dyn FnOnce(&mut Value) + Send>;

/// A store through which another writer edits one key just before capstan's next write to it,
/// as `kops edit ig` would between capstan's read and its write.
struct Interleaved<'a> {
    inner: &'a Store,
    key: String,
    edit: Mutex<Option<Edit>>,
}

impl Interleaved<'_> {
    async fn meddle(&self, key: &str) {
        let edit = if key == self.key { self.edit.lock().unwrap().take() } else { None };
        if let Some(edit) = edit {
            edit_object(self.inner, key, edit).await.expect("the other writer's edit lands");
        }
    }
}

/// Read → edit → compare-and-swap: how a careful other writer changes an IG.
async fn edit_object(store: &impl StateStore, key: &str, edit: impl FnOnce(&mut Value)) -> Result<(), StoreError> {
    let current = store.get(key).await?.expect("the IG exists");
    let mut value = read_instance_group(key, &current.bytes).unwrap();
    edit(&mut value);
    store.put_if_match(key, &write_yaml(&value), &current.etag).await.map(drop)
}

impl StateStore for Interleaved<'_> {
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        self.inner.get(key).await
    }
    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<String, StoreError> {
        self.meddle(key).await;
        self.inner.put_if_absent(key, bytes).await
    }
    async fn put_if_match(&self, key: &str, bytes: &[u8], etag: &str) -> Result<String, StoreError> {
        self.meddle(key).await;
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

fn target(max_size: u32) -> Target {
    let text = karpenter_ig(
        "nodes",
        &format!("  image: ami-0123456789abcdef0\n  maxSize: {max_size}\n  minSize: 1\n  subnets: [us-east-1a]\n"),
    );
    let ig: InstanceGroup = serde_yaml::from_str(&text).unwrap();
    let desired = BTreeMap::from([("nodes".to_string(), desired_document(&ig, CLUSTER))]);
    Target { cluster: CLUSTER.into(), revision: format!("test@{max_size}"), desired, prune: false }
}

#[test]
fn an_edit_between_read_and_write_is_kept_or_reported_100_times() {
    on_each_backend(interleaved);
}

async fn interleaved(backend: Backend) {
    let store = TestStore::with_cluster(backend, crate::common::CLUSTER_SPEC).await;
    let key = object::instance_group_key(CLUSTER, "nodes");
    store.put(&key, &kops_ig("nodes", "Node", "  manager: Karpenter\n")).await;
    let started = std::time::Instant::now();
    // One cache across all rounds, as a long-running daemon keeps it: it must never hide an edit.
    let cache = Cache::default();
    let mut merged = 0;
    for i in 0..100u32 {
        // Another field: one Git does not set, or one it sets but this pass does not change.
        let git_unset = i % 2 == 0;
        let edit: Edit = if git_unset {
            Box::new(move |v| v["spec"]["cloudLabels"]["edited"] = json!(format!("round-{i}")))
        } else {
            Box::new(move |v| v["spec"]["minSize"] = json!(7 + i))
        };
        let via = Interleaved { inner: &store.store, key: key.clone(), edit: Mutex::new(Some(edit)) };
        let report = reconcile_once(&via, &target(100 + i), &cache, chrono::Utc::now()).await.unwrap();
        assert!(report.ok(), "round {i}: {:?}", report.outcome);
        merged += usize::from(report.outcome.applied[0].attempts > 1);
        let ig = store.ig("nodes").await;
        assert_eq!(ig["spec"]["maxSize"], 100 + i, "round {i}: our change landed");
        let (field, value) = if git_unset {
            (&ig["spec"]["cloudLabels"]["edited"], json!(format!("round-{i}")))
        } else {
            (&ig["spec"]["minSize"], json!(7 + i))
        };
        assert_eq!(field, &value, "round {i}: their change survived");

        // The same field: theirs stays, ours is reported.
        let edit: Edit = Box::new(move |v| v["spec"]["maxSize"] = json!(5000 + i));
        let via = Interleaved { inner: &store.store, key: key.clone(), edit: Mutex::new(Some(edit)) };
        let report = reconcile_once(&via, &target(200 + i), &cache, chrono::Utc::now()).await.unwrap();
        assert_eq!(report.result, "conflict", "round {i}");
        let conflict = &report.outcome.conflicts[0].conflicts[0];
        assert_eq!(conflict.path.to_string(), "spec.maxSize");
        assert_eq!((conflict.theirs.clone(), conflict.ours.clone()), (Some(json!(5000 + i)), Some(json!(200 + i))));
        assert_eq!(store.ig("nodes").await["spec"]["maxSize"], 5000 + i, "round {i}: never overwritten");
    }
    assert_eq!(merged, 100, "every different-field round met the other writer and merged");
    let backups = store.store_list(&object::backup_prefix(CLUSTER, "nodes")).await;
    assert_eq!(backups.len(), capstan::kops::apply::BACKUPS_KEPT, "backups are capped");
    println!("{backend:?}: 200 interleaved passes in {:?}", started.elapsed());
}

fn repo_with(igs: usize, max_size: usize) -> TempRepo {
    let repo = TempRepo::valid();
    for n in 0..igs {
        let name = format!("ig-{n:02}");
        let spec = format!("  image: ami-0123456789abcdef0\n  maxSize: {max_size}\n  subnets: [us-east-1a]\n");
        repo.write(&format!("clusters/dev/instancegroups/{name}.yaml"), karpenter_ig(&name, &spec));
    }
    repo
}

#[test]
fn two_processes_and_a_third_writer_lose_nothing() {
    on_each_backend(two_processes);
}

async fn two_processes(backend: Backend) {
    const IGS: usize = 20;
    let store = TestStore::with_cluster(backend, crate::common::CLUSTER_SPEC).await;
    let first = repo_with(IGS, 1);
    let args = |repo: &TempRepo| {
        let mut a = vec!["reconcile".to_string(), repo.path().display().to_string(), "--cluster".into(), "dev".into()];
        a.extend(store.cli_args());
        a.extend(["--once".into(), "--format".into(), "json".into()]);
        a
    };
    let one = args(&first);
    assert_eq!(capstan(&one.iter().map(String::as_str).collect::<Vec<_>>()).code, 0);

    for round in 2..6 {
        let repo = repo_with(IGS, round);
        let argv = args(&repo);
        let done = AtomicBool::new(false);
        let url = store.url.clone();
        let (runs, last_edits) = std::thread::scope(|s| {
            let editor = s.spawn(|| third_writer(&url, IGS, &done));
            let procs: Vec<_> = (0..2)
                .map(|_| {
                    let argv = argv.clone();
                    s.spawn(move || capstan(&argv.iter().map(String::as_str).collect::<Vec<_>>()))
                })
                .collect();
            let runs: Vec<_> = procs.into_iter().map(|p| p.join().unwrap()).collect();
            done.store(true, Ordering::SeqCst);
            (runs, editor.join().unwrap())
        });
        for r in &runs {
            assert_eq!(r.code, 0, "round {round}: {}{}", r.stdout, r.stderr);
        }
        for n in 0..IGS {
            let ig = store.ig(&format!("ig-{n:02}")).await;
            assert_eq!(ig["spec"]["maxSize"], round, "round {round}: ig-{n:02} has the revision's value");
            if let Some(v) = last_edits.get(&n) {
                assert_eq!(ig["spec"]["cloudLabels"]["edit"], json!(v), "round {round}: the other writer's last edit");
            }
        }
        let retried: usize = runs
            .iter()
            .flat_map(|r| r.json()["outcome"]["applied"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["attempts"].as_u64() > Some(1))
            .count();
        println!(
            "{backend:?} round {round}: {} edits by the third writer, {retried} IG writes merged",
            last_edits.len()
        );
    }
}

/// Edits `spec.cloudLabels.edit` of every IG in turn until `done`, returning its last value per
/// IG. Same compare-and-swap discipline as capstan: what it wrote must survive.
fn third_writer(url: &str, igs: usize, done: &AtomicBool) -> BTreeMap<usize, String> {
    let rt = rt();
    let store = rt.block_on(Store::open(url, &super::s3_options())).unwrap();
    let mut last = BTreeMap::new();
    let mut k = 0usize;
    while !done.load(Ordering::SeqCst) {
        let n = k % igs;
        let value = format!("edit-{k}");
        let key = object::instance_group_key(CLUSTER, &format!("ig-{n:02}"));
        let v = value.clone();
        match rt.block_on(edit_object(&store, &key, move |ig| ig["spec"]["cloudLabels"]["edit"] = json!(v))) {
            Ok(()) => {
                last.insert(n, value);
            }
            Err(StoreError::PreconditionFailed(_)) => {}
            Err(e) => panic!("{e}"),
        }
        k += 1;
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    last
}
