//! The kOps state store reconcile, against the folder backend and moto's S3.

mod concurrency;
mod flow;
mod formats;

use std::sync::atomic::{AtomicUsize, Ordering};

use capstan::kops::object;
use capstan::kops::{S3Options, StateStore, Store};

use crate::aws_catalog::moto;

pub const CLUSTER: &str = "dev.example.com";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    File,
    S3,
}

pub const BACKENDS: [Backend; 2] = [Backend::File, Backend::S3];

/// A fresh, empty store: a temporary folder, or a new bucket in moto.
pub struct TestStore {
    pub url: String,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

pub fn s3_options() -> S3Options {
    S3Options { endpoint: Some(moto()), region: Some("us-east-1".into()), path_style: true }
}

/// Runs `scenario` once on each backend.
pub fn on_each_backend<F: std::future::Future<Output = ()>>(scenario: impl Fn(Backend) -> F) {
    for backend in BACKENDS {
        rt().block_on(scenario(backend));
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

impl TestStore {
    pub async fn new(backend: Backend) -> TestStore {
        static N: AtomicUsize = AtomicUsize::new(0);
        match backend {
            Backend::File => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("file://{}", dir.path().display());
                TestStore { store: Store::open(&url, &s3_options()).await.unwrap(), url, _dir: Some(dir) }
            }
            Backend::S3 => {
                let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
                let bucket = format!("kops-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
                let url = format!("s3://{bucket}/state");
                let store = Store::open(&url, &s3_options()).await.unwrap();
                let Store::S3(s3) = &store else { unreachable!() };
                s3.client().create_bucket().bucket(&bucket).send().await.unwrap();
                TestStore { store, url, _dir: None }
            }
        }
    }

    /// The store with `<cluster>/config` written, as `kops create cluster` leaves it.
    pub async fn with_cluster(backend: Backend, spec: &str) -> TestStore {
        let s = TestStore::new(backend).await;
        s.store.put_if_absent(&object::config_key(CLUSTER), spec.as_bytes()).await.unwrap();
        s
    }

    pub async fn put(&self, key: &str, text: &str) {
        self.store.put_if_absent(key, text.as_bytes()).await.unwrap();
    }

    pub async fn text(&self, key: &str) -> Option<String> {
        self.store.get(key).await.unwrap().map(|o| String::from_utf8(o.bytes).unwrap())
    }

    pub async fn ig(&self, name: &str) -> serde_json::Value {
        let text = self.text(&object::instance_group_key(CLUSTER, name)).await.expect("the IG exists");
        serde_yaml::from_str(&text).unwrap()
    }

    /// `plan`/`reconcile` arguments that point the CLI at this store.
    pub fn cli_args(&self) -> Vec<String> {
        let mut args = vec!["--state-store".to_string(), self.url.clone()];
        if self.url.starts_with("s3://") {
            args.extend([
                "--s3-endpoint".into(),
                moto(),
                "--s3-path-style".into(),
                "--region".into(),
                "us-east-1".into(),
            ]);
        }
        args
    }
}

/// An InstanceGroup as `kops create ig` writes it (not owned by capstan).
pub fn kops_ig(name: &str, role: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: kops.k8s.io/v1alpha2\nkind: InstanceGroup\nmetadata:\n  creationTimestamp: \"2024-05-01T10:00:00Z\"\n  labels:\n    kops.k8s.io/cluster: {CLUSTER}\n  name: {name}\nspec:\n  image: ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250305\n  machineType: m6i.large\n  maxSize: 3\n  minSize: 1\n  role: {role}\n  subnets:\n  - us-east-1a\n{extra_spec}"
    )
}
