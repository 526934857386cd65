//! Runs the gate for one cluster: reads the previous wave's records, loads the revisions the
//! gate may pick, decides, records the steps (decision log, metrics), and writes this cluster's
//! record back with compare-and-swap. The daemon and `capstan demo fleet` both drive it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::gate::{self, Action, Candidate, Input, Output, Peer, Rules, StepKind};
use super::health::Health;
use super::metrics::RolloutMetrics;
use super::peers::{self, Stores};
use super::record::Record;
use super::revisions::{Loaded, Revisions};
use crate::gitops::follow::Accepted;
use crate::kops::any::Store;
use crate::kops::decisions::{self, Decision};
use crate::kops::object;
use crate::kops::reconcile::update_json;
use crate::policy::capstan::FleetSpec;
use crate::revision::Revision;

/// Rollout steps kept for `/status`.
pub const RECENT_STEPS: usize = 50;

/// What `/status` shows of the rollout.
#[derive(Debug, Clone, Default)]
pub struct RolloutView {
    pub record: Record,
    pub steps: std::collections::VecDeque<super::gate::Step>,
    pub error: Option<String>,
}

/// What a pass decided, and the revision to put in force when it changed.
#[derive(Debug, Default)]
pub struct Pass {
    pub output: Output,
    pub apply: Option<Loaded>,
}

pub struct Driver {
    cluster: String,
    kops_name: String,
    own: Arc<Store>,
    stores: Arc<Stores>,
    record: Record,
    /// The Fleet of the newest accepted revision.
    fleet: Option<FleetSpec>,
    write_error: Option<String>,
    metrics: Option<RolloutMetrics>,
}

impl Driver {
    /// Reads this cluster's record back from its store (a new one when there is none). An
    /// unreadable record is an error: starting afresh could apply again what was halted.
    pub async fn start(
        cluster: &str,
        kops_name: &str,
        own: Arc<Store>,
        stores: Arc<Stores>,
        incarnation: &str,
    ) -> Result<Driver, String> {
        let mut record = match peers::read(own.as_ref(), kops_name).await {
            Peer::Read(r) => *r,
            Peer::Missing => Record::default(),
            Peer::Unreadable(e) => return Err(format!("cannot read this cluster's rollout record: {e}")),
        };
        record.incarnation = incarnation.to_string();
        record.cluster = cluster.to_string();
        Ok(Driver {
            cluster: cluster.to_string(),
            kops_name: kops_name.to_string(),
            own,
            stores,
            record,
            fleet: None,
            write_error: None,
            metrics: None,
        })
    }

    pub fn with_metrics(mut self, metrics: RolloutMetrics) -> Driver {
        self.metrics = Some(metrics);
        self
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Why the last write of the record failed.
    pub fn write_error(&self) -> Option<&str> {
        self.write_error.as_deref()
    }

    /// One pass at `now` (this daemon's clock). `tip`: the newest accepted revision;
    /// `follow_base`: the follower's fast-forward base, kept for a restart.
    pub async fn pass<R: Revisions>(
        &mut self,
        now: DateTime<Utc>,
        tip: Option<&Arc<Accepted>>,
        health: &Health,
        revisions: &R,
        follow_base: Option<String>,
    ) -> Pass {
        if let Some(t) = tip {
            revisions.remember(t);
            if let Some(f) = &t.policy.fleet {
                self.fleet = Some(f.clone());
            }
        }
        let rules = self.fleet.as_ref().and_then(|f| Rules::from_fleet(f, &self.cluster, |id| revisions.resolve(id)));
        let Some(rules) = rules else {
            self.record.reason =
                format!("cluster {} is not in the Fleet of the newest accepted revision", self.cluster);
            self.finish(now, follow_base).await;
            return Pass::default();
        };
        let fleet = self.fleet.clone().unwrap_or_else(empty_fleet);
        let peers = peers::read_all(&self.stores, &fleet, &rules.upstream).await;
        let known = self.candidates(tip, &rules, &peers, revisions).await;
        let lineage = revisions.lineage(known.keys().cloned().collect()).await;
        let tip = tip.and_then(|t| known.get(&t.revision.sha));
        let input = Input { now, rules: &rules, tip, known: &known, lineage: &lineage, health, peers: &peers };
        let output = gate::gate(&mut self.record, &input);
        let apply = match &output.action {
            Action::Apply { sha, .. } => revisions.load(sha).await.ok(),
            Action::Hold => None,
        };
        self.log(now, &output, &rules).await;
        if let Some(m) = &self.metrics {
            let soak = self.record.soak.healthy_since.map_or(0, |s| (now - s).num_seconds().max(0));
            m.observe(&self.record, &output.steps.iter().map(|s| s.kind).collect::<Vec<_>>(), soak);
        }
        self.finish(now, follow_base).await;
        Pass { output, apply }
    }

    /// Every revision the gate may pick: the tip, what the peers hold and vouch for, what is
    /// approved, what is in force here and the last-known-good.
    async fn candidates<R: Revisions>(
        &self,
        tip: Option<&Arc<Accepted>>,
        rules: &Rules,
        peers: &BTreeMap<String, Peer>,
        revisions: &R,
    ) -> BTreeMap<String, Candidate> {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let mut add = |sha: &str, revision: Option<&str>| {
            let shown = revision.map_or_else(|| sha.to_string(), String::from);
            names.entry(sha.to_string()).or_insert(shown);
        };
        if let Some(t) = tip {
            add(&t.revision.sha, Some(&t.revision.to_string()));
        }
        for p in peers.values() {
            if let Peer::Read(r) = p
                && let Some(f) = &r.in_force
            {
                add(&f.sha, Some(&f.revision));
            }
        }
        for o in self.record.observations.values() {
            for s in [&o.soaked, &o.latest].into_iter().flatten() {
                add(s, None);
            }
        }
        for a in &rules.approved {
            add(a, None);
        }
        for h in [&self.record.in_force, &self.record.last_known_good].into_iter().flatten() {
            add(&h.sha, Some(&h.revision));
        }
        let mut known = BTreeMap::new();
        let shas: BTreeSet<String> = names.keys().cloned().collect();
        for sha in shas {
            let c = match revisions.load(&sha).await {
                Ok(l) => {
                    Candidate { revision: l.accepted.revision.to_string(), sha: sha.clone(), digest: Ok(l.digest) }
                }
                Err(e) => Candidate { revision: names[&sha].clone(), sha: sha.clone(), digest: Err(e) },
            };
            known.insert(sha, c);
        }
        known
    }

    /// Each step is a decision in the state store's log, with both revisions.
    async fn log(&self, now: DateTime<Utc>, output: &Output, rules: &Rules) {
        if output.steps.is_empty() {
            return;
        }
        let batch: Vec<Decision> = output
            .steps
            .iter()
            .map(|s| {
                // The rollout record keeps revisions as printed; the log stores them typed.
                let revision = Revision::parse(s.to.as_deref().unwrap_or_default());
                let mut d = decisions::decision(
                    now,
                    &format!("rollout-{}", s.kind.label()),
                    s.kind.label(),
                    &format!("Cluster/{}", self.cluster),
                    &revision,
                );
                d.detail.insert("from".into(), json!(s.from));
                d.detail.insert("to".into(), json!(s.to));
                d.detail.insert("wave".into(), json!(self.record.wave));
                d.detail.insert("message".into(), json!(s.message));
                if s.kind == StepKind::Promoted
                    && let Some(open) = self.gate_opened(rules)
                {
                    // From the moment the last soak of the previous wave completed, as seen here.
                    let waited = (now - open).num_milliseconds().max(0) as f64 / 1000.0;
                    d.detail.insert("gateOpenSeconds".into(), json!(waited));
                }
                d
            })
            .collect();
        for s in &output.steps {
            tracing::info!(cluster = %self.cluster, step = s.kind.label(), to = ?s.to, from = ?s.from, "{}", s.message);
        }
        if let Err(e) = decisions::append(self.own.as_ref(), &self.kops_name, &batch, now).await {
            tracing::warn!(error = %e, "rollout decisions not written to the state store");
        }
    }

    /// When the gate opened on this clock: the last of the previous wave's soaks to complete.
    fn gate_opened(&self, rules: &Rules) -> Option<DateTime<Utc>> {
        let soak = chrono::Duration::from_std(rules.upstream_soak).ok()?;
        let ends =
            rules.upstream.iter().map(|c| self.record.observations.get(c).and_then(|o| o.since).map(|s| s + soak));
        ends.collect::<Option<Vec<_>>>()?.into_iter().max()
    }

    async fn finish(&mut self, now: DateTime<Utc>, follow_base: Option<String>) {
        if follow_base.is_some() {
            self.record.follow_base = follow_base;
        }
        self.record.heartbeat += 1;
        self.record.time = Some(now);
        let value = serde_json::to_value(&self.record).expect("records serialise");
        let written = update_json(self.own.as_ref(), &object::status_key(&self.kops_name), |doc| {
            if !doc.is_object() {
                *doc = json!({});
            }
            doc["rollout"] = value.clone();
        })
        .await;
        self.write_error = written.err().map(|e| e.to_string());
        if let Some(e) = &self.write_error {
            tracing::warn!(error = %e, "the rollout record cannot be written");
        }
    }
}

fn empty_fleet() -> FleetSpec {
    FleetSpec { clusters: Vec::new(), waves: Vec::new(), paused: None, heartbeat_timeout: None, approvals: Vec::new() }
}
