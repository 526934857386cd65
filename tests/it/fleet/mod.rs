//! Fleet rollout gate tests: builders shared by the rule tests (`gate.rs`) and the property test
//! over random interleavings of daemons on a virtual clock (`properties.rs`).

#![allow(dead_code)]

mod gate;
mod properties;

use std::collections::BTreeMap;
use std::time::Duration;

use capstan::fleet::gate::{
    Action, Candidate, DEFAULT_HEARTBEAT_TIMEOUT, Input, Lineage, Output, Peer, Rules, StepKind,
};
use capstan::fleet::health::Health;
use capstan::fleet::record::{Halted, Held, Record, Soak};
use chrono::{DateTime, Utc};

/// `t(s)`: `s` seconds after a fixed instant.
pub fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_592_800 + s, 0).unwrap()
}

pub fn rev(sha: &str) -> String {
    format!("main@sha1:{sha}")
}

/// The rules of cluster `me` in `wave`, below `upstream` (wave - 1); every wave soaks `soak` s.
pub fn rules(wave: u32, upstream: &[&str], soak: u64) -> Rules {
    Rules {
        cluster: "me".into(),
        wave,
        soak: Duration::from_secs(soak),
        upstream: upstream.iter().map(|s| s.to_string()).collect(),
        upstream_wave: (!upstream.is_empty()).then(|| wave - 1),
        upstream_soak: Duration::from_secs(soak),
        requires_approval: false,
        approved: Vec::new(),
        paused: false,
        heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
    }
}

pub fn cand(sha: &str, digest: &str) -> Candidate {
    Candidate { revision: rev(sha), sha: sha.into(), digest: Ok(digest.into()) }
}

/// `sha` in force since `t(0)`, its own epoch.
pub fn held(sha: &str, digest: &str) -> Held {
    Held { revision: rev(sha), sha: sha.into(), digest: digest.into(), epoch: sha.into(), since: t(0) }
}

/// This cluster's record with `sha` in force, soaked: its last-known-good.
pub fn settled(sha: &str, digest: &str) -> Record {
    Record {
        cluster: "me".into(),
        incarnation: "me-1".into(),
        in_force: Some(held(sha, digest)),
        last_known_good: Some(held(sha, digest)),
        healthy: true,
        soak: Soak { healthy_since: Some(t(0)), completed: true },
        ..Record::default()
    }
}

/// What a daemon of the previous wave wrote: `sha` in force, healthy, its own soak completed,
/// every time in it at `t(0)` on its clock.
pub fn peer_record(name: &str, sha: &str, digest: &str) -> Record {
    Record {
        cluster: name.into(),
        incarnation: format!("{name}-1"),
        heartbeat: 1,
        time: Some(t(0)),
        in_force: Some(held(sha, digest)),
        last_known_good: Some(held(sha, digest)),
        healthy: true,
        soak: Soak { healthy_since: Some(t(0)), completed: true },
        ..Record::default()
    }
}

pub fn halted(sha: &str, digest: &str, by: &str) -> Halted {
    Halted {
        revision: rev(sha),
        sha: sha.into(),
        digest: digest.into(),
        cluster: by.into(),
        reason: "pods pending".into(),
        at: t(0),
    }
}

pub fn kinds(out: &Output) -> Vec<StepKind> {
    out.steps.iter().map(|s| s.kind).collect()
}

/// One cluster's view for the gate: its rules, the revisions at hand and the peers' records.
pub struct Gate {
    pub rules: Rules,
    pub known: BTreeMap<String, Candidate>,
    pub lineage: Lineage,
    pub tip: Option<String>,
    pub health: Health,
    pub peers: BTreeMap<String, Peer>,
}

impl Gate {
    /// `history`: a linear history, oldest first; the newest is the tip.
    pub fn new(rules: Rules, history: &[Candidate]) -> Gate {
        let shas: Vec<&str> = history.iter().map(|c| c.sha.as_str()).collect();
        Gate {
            rules,
            known: history.iter().map(|c| (c.sha.clone(), c.clone())).collect(),
            lineage: Lineage::linear(&shas),
            tip: history.last().map(|c| c.sha.clone()),
            health: Health::Healthy,
            peers: BTreeMap::new(),
        }
    }

    pub fn tip(mut self, sha: &str) -> Gate {
        self.tip = Some(sha.into());
        self
    }

    pub fn health(mut self, h: Health) -> Gate {
        self.health = h;
        self
    }

    /// A peer's record as the state store holds it.
    pub fn put(&mut self, r: Record) {
        self.peers.insert(r.cluster.clone(), Peer::Read(Box::new(r)));
    }

    pub fn peer(&mut self, name: &str) -> &mut Record {
        match self.peers.get_mut(name) {
            Some(Peer::Read(r)) => r,
            _ => panic!("no record of {name}"),
        }
    }

    /// Every peer writes its record once more.
    pub fn beat(&mut self) {
        for p in self.peers.values_mut() {
            if let Peer::Read(r) = p {
                r.heartbeat += 1;
            }
        }
    }

    /// One pass at `now` seconds on this daemon's clock.
    pub fn pass(&self, rec: &mut Record, now: i64) -> Output {
        let input = Input {
            now: t(now),
            rules: &self.rules,
            tip: self.tip.as_ref().and_then(|s| self.known.get(s)),
            known: &self.known,
            lineage: &self.lineage,
            health: &self.health,
            peers: &self.peers,
        };
        capstan::fleet::gate::gate(rec, &input)
    }

    /// Passes every `every` s from `from` to `to`, the peers writing before each; the time and
    /// output of the first pass that puts a revision in force.
    pub fn run(&mut self, rec: &mut Record, from: i64, to: i64, every: i64) -> Option<(i64, Output)> {
        let mut now = from;
        while now <= to {
            self.beat();
            let out = self.pass(rec, now);
            if out.action != Action::Hold {
                return Some((now, out));
            }
            now += every;
        }
        None
    }
}
