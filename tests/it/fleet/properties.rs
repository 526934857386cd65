//! The gate under random interleavings of a whole fleet on a virtual clock: commits, time,
//! daemon deaths and restarts, passes in any order, each daemon with its own skewed clock. The
//! state store is modelled as the last record each daemon wrote; every record written is kept
//! with the true time of the write, and the rollout rules are checked against those writes.

use std::collections::BTreeMap;
use std::time::Duration;

use capstan::fleet::gate::{self, Action, Candidate, Input, Lineage, Output, Peer, Rules, StepKind};
use capstan::fleet::health::Health;
use capstan::fleet::record::Record;
use proptest::prelude::*;

use super::{rev, t};

/// The Fleet's heartbeatTimeout, in seconds.
const TIMEOUT: i64 = 45;

#[derive(Debug, Clone)]
enum Event {
    /// A new commit: per cluster, whether it changes that cluster's policy and, when it does,
    /// whether the new policy makes the cluster unhealthy.
    Commit(Vec<(bool, bool)>),
    /// Time passes with nobody running.
    Advance(i64),
    /// Time passes, then every live daemon runs a pass, in an order drawn from the seed.
    Tick(i64, u64),
    /// One daemon runs a pass (when alive).
    Pass(usize),
    /// A daemon stops: no passes, no writes.
    Kill(usize),
    /// A daemon (re)starts with a new incarnation and the record it wrote last.
    Restart(usize),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        1 => proptest::collection::vec((prop::bool::weighted(0.7), prop::bool::weighted(0.25)), 5).prop_map(Event::Commit),
        1 => (1i64..=60).prop_map(Event::Advance),
        24 => (1i64..=40, any::<u64>()).prop_map(|(s, o)| Event::Tick(s, o)),
        2 => (0usize..5).prop_map(Event::Pass),
        1 => (0usize..5).prop_map(Event::Kill),
        2 => (0usize..5).prop_map(Event::Restart),
    ]
}

#[derive(Debug, Clone)]
struct Fleet {
    /// Wave of each cluster; every wave of 0..=2 has one.
    waves: Vec<u32>,
    /// Each daemon's clock minus the true time, in seconds.
    skews: Vec<i64>,
    /// soakTime of each wave, in seconds.
    soaks: [u64; 3],
}

fn fleet() -> impl Strategy<Value = Fleet> {
    (
        proptest::collection::vec(0u32..=2, 0..=2),
        proptest::collection::vec(-300i64..=300, 5),
        [100u64..=200, 100u64..=200, 0u64..=300],
    )
        .prop_map(|(extra, skews, soaks)| {
            let waves: Vec<u32> = [0, 1, 2].into_iter().chain(extra).collect();
            let skews = skews[..waves.len()].to_vec();
            Fleet { waves, skews, soaks }
        })
}

struct Commit {
    sha: String,
    /// Per cluster.
    digest: Vec<String>,
    bad: Vec<bool>,
}

struct Daemon {
    name: String,
    wave: u32,
    skew: i64,
    alive: bool,
    incarnation: u32,
    /// What it holds in memory; the same as what it wrote last (it writes after every pass).
    rec: Record,
}

struct World {
    fleet: Fleet,
    /// True time, seconds.
    now: i64,
    daemons: Vec<Daemon>,
    commits: Vec<Commit>,
    lineage: Lineage,
    /// The state store: each cluster's last written record.
    store: BTreeMap<String, Record>,
    /// Every record each cluster wrote, with the true time of the write.
    written: BTreeMap<String, Vec<(i64, Record)>>,
    /// Counts, for the coverage check of the deterministic test.
    adopted_by_wave: [usize; 3],
    rollbacks: usize,
}

impl World {
    fn new(fleet: Fleet) -> World {
        let daemons = fleet
            .waves
            .iter()
            .zip(&fleet.skews)
            .enumerate()
            .map(|(i, (&wave, &skew))| {
                let name = format!("c{i}");
                let rec = Record { incarnation: format!("{name}-0"), ..Record::default() };
                Daemon { name, wave, skew, alive: true, incarnation: 0, rec }
            })
            .collect();
        World {
            fleet,
            now: 0,
            daemons,
            commits: Vec::new(),
            lineage: Lineage::default(),
            store: BTreeMap::new(),
            written: BTreeMap::new(),
            adopted_by_wave: [0; 3],
            rollbacks: 0,
        }
    }

    fn step(&mut self, e: &Event) -> Result<(), String> {
        let n = self.daemons.len();
        match e {
            Event::Commit(changes) => self.commit(changes),
            Event::Advance(s) => self.now += s,
            Event::Tick(s, order) => {
                self.now += s;
                let mut idx: Vec<usize> = (0..n).collect();
                let mut seed = *order;
                for i in (1..n).rev() {
                    idx.swap(i, (seed % (i as u64 + 1)) as usize);
                    seed /= i as u64 + 1;
                }
                for i in idx {
                    self.pass(i)?;
                }
            }
            Event::Pass(i) => self.pass(i % n)?,
            Event::Kill(i) => self.daemons[i % n].alive = false,
            Event::Restart(i) => {
                let d = &mut self.daemons[i % n];
                d.alive = true;
                d.incarnation += 1;
                d.rec = self.store.get(&d.name).cloned().unwrap_or_default();
                d.rec.incarnation = format!("{}-{}", d.name, d.incarnation);
            }
        }
        Ok(())
    }

    fn commit(&mut self, changes: &[(bool, bool)]) {
        let k = self.commits.len();
        let parent = self.commits.last();
        let (mut digest, mut bad) = (Vec::new(), Vec::new());
        for (c, &(change, is_bad)) in changes.iter().take(self.daemons.len()).enumerate() {
            match parent.filter(|_| !change) {
                Some(p) => {
                    digest.push(p.digest[c].clone());
                    bad.push(p.bad[c]);
                }
                None => {
                    digest.push(format!("d{k}-{c}"));
                    bad.push(is_bad);
                }
            }
        }
        self.commits.push(Commit { sha: format!("s{k:02}"), digest, bad });
        let shas: Vec<&str> = self.commits.iter().map(|c| c.sha.as_str()).collect();
        self.lineage = Lineage::linear(&shas);
    }

    fn rules(&self, i: usize) -> Rules {
        let d = &self.daemons[i];
        let up = d.wave.checked_sub(1);
        Rules {
            cluster: d.name.clone(),
            wave: d.wave,
            soak: Duration::from_secs(self.fleet.soaks[d.wave as usize]),
            upstream: self.daemons.iter().filter(|p| Some(p.wave) == up).map(|p| p.name.clone()).collect(),
            upstream_wave: up,
            upstream_soak: Duration::from_secs(up.map_or(0, |w| self.fleet.soaks[w as usize])),
            requires_approval: false,
            approved: Vec::new(),
            paused: false,
            heartbeat_timeout: Duration::from_secs(TIMEOUT as u64),
        }
    }

    fn commit_of(&self, sha: &str) -> &Commit {
        self.commits.iter().find(|c| c.sha == sha).expect("a known commit")
    }

    fn pass(&mut self, i: usize) -> Result<(), String> {
        if !self.daemons[i].alive {
            return Ok(());
        }
        let rules = self.rules(i);
        let known: BTreeMap<String, Candidate> = self
            .commits
            .iter()
            .map(|c| {
                (
                    c.sha.clone(),
                    Candidate { revision: rev(&c.sha), sha: c.sha.clone(), digest: Ok(c.digest[i].clone()) },
                )
            })
            .collect();
        let tip = self.commits.last().map(|c| c.sha.clone());
        let d = &self.daemons[i];
        let health = match &d.rec.in_force {
            None => Health::Unknown("nothing in force".into()),
            Some(f) if self.commit_of(&f.sha).bad[i] => Health::Unhealthy(vec![format!("{} is bad here", f.sha)]),
            Some(_) => Health::Healthy,
        };
        let peers: BTreeMap<String, Peer> = rules
            .upstream
            .iter()
            .map(|p| (p.clone(), self.store.get(p).map_or(Peer::Missing, |r| Peer::Read(Box::new(r.clone())))))
            .collect();
        let now = t(self.now + d.skew);
        let input = Input {
            now,
            rules: &rules,
            tip: tip.as_ref().and_then(|s| known.get(s)),
            known: &known,
            lineage: &self.lineage,
            health: &health,
            peers: &peers,
        };
        let before = d.rec.clone();
        let mut rec = d.rec.clone();
        let out = gate::gate(&mut rec, &input);
        rec.heartbeat += 1;
        rec.time = Some(now);
        let name = d.name.clone();
        self.daemons[i].rec = rec.clone();
        self.store.insert(name.clone(), rec.clone());
        self.written.entry(name).or_default().push((self.now, rec));
        self.check_pass(i, &rules, &before, &out)?;
        self.check_halts()
    }

    /// (a) and (c) for one pass of daemon `i`.
    fn check_pass(&mut self, i: usize, rules: &Rules, before: &Record, out: &Output) -> Result<(), String> {
        let d = &self.daemons[i];
        let rec = &d.rec;
        // (c) Right after a rollback, last-known-good is in force.
        if out.steps.iter().any(|s| s.kind == StepKind::RolledBack) {
            self.rollbacks += 1;
            let on = rec.in_force.as_ref().map(|f| &f.sha);
            if on.is_none() || on != rec.last_known_good.as_ref().map(|g| &g.sha) {
                return Err(format!("{} rolled back to {on:?}, not to its last-known-good", d.name));
            }
        }
        let Action::Apply { sha, rollback: false } = &out.action else { return Ok(()) };
        let epoch = |r: &Record| r.in_force.as_ref().map(|f| f.epoch.clone());
        if epoch(before) == epoch(rec) {
            return Ok(());
        }
        self.adopted_by_wave[d.wave as usize] += 1;
        // A halt known to this daemon holds the revision back.
        if let Some(h) = rec.is_halted(sha) {
            return Err(format!("{} took {sha}, halted on {} (known to it)", d.name, h.cluster));
        }
        // (a) Every cluster of the previous wave wrote a run of healthy records under one
        // incarnation and epoch, holding this revision or a later one, that spans the soak in
        // true time (less twice the heartbeat timeout: a daemon only sees a write some time
        // after it happens); and its last write is healthy and recent. A cluster with nothing
        // in force yet may take what the previous wave holds alive and healthy now, soaked or
        // not: then only the last write is checked, and that it holds the revision or a later one.
        let need = rules.upstream_soak.as_secs() as i64 - 2 * TIMEOUT;
        let bootstrap = before.in_force.is_none();
        for p in &rules.upstream {
            let writes = self.written.get(p).map(Vec::as_slice).unwrap_or_default();
            let holds =
                writes.last().and_then(|(_, r)| r.in_force.as_ref()).is_some_and(|f| self.lineage.le(sha, &f.sha));
            if bootstrap && !holds {
                return Err(format!(
                    "{} took {sha} from nothing, but {p} does not hold it: {}",
                    d.name,
                    history(writes)
                ));
            }
            if !bootstrap && !soaked(writes, sha, &self.lineage, need) {
                return Err(format!(
                    "{} (wave {}) took {sha} at t={}, but {p} wrote no healthy run holding it for {}s (soak {}s): {}",
                    d.name,
                    d.wave,
                    self.now,
                    need,
                    rules.upstream_soak.as_secs(),
                    history(writes)
                ));
            }
            let last = writes.last().expect("a soaked peer wrote");
            if !last.1.healthy || self.now - last.0 > 2 * TIMEOUT {
                return Err(format!(
                    "{} (wave {}) took {sha} at t={}, but {p} last wrote at t={} (healthy: {}): {}",
                    d.name,
                    d.wave,
                    self.now,
                    last.0,
                    last.1.healthy,
                    history(writes)
                ));
            }
        }
        Ok(())
    }

    /// (b) A halted revision's content is never in force on a cluster of a later wave than
    /// the cluster that halted it. (A revision that leaves a cluster's policy as it was keeps
    /// the epoch; that is not the halted content reaching it.)
    fn check_halts(&self) -> Result<(), String> {
        for r in self.store.values() {
            for h in &r.halted {
                let Some(by) = self.daemons.iter().find(|d| d.name == h.cluster) else {
                    return Err(format!("{} halted by unknown cluster {}", h.sha, h.cluster));
                };
                for d in self.daemons.iter().filter(|d| d.wave > by.wave) {
                    if d.rec.in_force.as_ref().is_some_and(|f| f.epoch == h.sha) {
                        return Err(format!(
                            "{} (wave {}) holds {} as its epoch, halted by {} (wave {})",
                            d.name, d.wave, h.sha, by.name, by.wave
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A run of consecutive writes under one incarnation and one in-force epoch, all healthy, in
/// which a write holding `sha` or a later revision comes at least `need` s after the first.
fn soaked(writes: &[(i64, Record)], sha: &str, lineage: &Lineage, need: i64) -> bool {
    let mut run: Option<(i64, String, String)> = None;
    for (at, r) in writes {
        let Some(f) = r.in_force.as_ref().filter(|_| r.healthy) else {
            run = None;
            continue;
        };
        if run.as_ref().is_none_or(|(_, inc, ep)| *inc != r.incarnation || *ep != f.epoch) {
            run = Some((*at, r.incarnation.clone(), f.epoch.clone()));
        }
        let start = run.as_ref().map_or(*at, |x| x.0);
        if lineage.le(sha, &f.sha) && at - start >= need {
            return true;
        }
    }
    false
}

fn history(writes: &[(i64, Record)]) -> String {
    let rows: Vec<String> = writes
        .iter()
        .map(|(at, r)| {
            let f = r.in_force.as_ref().map(|f| format!("{}[{}]", f.sha, f.epoch)).unwrap_or_default();
            format!("t={at} {} {f} healthy={} {:?}", r.incarnation, r.healthy, r.phase)
        })
        .collect();
    rows.join("; ")
}

fn run(fleet: Fleet, events: &[Event]) -> Result<World, String> {
    let mut w = World::new(fleet);
    for (n, e) in events.iter().enumerate() {
        w.step(e).map_err(|m| format!("after event {n} ({e:?}): {m}"))?;
    }
    Ok(w)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn rollouts_keep_soak_halt_and_rollback_rules(fleet in fleet(), events in proptest::collection::vec(event(), 60..=120)) {
        if let Err(e) = run(fleet.clone(), &events) {
            return Err(TestCaseError::fail(format!("{fleet:?}\n{e}")));
        }
    }
}

/// The model itself: a good commit on a fleet that runs steadily reaches every wave, and a
/// commit bad on wave 1 is halted and rolled back there and never reaches wave 2.
#[test]
fn the_model_rolls_a_good_commit_through_and_halts_a_bad_one() {
    let fleet = Fleet { waves: vec![0, 1, 2, 1], skews: vec![300, -300, 120, -45], soaks: [200, 250, 100] };
    let mut events = vec![Event::Commit(vec![(true, false); 5])];
    events.extend((0..60).map(|k| Event::Tick(20, k)));
    // Bad on the second wave-1 cluster only.
    events.push(Event::Commit(vec![(true, false), (true, false), (true, false), (true, true), (true, false)]));
    events.extend((0..60).map(|k| Event::Tick(20, k)));
    let w = run(fleet, &events).unwrap();
    assert_eq!(w.adopted_by_wave, [2, 4, 1], "wave 2 takes only the good commit");
    assert_eq!(w.rollbacks, 1);
    let c3 = &w.daemons[3].rec;
    assert_eq!(c3.in_force.as_ref().map(|f| f.sha.as_str()), Some("s00"));
    assert!(c3.is_halted("s01").is_some());
    assert_eq!(w.daemons[2].rec.in_force.as_ref().map(|f| f.sha.as_str()), Some("s00"));
}
