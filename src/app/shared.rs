//! What the daemon's tasks write and its HTTP handlers read.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio::sync::watch;

use super::supervise::Failure;
use crate::capacity::report::LoopStatus;
use crate::clock::{Clock, SystemClock};
use crate::cluster::sim::SimCluster;
use crate::gitops::GitStatus;

/// State the HTTP handlers read; the daemon's tasks write it.
pub struct Shared {
    pub cluster: String,
    pub git: watch::Receiver<GitStatus>,
    pub capacity: Mutex<Option<LoopStatus>>,
    /// The last kOps state-store pass.
    pub state_store: Mutex<Value>,
    /// A policy is in force and the last capacity pass succeeded.
    pub ready: AtomicBool,
    /// This replica holds the leader Lease (always, with the simulated cluster).
    pub leading: watch::Receiver<bool>,
    pub registry: Registry,
    pub sim: Option<SimCluster>,
    /// The fleet rollout on this cluster.
    pub rollout: Mutex<Option<crate::fleet::driver::RolloutView>>,
    /// Set when a task failed: the daemon is neither live nor ready, and is stopping.
    pub failure: Failure,
    /// The status board as last published ([`super::board`]).
    pub board: Mutex<Option<Arc<Published>>>,
    /// The daemon's clock: the simulated world's with the simulated backends.
    pub clock: Arc<dyn Clock>,
    /// Why capstan does not act: another autoscaler may (`cluster::kube::karpenter`). Empty
    /// when it may act, and always with the simulated backends.
    pub blocked_by: Mutex<Vec<String>>,
}

impl Shared {
    /// Nothing known yet: no policy, no pass, not ready, not failed.
    pub fn new(
        cluster: &str,
        git: watch::Receiver<GitStatus>,
        leading: watch::Receiver<bool>,
        registry: Registry,
        sim: Option<SimCluster>,
        failure: Failure,
    ) -> Shared {
        Shared {
            cluster: cluster.to_string(),
            git,
            capacity: Mutex::new(None),
            state_store: Mutex::new(Value::Null),
            ready: AtomicBool::new(false),
            leading,
            registry,
            sim,
            rollout: Mutex::new(None),
            failure,
            board: Mutex::new(None),
            clock: Arc::new(SystemClock),
            blocked_by: Mutex::new(Vec::new()),
        }
    }

    /// Reads time from `clock` (the simulated world's) rather than the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Shared {
        self.clock = clock;
        self
    }
}

/// The board as served: the body and the digest of what it shows, its entity tag.
#[derive(Debug, Clone)]
pub struct Published {
    pub etag: String,
    pub body: Bytes,
}
