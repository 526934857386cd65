//! What a daemon writes about its rollout in its own cluster's `<kopsName>/capstan/status.json`
//! (section `rollout`), and what the next wave's daemons read. One document serves both: the
//! daemon reads its own back at start-up, so a restart resumes a soak or a halt.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A revision as this cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    /// `main@sha1:<sha>`.
    pub revision: String,
    pub sha: String,
    /// The digest of this cluster's effective policy at that revision.
    pub digest: String,
    /// The commit that first put this content in force here: a later commit that leaves the
    /// content alone keeps the epoch, so the soak carries over.
    pub epoch: String,
    /// When the epoch went in force, on this daemon's clock.
    pub since: DateTime<Utc>,
}

/// Where a cluster stands in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Nothing new can be taken yet: the previous wave has not soaked it, or nothing is in force.
    #[default]
    Waiting,
    /// A revision is in force and its soak is counting (or waiting for the first healthy pass).
    Soaking,
    /// The revision in force completed its soak and the cluster is healthy.
    Healthy,
    /// The revision in force completed its soak, but the cluster is not healthy now.
    Unhealthy,
    /// The revision in force turned unhealthy in its soak and there is nothing to go back to.
    Halted,
    /// A revision turned unhealthy in its soak; the cluster went back to its last-known-good.
    RolledBack,
    AwaitingApproval,
    Paused,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Soaking => "soaking",
            Phase::Healthy => "healthy",
            Phase::Unhealthy => "unhealthy",
            Phase::Halted => "halted",
            Phase::RolledBack => "rolled-back",
            Phase::AwaitingApproval => "awaiting-approval",
            Phase::Paused => "paused",
        }
    }

    pub const ALL: [Phase; 8] = [
        Phase::Waiting,
        Phase::Soaking,
        Phase::Healthy,
        Phase::Unhealthy,
        Phase::Halted,
        Phase::RolledBack,
        Phase::AwaitingApproval,
        Phase::Paused,
    ];
}

/// A revision that turned a cluster unhealthy in its soak: no later wave takes it, and the
/// cluster that halted it never takes its content again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Halted {
    pub revision: String,
    pub sha: String,
    /// The halting cluster's policy digest at that revision.
    pub digest: String,
    pub cluster: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// This cluster's own soak of the revision in force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Soak {
    /// When the cluster was last seen turning healthy on the epoch in force (this daemon's
    /// clock); unset while unhealthy or not yet measured.
    pub healthy_since: Option<DateTime<Utc>>,
    pub completed: bool,
}

/// What this daemon has seen of one cluster of the previous wave, counted on its own clock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// The peer's heartbeat, `<incarnation>/<sequence>`, as last read.
    pub heartbeat: Option<String>,
    /// When this daemon last read the record.
    #[serde(default)]
    pub read_at: Option<DateTime<Utc>>,
    /// When the heartbeat was last seen to change; unset until it has been.
    pub heartbeat_changed: Option<DateTime<Utc>>,
    /// What the soak being counted is of: `<epoch>/<incarnation>/<healthySince>`. A restart, a
    /// new epoch or a spell of ill health starts a new one.
    pub key: Option<String>,
    /// Since when the peer has been seen healthy under `key`.
    pub since: Option<DateTime<Utc>>,
    /// The newest revision (sha) seen in force on the peer under `key`.
    pub latest: Option<String>,
    /// The newest revision (sha) this daemon saw the peer hold healthy for the whole soak.
    pub soaked: Option<String>,
}

/// The `rollout` section of a cluster's status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub cluster: String,
    pub wave: u32,
    /// New at every start of the daemon: readers restart their count of its soak.
    pub incarnation: String,
    /// Incremented at every write; readers judge freshness by seeing it change.
    pub heartbeat: u64,
    /// The writer's clock at the write, for people; readers never compute with it.
    pub time: Option<DateTime<Utc>>,
    /// The newest revision the follower accepted (signature and validation).
    pub accepted: Option<String>,
    pub in_force: Option<Held>,
    pub last_known_good: Option<Held>,
    pub healthy: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_reasons: Vec<String>,
    pub soak: Soak,
    pub soak_seconds: u64,
    pub phase: Phase,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub halted: Vec<Halted>,
    /// The last tip the follower saw: a restarted follower refuses a tip that does not descend
    /// from it.
    pub follow_base: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub observations: BTreeMap<String, Observation>,
}

/// How many halted revisions a record keeps.
pub const HALTED_KEPT: usize = 20;

impl Record {
    /// `<incarnation>/<sequence>`.
    pub fn heartbeat_token(&self) -> String {
        format!("{}/{}", self.incarnation, self.heartbeat)
    }

    pub fn is_halted(&self, sha: &str) -> Option<&Halted> {
        self.halted.iter().find(|h| h.sha == sha)
    }

    pub fn add_halted(&mut self, h: Halted) {
        if self.halted.iter().any(|x| x.sha == h.sha && x.cluster == h.cluster) {
            return;
        }
        self.halted.push(h);
        if self.halted.len() > HALTED_KEPT {
            self.halted.remove(0);
        }
    }
}
