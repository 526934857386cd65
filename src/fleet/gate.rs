//! The gate: which revision this cluster holds in force, and why. A pure decision over the
//! Fleet's rules, what this daemon read of the previous wave, its own record and health, and
//! the time on its own clock.
//!
//! ```text
//! peers' records ─► observe (heartbeat seen to change? healthy? how long, on my clock?)
//! own health     ─► soak: healthy for soakTime → last-known-good; unhealthy in the soak → halt, roll back
//! newest accepted ─► candidate: wave 0 takes it; wave k the oldest revision every peer vouched for
//!                 ─► same policy here? take it at once · paused? approval? halted? → adopt or hold
//! ```
//!
//! Times read from other daemons are never compared with this clock: a soak is counted from
//! when this daemon first saw the peer healthy under one epoch and incarnation, and a peer is
//! alive only while this daemon sees its heartbeat change, as leader election counts a lease.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::health::Health;
use super::record::{Halted, Held, Observation, Phase, Record, Soak};
use crate::policy::capstan::FleetSpec;

/// The default of Fleet `spec.heartbeatTimeout`.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(120);

/// What the Fleet at the newest accepted commit says for this cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rules {
    pub cluster: String,
    pub wave: u32,
    /// How long this wave soaks a revision.
    pub soak: Duration,
    /// The clusters of the previous wave (the nearest lower wave that has clusters).
    pub upstream: Vec<String>,
    pub upstream_wave: Option<u32>,
    pub upstream_soak: Duration,
    pub requires_approval: bool,
    /// Commits approved for this wave (full shas).
    pub approved: Vec<String>,
    pub paused: bool,
    pub heartbeat_timeout: Duration,
}

impl Rules {
    /// The rules for `cluster`, or none when the Fleet does not list it. `resolve` turns an
    /// approval's commit id into a full sha (none when unknown).
    pub fn from_fleet(spec: &FleetSpec, cluster: &str, resolve: impl Fn(&str) -> Option<String>) -> Option<Rules> {
        let me = spec.clusters.iter().find(|c| c.name == cluster)?;
        let soak_of =
            |w: u32| spec.waves.iter().find(|x| x.wave == w).map_or(Duration::ZERO, |x| x.soak_time.duration());
        let upstream_wave = spec.clusters.iter().map(|c| c.wave).filter(|w| *w < me.wave).max();
        let upstream = match upstream_wave {
            Some(w) => spec.clusters.iter().filter(|c| c.wave == w).map(|c| c.name.clone()).collect(),
            None => Vec::new(),
        };
        let wave = spec.waves.iter().find(|x| x.wave == me.wave);
        Some(Rules {
            cluster: cluster.to_string(),
            wave: me.wave,
            soak: soak_of(me.wave),
            upstream,
            upstream_wave,
            upstream_soak: upstream_wave.map_or(Duration::ZERO, soak_of),
            requires_approval: wave.is_some_and(|w| w.require_approval == Some(true)),
            approved: spec
                .approvals
                .iter()
                .filter(|a| a.wave == me.wave)
                .filter_map(|a| resolve(&a.revision))
                .collect(),
            paused: spec.paused == Some(true),
            heartbeat_timeout: spec.heartbeat_timeout.as_ref().map_or(DEFAULT_HEARTBEAT_TIMEOUT, |d| d.duration()),
        })
    }
}

/// A revision the gate may pick, with this cluster's policy digest there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `main@sha1:<sha>`.
    pub revision: String,
    pub sha: String,
    /// The digest of this cluster's effective policy, or why the revision does not load for it.
    pub digest: Result<String, String>,
}

/// Which of the revisions at hand descend from which.
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    /// (ancestor, descendant) pairs.
    below: BTreeSet<(String, String)>,
}

impl Lineage {
    pub fn add(&mut self, ancestor: &str, descendant: &str) {
        self.below.insert((ancestor.to_string(), descendant.to_string()));
    }

    /// A history in order, oldest first.
    pub fn linear(shas: &[&str]) -> Lineage {
        let mut l = Lineage::default();
        for (i, a) in shas.iter().enumerate() {
            for b in &shas[i + 1..] {
                l.add(a, b);
            }
        }
        l
    }

    /// `a` is `b` or an ancestor of it.
    pub fn le(&self, a: &str, b: &str) -> bool {
        a == b || self.below.contains(&(a.to_string(), b.to_string()))
    }

    /// The older of two revisions, none when neither descends from the other.
    pub fn min<'a>(&self, a: &'a str, b: &'a str) -> Option<&'a str> {
        if self.le(a, b) {
            Some(a)
        } else if self.le(b, a) {
            Some(b)
        } else {
            None
        }
    }
}

/// What this daemon read of a cluster of the previous wave.
#[derive(Debug, Clone, PartialEq)]
pub enum Peer {
    /// No rollout status written yet.
    Missing,
    Unreadable(String),
    Read(Box<Record>),
}

pub struct Input<'a> {
    /// This daemon's clock.
    pub now: DateTime<Utc>,
    pub rules: &'a Rules,
    /// The newest revision the follower accepted for this cluster.
    pub tip: Option<&'a Candidate>,
    /// Every revision the gate may pick, by sha.
    pub known: &'a BTreeMap<String, Candidate>,
    pub lineage: &'a Lineage,
    pub health: &'a Health,
    pub peers: &'a BTreeMap<String, Peer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    Applied,
    Soaking,
    Healthy,
    Promoted,
    Halted,
    RolledBack,
}

impl StepKind {
    pub fn label(self) -> &'static str {
        match self {
            StepKind::Applied => "applied",
            StepKind::Soaking => "soaking",
            StepKind::Healthy => "healthy",
            StepKind::Promoted => "promoted",
            StepKind::Halted => "halted",
            StepKind::RolledBack => "rolled-back",
        }
    }
}

/// One step of the rollout on this cluster, for the decision log, events, metrics and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub kind: StepKind,
    /// The revision in force before, and the one the step is about.
    pub from: Option<String>,
    pub to: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Action {
    #[default]
    Hold,
    /// Put this revision in force (a rollback when `rollback`).
    Apply { sha: String, rollback: bool },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    pub action: Action,
    pub steps: Vec<Step>,
}

fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or_default()
}

/// Decides one pass: updates the record and says what to put in force.
pub fn gate(rec: &mut Record, i: &Input) -> Output {
    let mut out = Output::default();
    rec.cluster = i.rules.cluster.clone();
    rec.wave = i.rules.wave;
    rec.soak_seconds = i.rules.soak.as_secs();
    rec.accepted = i.tip.map(|t| t.revision.clone());
    let upstream = observe(rec, i);
    let sticky = own_soak(rec, i, &mut out);
    // A rollback decides the pass; the record still says what this pass measured.
    if !matches!(out.action, Action::Apply { .. }) {
        let hold = choose(rec, i, &upstream, &mut out);
        let adopted = matches!(out.action, Action::Apply { .. });
        if !sticky || adopted {
            let (phase, reason) = hold.unwrap_or_else(|| own_phase(rec, i));
            rec.phase = phase;
            rec.reason = reason;
        }
    }
    rec.healthy = i.health.is_healthy() && rec.in_force.as_ref().is_some_and(|f| rec.is_halted(&f.sha).is_none());
    rec.health_reasons = i.health.reasons();
    out
}

/// Why a peer vouches for nothing yet, and what it holds alive and healthy meanwhile.
#[derive(Debug, Clone)]
struct Waiting {
    why: String,
    holds: Option<String>,
}

impl Waiting {
    fn no(why: String) -> Waiting {
        Waiting { why, holds: None }
    }
}

/// Per peer: the newest revision it vouches for, or why not.
type Verdict = Result<String, Waiting>;

/// Updates what this daemon has seen of each peer; per peer, the newest revision it vouches
/// for, or why it vouches for nothing now.
fn observe(rec: &mut Record, i: &Input) -> BTreeMap<String, Verdict> {
    let mut verdicts = BTreeMap::new();
    let mut inherited = Vec::new();
    for name in &i.rules.upstream {
        let obs = rec.observations.entry(name.clone()).or_default();
        let verdict = match i.peers.get(name) {
            None | Some(Peer::Missing) => {
                *obs = Observation::default();
                Err(Waiting::no(format!("{name} has written no rollout status")))
            }
            Some(Peer::Unreadable(e)) => {
                restart(obs);
                Err(Waiting::no(format!("{name}'s status cannot be read: {e}")))
            }
            Some(Peer::Read(p)) => {
                inherited.extend(p.halted.iter().cloned());
                judge_peer(name, p, obs, i)
            }
        };
        verdicts.insert(name.clone(), verdict);
    }
    rec.observations.retain(|k, _| i.rules.upstream.contains(k));
    for h in inherited {
        rec.add_halted(h);
    }
    verdicts
}

/// A new count of the soak starts at the next healthy reading.
fn restart(obs: &mut Observation) {
    obs.key = None;
    obs.since = None;
    obs.latest = None;
}

fn judge_peer(name: &str, p: &Record, obs: &mut Observation, i: &Input) -> Verdict {
    let now = i.now;
    let timeout = i.rules.heartbeat_timeout;
    let beat = p.heartbeat_token();
    let last_read = obs.read_at.replace(now);
    if obs.heartbeat.as_deref() != Some(beat.as_str()) {
        // A change proves a write since this daemon last read the record. When that read is
        // older than the timeout (this daemon did not run), the write may be that old: it counts
        // as a first sight, not as a sign of life.
        let watched = last_read.is_some_and(|t| age(now, t) <= timeout);
        obs.heartbeat_changed = (obs.heartbeat.is_some() && watched).then_some(now);
        obs.heartbeat = Some(beat);
    }
    if let Some(s) = &obs.soaked
        && p.halted.iter().any(|h| &h.sha == s)
    {
        obs.soaked = None;
    }
    let fresh = obs.heartbeat_changed.is_some_and(|t| age(now, t) <= timeout);
    let held = p.in_force.as_ref().filter(|_| p.healthy);
    let (Some(f), Some(healthy_since), true) = (held, p.soak.healthy_since, fresh) else {
        restart(obs);
        return Err(Waiting::no(match obs.heartbeat_changed {
            None => format!("{name}'s heartbeat has not been seen to change yet"),
            Some(t) if !fresh => format!(
                "{name} has not written its status for {}s (heartbeatTimeout {}s)",
                age(now, t).as_secs(),
                timeout.as_secs()
            ),
            _ if p.in_force.is_none() => format!("{name} has no revision in force"),
            _ => format!("{name} is not healthy: {}", p.health_reasons.join("; ")),
        }));
    };
    let key = format!("{}/{}/{}", f.epoch, p.incarnation, healthy_since.timestamp_millis());
    if obs.key.as_deref() != Some(key.as_str()) {
        obs.key = Some(key);
        obs.since = Some(now);
    }
    obs.latest = Some(f.sha.clone());
    let since = obs.since.unwrap_or(now);
    // The peer's own soak must be complete too: until it is, the peer may still halt it.
    if age(now, since) >= i.rules.upstream_soak && p.soak.completed {
        obs.soaked = Some(f.sha.clone());
    }
    obs.soaked.clone().ok_or_else(|| Waiting {
        why: format!(
            "{name} soaking {}: healthy for {}s of {}s{}",
            f.revision,
            age(now, since).as_secs(),
            i.rules.upstream_soak.as_secs(),
            if p.soak.completed { "" } else { ", its own soak not complete" }
        ),
        holds: Some(f.sha.clone()),
    })
}

/// This cluster's own soak: completes into last-known-good, or halts and rolls back. True when
/// the phase is a halt or rollback that stays until the next revision is taken.
fn own_soak(rec: &mut Record, i: &Input, out: &mut Output) -> bool {
    let sticky = matches!(rec.phase, Phase::RolledBack | Phase::Halted);
    let Some(f) = rec.in_force.clone() else { return sticky };
    if rec.halted.iter().any(|h| h.sha == f.sha && h.cluster == rec.cluster) {
        rec.soak.healthy_since = None;
        return sticky;
    }
    let now = i.now;
    match i.health {
        Health::Healthy => {
            if rec.soak.healthy_since.is_none() {
                rec.soak.healthy_since = Some(now);
                if !rec.soak.completed {
                    out.steps.push(step(
                        StepKind::Soaking,
                        None,
                        &f.revision,
                        format!("{} healthy: soak of {}s started", f.revision, i.rules.soak.as_secs()),
                    ));
                }
            }
            let since = rec.soak.healthy_since.unwrap_or(now);
            if !rec.soak.completed && age(now, since) >= i.rules.soak {
                rec.soak.completed = true;
                rec.last_known_good = Some(f.clone());
                out.steps.push(step(
                    StepKind::Healthy,
                    None,
                    &f.revision,
                    format!("{} held healthy for {}s: last-known-good", f.revision, i.rules.soak.as_secs()),
                ));
            }
            sticky
        }
        Health::Unknown(_) => sticky,
        Health::Unhealthy(reasons) => {
            rec.soak.healthy_since = None;
            if rec.soak.completed {
                return sticky;
            }
            halt(rec, &f, &reasons.join("; "), now, out);
            true
        }
    }
}

fn halt(rec: &mut Record, f: &Held, reason: &str, now: DateTime<Utc>, out: &mut Output) {
    rec.add_halted(Halted {
        revision: f.revision.clone(),
        sha: f.sha.clone(),
        digest: f.digest.clone(),
        cluster: rec.cluster.clone(),
        reason: reason.to_string(),
        at: now,
    });
    out.steps.push(step(
        StepKind::Halted,
        None,
        &f.revision,
        format!("{} halted for the fleet: unhealthy in its soak ({reason})", f.revision),
    ));
    match rec.last_known_good.clone().filter(|g| g.sha != f.sha && g.digest != f.digest) {
        Some(g) => {
            rec.in_force = Some(Held { since: now, ..g.clone() });
            rec.soak = Soak { healthy_since: None, completed: true };
            rec.phase = Phase::RolledBack;
            rec.reason = format!("{} halted ({reason}); back on last-known-good {}", f.revision, g.revision);
            out.steps.push(step(
                StepKind::RolledBack,
                Some(&f.revision),
                &g.revision,
                format!("rolled back from {} to last-known-good {}", f.revision, g.revision),
            ));
            out.action = Action::Apply { sha: g.sha, rollback: true };
        }
        None => {
            rec.phase = Phase::Halted;
            rec.reason = format!("{} halted ({reason}); no last-known-good to go back to", f.revision);
        }
    }
}

fn step(kind: StepKind, from: Option<&str>, to: &str, message: String) -> Step {
    Step { kind, from: from.map(String::from), to: Some(to.to_string()), message }
}

/// Picks the revision to take; the phase and reason when holding (none: from the own soak).
fn choose(
    rec: &mut Record,
    i: &Input,
    upstream: &BTreeMap<String, Verdict>,
    out: &mut Output,
) -> Option<(Phase, String)> {
    let Some(tip) = i.tip else {
        return Some((Phase::Waiting, "no revision accepted yet".into()));
    };
    let halted = |sha: &str| rec.halted.iter().find(|h| h.sha == sha).cloned();
    if let Some(f) = &rec.in_force {
        if f.sha == tip.sha {
            return None;
        }
        // The first wave takes a commit that leaves its policy alone at once. A later wave takes
        // it only through the gate, like any other (below): its readers count a soak by its
        // epoch, so what it holds unchanged they would vouch for before the wave above soaked it.
        let first = i.rules.upstream.is_empty();
        if first
            && tip.digest.as_ref().ok() == Some(&f.digest)
            && i.lineage.le(&f.sha, &tip.sha)
            && halted(&tip.sha).is_none()
        {
            adopt_same(rec, tip, out);
            return None;
        }
    }
    let mut cand = tip.sha.clone();
    if !i.rules.upstream.is_empty() {
        // A cluster with nothing in force takes what the previous wave holds, alive and healthy,
        // now: running no policy at all would be worse than running the one they run.
        let bootstrap = rec.in_force.is_none();
        let vouched: Vec<&String> = upstream
            .values()
            .filter_map(|v| match v {
                Ok(s) => Some(s),
                Err(w) if bootstrap => w.holds.as_ref(),
                Err(_) => None,
            })
            .collect();
        if vouched.len() < upstream.len() {
            let wave = i.rules.upstream_wave.unwrap_or_default();
            let why: Vec<&str> = upstream.values().filter_map(|v| v.as_ref().err()).map(|w| w.why.as_str()).collect();
            return Some((Phase::Waiting, format!("waiting for wave {wave}: {}", why.join("; "))));
        }
        for v in vouched {
            match i.lineage.min(&cand, v) {
                Some(m) => cand = m.to_string(),
                None => return Some((Phase::Waiting, format!("{v} and {cand} are on diverged histories"))),
            }
        }
    }
    if let Some(f) = &rec.in_force
        && i.lineage.le(&cand, &f.sha)
    {
        let wave = i.rules.upstream_wave.unwrap_or_default();
        return Some((Phase::Waiting, format!("{} has not passed wave {wave} yet", tip.revision)));
    }
    let Some(mut c) = i.known.get(&cand).cloned() else {
        return Some((Phase::Waiting, format!("revision {cand} is not loaded yet")));
    };
    if let Err(e) = &c.digest {
        return Some((Phase::Waiting, format!("{} does not load for this cluster: {e}", c.revision)));
    }
    if let Some(h) = halted(&c.sha) {
        return Some((Phase::Waiting, format!("{} was halted on {}: {}", h.revision, h.cluster, h.reason)));
    }
    let digest = c.digest.clone().unwrap_or_default();
    if rec.halted.iter().any(|h| h.cluster == rec.cluster && h.digest == digest) {
        return Some((Phase::Waiting, format!("{} has the policy this cluster halted before", c.revision)));
    }
    if let Some(f) = &rec.in_force
        && f.digest == digest
    {
        adopt_same(rec, &c, out);
        return None;
    }
    if i.rules.paused {
        return Some((Phase::Paused, format!("the fleet is paused (spec.paused); {} waits", c.revision)));
    }
    if i.rules.requires_approval && !i.rules.approved.iter().any(|a| i.lineage.le(&c.sha, a)) {
        match approved_below(rec, i, &c) {
            Some(a) => c = a,
            None => {
                return Some((
                    Phase::AwaitingApproval,
                    format!(
                        "wave {} requires approval: add {{wave: {}, revision: {}}} to spec.approvals in fleet.yaml",
                        i.rules.wave, i.rules.wave, c.sha
                    ),
                ));
            }
        }
    }
    adopt(rec, i, &c, out);
    None
}

/// The newest approved revision between the one in force and the candidate.
fn approved_below(rec: &Record, i: &Input, c: &Candidate) -> Option<Candidate> {
    let mut best: Option<&Candidate> = None;
    for a in &i.rules.approved {
        let Some(k) = i.known.get(a).filter(|k| k.digest.is_ok() && rec.is_halted(a).is_none()) else { continue };
        let above = rec.in_force.as_ref().is_none_or(|f| !i.lineage.le(a, &f.sha));
        if i.lineage.le(a, &c.sha) && above && best.is_none_or(|b| i.lineage.le(&b.sha, a)) {
            best = Some(k);
        }
    }
    best.cloned()
}

/// A revision whose policy here is the one in force: taken at once, the epoch and soak kept.
fn adopt_same(rec: &mut Record, c: &Candidate, out: &mut Output) {
    let Some(f) = rec.in_force.as_mut() else { return };
    let from = std::mem::replace(&mut f.revision, c.revision.clone());
    f.sha = c.sha.clone();
    if let Some(g) = rec.last_known_good.as_mut().filter(|g| g.digest == f.digest) {
        g.revision = c.revision.clone();
        g.sha = c.sha.clone();
    }
    out.steps.push(step(
        StepKind::Applied,
        Some(&from),
        &c.revision,
        format!("{} in force: it leaves this cluster's policy unchanged, so the soak carries over", c.revision),
    ));
    out.action = Action::Apply { sha: c.sha.clone(), rollback: false };
}

fn adopt(rec: &mut Record, i: &Input, c: &Candidate, out: &mut Output) {
    let from = rec.in_force.as_ref().map(|f| f.revision.clone());
    let message = match i.rules.upstream_wave {
        Some(w) if from.is_none() => {
            format!("{} in force: nothing was, and every cluster of wave {w} runs it healthily", c.revision)
        }
        _ => format!("{} in force", c.revision),
    };
    if let Some(w) = i.rules.upstream_wave.filter(|_| from.is_some()) {
        out.steps.push(step(
            StepKind::Promoted,
            from.as_deref(),
            &c.revision,
            format!(
                "{} promoted to wave {}: every cluster of wave {w} held it healthy for {}s",
                c.revision,
                i.rules.wave,
                i.rules.upstream_soak.as_secs()
            ),
        ));
    }
    out.steps.push(step(StepKind::Applied, from.as_deref(), &c.revision, message));
    rec.in_force = Some(Held {
        revision: c.revision.clone(),
        sha: c.sha.clone(),
        digest: c.digest.clone().unwrap_or_default(),
        epoch: c.sha.clone(),
        since: i.now,
    });
    rec.soak = Soak::default();
    rec.phase = Phase::Soaking;
    rec.reason = format!("{} applied; its soak starts at the first healthy pass", c.revision);
    out.action = Action::Apply { sha: c.sha.clone(), rollback: false };
}

/// The phase when nothing holds a newer revision back.
fn own_phase(rec: &Record, i: &Input) -> (Phase, String) {
    let Some(f) = &rec.in_force else {
        return (Phase::Waiting, "nothing in force yet".into());
    };
    match (i.health, rec.soak.completed, rec.soak.healthy_since) {
        (Health::Unhealthy(r), true, _) => (Phase::Unhealthy, format!("{} unhealthy: {}", f.revision, r.join("; "))),
        (_, true, _) => (Phase::Healthy, format!("{} in force and healthy", f.revision)),
        (_, false, Some(since)) => (
            Phase::Soaking,
            format!(
                "soaking {} since {}: healthy for {}s of {}s",
                f.revision,
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                age(i.now, since).as_secs(),
                i.rules.soak.as_secs()
            ),
        ),
        (h, false, None) => {
            (Phase::Soaking, format!("{} applied; waiting for a healthy pass: {}", f.revision, h.reasons().join("; ")))
        }
    }
}
