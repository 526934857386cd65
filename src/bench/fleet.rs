//! One wave gate decision with many clusters in the previous wave: their rollout records are
//! written to a state store, then the decider reads them all (concurrently, each store opened
//! once) and runs the gate, twice — the first read only sees each heartbeat, the second sees it
//! change and opens the gate.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::fleet::gate::{self, Action, Candidate, Input, Lineage, Rules};
use crate::fleet::health::Health;
use crate::fleet::peers::{self, Stores};
use crate::fleet::record::{Held, Phase, Record, Soak};
use crate::kops::object;
use crate::kops::reconcile::update_json;
use crate::kops::s3::S3Options;
use crate::policy::capstan::{FleetCluster, FleetSpec, Wave};
use crate::policy::duration::GoDuration;

#[derive(Debug, Clone, Serialize)]
pub struct FleetResult {
    /// Clusters in the previous wave.
    pub clusters: usize,
    pub write_ms: f64,
    /// The decision whose gate opened: reading every record, then the gate.
    pub read_ms: f64,
    pub decide_ms: f64,
    pub gate_ms: f64,
    pub opened: bool,
}

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn record(name: &str, heartbeat: u64) -> Record {
    let now = Utc::now();
    Record {
        cluster: name.to_string(),
        incarnation: "bench".into(),
        heartbeat,
        time: Some(now),
        in_force: Some(Held {
            revision: format!("main@sha1:{SHA}"),
            sha: SHA.into(),
            digest: "d".into(),
            epoch: SHA.into(),
            since: now,
        }),
        healthy: true,
        soak: Soak { healthy_since: Some(now), completed: true },
        phase: Phase::Healthy,
        ..Record::default()
    }
}

async fn write_all(stores: &Arc<Stores>, entries: &[FleetCluster], heartbeat: u64) -> Result<(), String> {
    let writes = futures_util::stream::iter(entries.to_vec())
        .map(|e| {
            let stores = stores.clone();
            async move {
                let store = stores.of(&e).await?;
                let value = serde_json::to_value(record(&e.name, heartbeat)).expect("records serialise");
                update_json(store.as_ref(), &object::status_key(&e.kops_name), |doc| {
                    if !doc.is_object() {
                        *doc = json!({});
                    }
                    doc["rollout"] = value.clone();
                })
                .await
                .map_err(|err| err.to_string())
            }
        })
        .buffer_unordered(32);
    let results: Vec<Result<(), String>> = writes.collect().await;
    results.into_iter().collect()
}

pub async fn run(url: &str, s3: &S3Options, clusters: usize) -> Result<FleetResult, String> {
    let run = format!("bench-{}-{}", std::process::id(), Utc::now().timestamp());
    let region = s3.region.clone().unwrap_or_else(|| "us-east-1".into());
    let entry = |name: String, wave: u32| FleetCluster {
        kops_name: format!("{name}.example.com"),
        name,
        state_store: url.to_string(),
        region: region.clone(),
        wave,
    };
    let mut entries: Vec<FleetCluster> = (0..clusters).map(|i| entry(format!("{run}-{i}"), 0)).collect();
    let decider = format!("{run}-next");
    entries.push(entry(decider.clone(), 1));
    let spec = FleetSpec {
        clusters: entries.clone(),
        waves: vec![
            Wave { wave: 0, soak_time: GoDuration::from_secs(0), require_approval: None },
            Wave { wave: 1, soak_time: GoDuration::from_secs(0), require_approval: None },
        ],
        paused: None,
        heartbeat_timeout: None,
        approvals: Vec::new(),
    };
    let stores = Arc::new(Stores::new(s3.clone()));
    let upstream = &entries[..clusters];
    let started = Instant::now();
    write_all(&stores, upstream, 1).await?;
    let write_ms = ms(started.elapsed());
    let rules = Rules::from_fleet(&spec, &decider, |_| None).ok_or("the decider is not in the fleet")?;
    let tip = Candidate { revision: format!("main@sha1:{SHA}"), sha: SHA.into(), digest: Ok("d".into()) };
    let known = BTreeMap::from([(SHA.to_string(), tip.clone())]);
    let lineage = Lineage::default();
    let mut rec = Record::default();
    let mut timed = (Duration::ZERO, Duration::ZERO, false);
    for heartbeat in [1, 2] {
        if heartbeat == 2 {
            write_all(&stores, upstream, 2).await?;
        }
        let started = Instant::now();
        let peers = peers::read_all(&stores, &spec, &rules.upstream).await;
        let read = started.elapsed();
        let health = Health::Unknown("nothing in force".into());
        let input = Input {
            now: Utc::now(),
            rules: &rules,
            tip: Some(&tip),
            known: &known,
            lineage: &lineage,
            health: &health,
            peers: &peers,
        };
        let out = gate::gate(&mut rec, &input);
        timed = (read, started.elapsed() - read, matches!(out.action, Action::Apply { .. }));
    }
    Ok(FleetResult {
        clusters,
        write_ms,
        read_ms: ms(timed.0),
        decide_ms: ms(timed.1),
        gate_ms: ms(timed.0 + timed.1),
        opened: timed.2,
    })
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}
