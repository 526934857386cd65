//! `capstan demo fleet`: the rollout story on three simulated clusters (dev, staging, prod), each
//! with its own simulated EC2 and Kubernetes, its own folder state store and its own rollout
//! driver — the code `capstan run` uses — on one virtual clock, following a real Git repository
//! made from the example fleet:
//!
//! 1. each cluster takes the initial policy as it starts: with nothing in force, a cluster takes
//!    what the wave before it runs healthily;
//! 2. a good commit rolls dev → staging → prod, each wave after the previous one's soak;
//! 3. a bad commit (a cluster cpu limit too low) leaves pods unserved on dev: dev halts it and
//!    rolls back; staging and prod never take it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::World;
use super::demo::{DemoError, Entry, START};
use crate::capacity::{CapacityLoop, DecisionLog, wall};
use crate::cloud::sim::SimCloud;
use crate::cluster::sim::SimCluster;
use crate::fleet::driver::Driver;
use crate::fleet::health::{self, Health, LoopView, StoreView};
use crate::fleet::peers::Stores;
use crate::fleet::record::Phase;
use crate::fleet::revisions::GitRevisions;
use crate::gitops::follow::Accepted;
use crate::gitops::{Follower, GitSource, SourceConfig};
use crate::kops::any::Store;
use crate::kops::reconcile::{Target, reconcile_once};
use crate::kops::s3::S3Options;

/// Time between rollout passes of each cluster.
const ROLLOUT_EVERY: Duration = Duration::from_secs(10);
/// A cluster with nothing pending, launching or draining is stepped this often.
const IDLE_STEP: Duration = Duration::from_secs(10);
/// The demo's soak per wave.
const SOAK_SECS: u64 = 600;

#[derive(Debug, Clone)]
pub struct Options {
    /// The example fleet to start from.
    pub repo: PathBuf,
    pub workload: PathBuf,
    /// Where the Git repository, the mirrors and the state stores go.
    pub state_dir: PathBuf,
}

/// One row of the closing table.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub cluster: String,
    pub wave: u32,
    pub in_force: Option<String>,
    pub last_known_good: Option<String>,
    pub state: String,
    pub halted: Vec<String>,
}

struct Member {
    name: String,
    world: World,
    follower: Follower<GitSource>,
    revisions: GitRevisions,
    driver: Driver,
    store: Arc<Store>,
    store_url: String,
    kops_name: String,
    lp: Option<CapacityLoop<SimCloud, SimCluster>>,
    in_force: Option<Arc<Accepted>>,
    store_view: Option<StoreView>,
    /// When its world and capacity loop next take a step.
    next_step: Duration,
}

struct Story {
    repo: git2::Repository,
    work: PathBuf,
    members: Vec<Member>,
    entries: Vec<Entry>,
    now: Duration,
    /// Short names of commits, for the text.
    commits: Vec<(String, String)>,
}

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> DemoError + '_ {
    move |e| DemoError::Setup(format!("{what}: {e}"))
}

/// Runs the story; the timeline and the closing table.
pub async fn run(opts: &Options) -> Result<(Vec<Entry>, Vec<Row>), (DemoError, Vec<Entry>)> {
    let mut story = match Story::new(opts).await {
        Ok(s) => s,
        Err(e) => return Err((e, Vec::new())),
    };
    match story.play(opts).await {
        Ok(()) => {
            let rows = story.rows();
            Ok((story.entries, rows))
        }
        Err(e) => Err((e, story.entries)),
    }
}

impl Story {
    async fn new(opts: &Options) -> Result<Story, DemoError> {
        let work = opts.state_dir.join("repository");
        copy_dir(&opts.repo, &work).map_err(setup("copying the example repository"))?;
        let fleet_path = work.join("fleet.yaml");
        let text = std::fs::read_to_string(&fleet_path).map_err(setup("reading fleet.yaml"))?;
        let mut fleet: crate::policy::capstan::Fleet = serde_yaml::from_str(&text).map_err(setup("fleet.yaml"))?;
        for c in &mut fleet.spec.clusters {
            c.state_store = format!("file://{}", opts.state_dir.join("stores").join(&c.name).display());
            std::fs::create_dir_all(opts.state_dir.join("stores").join(&c.name)).map_err(setup("state store"))?;
        }
        for w in &mut fleet.spec.waves {
            w.soak_time = crate::policy::duration::GoDuration::from_secs(SOAK_SECS);
        }
        write_yaml(&fleet_path, &fleet)?;
        let repo = git2::Repository::init(&work).map_err(setup("git init"))?;
        let mut story = Story {
            repo,
            work: work.clone(),
            members: Vec::new(),
            entries: Vec::new(),
            now: START,
            commits: Vec::new(),
        };
        story.commit(&format!("Initial policy; soak {SOAK_SECS}s per wave; the fleet's state stores are folders"))?;
        let stores = Arc::new(Stores::new(S3Options::default()));
        for c in &fleet.spec.clusters {
            story.members.push(member(opts, c, &work, &stores).await?);
        }
        Ok(story)
    }

    fn note(&mut self, cluster: Option<&str>, event: &str, message: String, detail: Value) {
        let t = (self.now - START).as_secs_f64();
        let message = match cluster {
            Some(c) => format!("{c:<8} {message}"),
            None => message,
        };
        let mut detail = detail;
        if let (Some(c), Value::Object(map)) = (cluster, &mut detail) {
            map.insert("cluster".into(), json!(c));
        }
        self.entries.push(Entry { t, event: event.into(), message, detail });
    }

    fn commit(&mut self, subject: &str) -> Result<String, DemoError> {
        let sha = commit_all(&self.repo, subject).map_err(setup("committing"))?;
        let short = sha[..12].to_string();
        self.commits.push((sha.clone(), subject.to_string()));
        self.note(None, "commit", format!("commit {short} {subject}"), json!({"sha": sha, "subject": subject}));
        Ok(sha)
    }

    /// Fetches in every cluster at once, as the daemons' webhook or file watch would.
    async fn fetch(&mut self) {
        for m in &self.members {
            m.follower.sync_once().await;
        }
    }

    fn edit(&self, rel: &str, from: &str, to: &str) -> Result<(), DemoError> {
        let path = self.work.join(rel);
        let text = std::fs::read_to_string(&path).map_err(setup(rel))?;
        if !text.contains(from) {
            return Err(DemoError::Setup(format!("{rel} has no `{from}` to change")));
        }
        std::fs::write(&path, text.replacen(from, to, 1)).map_err(setup(rel))
    }

    async fn play(&mut self, opts: &Options) -> Result<(), DemoError> {
        self.fetch().await;
        let text = std::fs::read_to_string(&opts.workload).map_err(setup("reading the workload"))?;
        let workloads = crate::cluster::workload::parse(&opts.workload.display().to_string(), &text)
            .map_err(setup("loading the workload"))?;
        for m in &self.members {
            m.world.cluster.apply(workloads.clone());
            m.world.cluster.scale("default", "inflate", 4).map_err(setup("scaling"))?;
        }
        self.note(None, "scale", "inflate at 4 replicas in every cluster".into(), json!({"replicas": 4}));
        self.until(Duration::from_secs(900), |s| s.all_on(0) && s.all_healthy()).await?;

        self.edit("base/policy.yaml", "minNodeLifetime: 10m", "minNodeLifetime: 5m")?;
        let good = self.commit("Consolidate nodes after 5 minutes instead of 10")?;
        self.fetch().await;
        self.until(Duration::from_secs(3600), |s| s.all_on_sha(&good) && s.all_healthy()).await?;

        self.edit("base/nodepools/default.yaml", "cpu: \"200\"", "cpu: \"4\"")?;
        self.edit("base/nodepools/arm64.yaml", "cpu: \"64\"", "cpu: \"4\"")?;
        let bad = self.commit("Cap the default and arm64 NodePools at 4 cpu")?;
        self.fetch().await;
        self.until(Duration::from_secs(120), |s| s.member("dev").in_force_sha() == Some(bad.clone())).await?;
        self.member("dev").world.cluster.scale("default", "inflate", 12).map_err(setup("scaling"))?;
        self.note(Some("dev"), "scale", "inflate scaled 4 → 12".into(), json!({"replicas": 12}));
        self.until(Duration::from_secs(1800), |s| {
            let dev = s.member("dev");
            dev.driver.record().phase == Phase::RolledBack && dev.world.cluster.running("default", "inflate") >= 12
        })
        .await?;
        self.until(Duration::from_secs(120), |_| false).await.ok();
        for name in ["staging", "prod"] {
            if self.member(name).in_force_sha() == Some(bad.clone()) {
                return Err(DemoError::Incomplete(format!("{name} took the halted revision")));
            }
        }
        Ok(())
    }

    fn member(&self, name: &str) -> &Member {
        self.members.iter().find(|m| m.name == name).expect("the demo's clusters")
    }

    fn all_on(&self, commit: usize) -> bool {
        let sha = &self.commits[commit].0;
        self.members.iter().all(|m| m.in_force_sha().as_ref() == Some(sha))
    }

    fn all_on_sha(&self, sha: &str) -> bool {
        self.members.iter().all(|m| m.in_force_sha().as_deref() == Some(sha))
    }

    fn all_healthy(&self) -> bool {
        self.members.iter().all(|m| m.driver.record().phase == Phase::Healthy)
    }

    /// Steps the worlds until `done` or `limit`: each world every second while it is busy, else
    /// every 10 s; the rollout of every cluster every 10 s.
    async fn until(&mut self, limit: Duration, done: impl Fn(&Story) -> bool) -> Result<(), DemoError> {
        let end = self.now + limit;
        let mut next_rollout = self.now;
        loop {
            for i in 0..self.members.len() {
                if self.members[i].next_step <= self.now {
                    self.step_world(i).await;
                    let m = &mut self.members[i];
                    m.next_step = self.now + if m.busy() { Duration::from_secs(1) } else { IDLE_STEP };
                }
            }
            if self.now >= next_rollout {
                for i in 0..self.members.len() {
                    self.rollout(i).await;
                }
                next_rollout = self.now + ROLLOUT_EVERY;
            }
            if done(self) {
                return Ok(());
            }
            if self.now >= end {
                return Err(DemoError::Incomplete(self.describe()));
            }
            let next = self.members.iter().map(|m| m.next_step).min().unwrap_or(self.now).min(next_rollout);
            self.now = next.max(self.now + Duration::from_secs(1));
            for m in &self.members {
                m.world.clock.set(self.now);
            }
        }
    }

    fn describe(&self) -> String {
        let states: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{} {} ({})", m.name, m.driver.record().phase.label(), m.driver.record().reason))
            .collect();
        format!("the story did not reach its next step in time: {}", states.join("; "))
    }

    async fn step_world(&mut self, i: usize) {
        let m = &mut self.members[i];
        let Some(lp) = m.lp.as_mut() else { return };
        let events = m.world.step(lp).await;
        let name = m.name.clone();
        for e in events {
            if matches!(e.event.as_str(), "scale-up-decision" | "node-ready" | "disruption-decision") {
                self.note(Some(&name), &e.event, e.message, e.detail);
            }
        }
    }

    async fn rollout(&mut self, i: usize) {
        let now = wall(self.now);
        let m = &mut self.members[i];
        let tip = m.follower.accepted();
        let health = m.health(now);
        let base = m.revisions.source().base();
        let pass = m.driver.pass(now, tip.as_ref(), &health, &m.revisions, base).await;
        let name = m.name.clone();
        if let Some(l) = pass.apply {
            m.put_in_force(l.accepted).await;
        }
        for s in pass.output.steps {
            let detail = json!({"from": s.from, "to": s.to});
            self.note(Some(&name), s.kind.label(), s.message, detail);
        }
    }

    fn rows(&self) -> Vec<Row> {
        self.members
            .iter()
            .map(|m| {
                let r = m.driver.record();
                Row {
                    cluster: m.name.clone(),
                    wave: r.wave,
                    in_force: r.in_force.as_ref().map(|h| h.revision.clone()),
                    last_known_good: r.last_known_good.as_ref().map(|h| h.revision.clone()),
                    state: r.phase.label().to_string(),
                    halted: r.halted.iter().map(|h| h.revision.clone()).collect(),
                }
            })
            .collect()
    }
}

impl Member {
    fn in_force_sha(&self) -> Option<String> {
        self.in_force.as_ref().map(|a| a.revision.sha.clone())
    }

    fn busy(&self) -> bool {
        self.lp.as_ref().is_some_and(|l| {
            let s = l.status();
            s.pending_pods > 0 || !s.in_flight.is_empty() || !s.draining.is_empty()
        })
    }

    fn health(&self, now: chrono::DateTime<chrono::Utc>) -> Health {
        let capacity = self.lp.as_ref().map(|l| LoopView::of(l.status()));
        let policy = self.in_force.as_ref().map(|a| a.policy.as_ref());
        health::measure(
            self.driver.record(),
            policy,
            capacity.as_ref(),
            self.store_view.as_ref(),
            self.driver.write_error(),
            now,
        )
    }

    /// What the daemon's state-store task and capacity loop do when the revision in force
    /// changes.
    async fn put_in_force(&mut self, acc: Arc<Accepted>) {
        let revision = acc.revision.to_string();
        let policy = &acc.policy;
        if let Some(spec) = acc.snapshot.get(&format!("clusters/{}/cluster.yaml", policy.cluster))
            && let Err(e) = super::seed_state_store(self.store.as_ref(), spec, policy).await
        {
            tracing::warn!(error = %e, cluster = %self.name, "seeding the state store");
        }
        let target = Target::from_policy(policy, &revision);
        let result = reconcile_once(self.store.as_ref(), &target, &Default::default(), wall(self.world.now())).await;
        self.store_view = Some(match result {
            Ok(r) => StoreView { revision: revision.clone(), result: r.result.to_string(), error: None },
            Err(e) => StoreView { revision: revision.clone(), result: "error".into(), error: Some(e.to_string()) },
        });
        let rules = Arc::new(crate::rules::Rules::from_policy(policy, acc.revision.clone()));
        match self.lp.as_mut() {
            Some(l) => l.set_rules(rules),
            None => {
                let log = DecisionLog { store: self.reopen().await, kops_name: self.kops_name.clone() };
                self.lp = Some(self.world.capacity_loop(rules).with_decision_log(log));
            }
        }
        self.in_force = Some(acc);
    }

    async fn reopen(&self) -> Store {
        Store::open(&self.store_url, &S3Options::default()).await.unwrap_or(Store::Memory(Default::default()))
    }
}

async fn member(
    opts: &Options,
    c: &crate::policy::capstan::FleetCluster,
    work: &Path,
    stores: &Arc<Stores>,
) -> Result<Member, DemoError> {
    let mirror = opts.state_dir.join("mirrors").join(&c.name);
    let source = GitSource::new(SourceConfig::main_branch(&work.display().to_string(), mirror), None);
    let store = stores.of(c).await.map_err(DemoError::Setup)?;
    let incarnation = format!("demo-{}", c.name);
    let driver = Driver::start(&c.name, &c.kops_name, store.clone(), stores.clone(), &incarnation)
        .await
        .map_err(DemoError::Setup)?;
    let revisions = GitRevisions::new(source.clone(), &c.name);
    Ok(Member {
        name: c.name.clone(),
        world: World::new(&c.kops_name, START),
        follower: Follower::new(source, &c.name),
        revisions,
        driver,
        store,
        store_url: c.state_store.clone(),
        kops_name: c.kops_name.clone(),
        lp: None,
        in_force: None,
        store_view: None,
        next_step: START,
    })
}

fn write_yaml<T: Serialize>(path: &Path, value: &T) -> Result<(), DemoError> {
    let text = serde_yaml::to_string(value).map_err(setup("writing YAML"))?;
    std::fs::write(path, text).map_err(setup("writing YAML"))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Commits every file of the work tree on `main`.
fn commit_all(repo: &git2::Repository, subject: &str) -> Result<String, git2::Error> {
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let who = git2::Signature::new("capstan demo", "demo@capstan.invalid", &git2::Time::new(1_767_592_800, 0))?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let oid = repo.commit(Some("refs/heads/main"), &who, &who, subject, &tree, &parents)?;
    repo.set_head("refs/heads/main")?;
    Ok(oid.to_string())
}
