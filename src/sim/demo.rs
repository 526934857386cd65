//! `capstan demo`: the kOps + Karpenter proof of concept replayed on the simulated world. The
//! example repository's policy governs a simulated cluster; a file state store receives the
//! InstanceGroups and the decision log; `inflate` is scaled 0 → N → 0. The cluster is sampled
//! after every step for the [`story`]'s charts.

pub mod story;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use self::story::{DemoStory, Point, Samples};
use super::{SimLoop, World};
use crate::capacity::report::LoopEvent;
use crate::capacity::{DecisionLog, wall};
use crate::cluster::workload::{self, DeploymentSpec, Workload};
use crate::kops::any::Store;
use crate::kops::reconcile::{Target, reconcile_once};
use crate::kops::s3::S3Options;
use crate::policy;
use crate::revision::Revision;
use crate::rules::Rules;

/// Monday 2026-01-05 06:00 UTC: outside the example's business-hours budget window.
pub const START: Duration = Duration::from_secs(1_767_592_800);

#[derive(Debug, Clone)]
pub struct Options {
    pub repo: PathBuf,
    pub cluster: String,
    pub workload: PathBuf,
    pub deployment: String,
    pub replicas: u32,
    /// Folder for the `file://` state store.
    pub state_dir: PathBuf,
}

/// One line of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Seconds since the start.
    pub t: f64,
    pub event: String,
    pub message: String,
    pub detail: Value,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub revision: String,
    pub seconds_to_ready: Option<f64>,
    pub seconds_to_running: Option<f64>,
    pub seconds_to_scale_down: Option<f64>,
    pub nodes_launched: usize,
    pub instance_types: Vec<String>,
    pub cost_usd: f64,
    pub decisions_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Setup(String),
    #[error("the story did not complete: {0}")]
    Incomplete(String),
}

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> DemoError + '_ {
    move |e| DemoError::Setup(format!("{what}: {e}"))
}

/// `<branch>@sha1:<sha>` of the Git checkout holding `path`, or, outside one, a revision that is
/// no commit labelled `local@digest:<content digest>`.
pub fn local_revision(path: &Path, snapshot: &policy::Snapshot) -> Revision {
    let found = git2::Repository::discover(path).ok().and_then(|r| {
        let head = r.head().ok()?;
        let sha = head.peel_to_commit().ok()?.id().to_string();
        Some(Revision::commit(head.shorthand().unwrap_or("HEAD"), sha))
    });
    found.unwrap_or_else(|| Revision::local(format!("local@digest:{}", snapshot.digest())))
}

struct Recorder {
    entries: Vec<Entry>,
    samples: Samples,
}

impl Recorder {
    fn note(&mut self, world: &World, event: &str, message: String, detail: Value) {
        let t = (world.now() - START).as_secs_f64();
        self.entries.push(Entry { t, event: event.into(), message, detail });
    }

    fn take(&mut self, events: Vec<LoopEvent>) {
        for e in events {
            let t = (e.at - START).as_secs_f64();
            self.entries.push(Entry { t, event: e.event, message: e.message, detail: e.detail });
        }
    }

    fn first(&self, event: &str) -> Option<f64> {
        self.entries.iter().find(|e| e.event == event).map(|e| e.t)
    }

    /// Steps the world until `done` holds (true) or `limit` has passed (false), sampling it
    /// with the Running pods of `d` after every step; the loop's events join the timeline.
    async fn run_until(
        &mut self,
        world: &World,
        lp: &mut SimLoop,
        d: &DeploymentSpec,
        limit: Duration,
        done: impl Fn(&World) -> bool,
    ) -> bool {
        let mut events = Vec::new();
        let samples = &mut self.samples;
        let ok = world
            .run_until(lp, limit, &mut events, |w| {
                samples.record(Point::of(w, &d.namespace, &d.name));
                done(w)
            })
            .await;
        self.take(events);
        ok
    }
}

/// Runs the story; the timeline and samples are there even when it did not complete.
pub async fn run(opts: &Options) -> DemoStory {
    let mut rec = Recorder { entries: Vec::new(), samples: Samples::default() };
    let outcome = story(opts, &mut rec).await;
    DemoStory {
        deployment: opts.deployment.clone(),
        replicas: opts.replicas,
        entries: rec.entries,
        samples: rec.samples.finish(),
        outcome,
    }
}

async fn story(opts: &Options, rec: &mut Recorder) -> Result<Summary, DemoError> {
    let snapshot =
        policy::Snapshot::from_dir(&opts.repo).map_err(setup(&format!("reading {}", opts.repo.display())))?;
    let validation = policy::validate(&snapshot, Some(&opts.cluster)).map_err(setup("loading the policy"))?;
    if validation.diagnostics.has_errors() {
        let first = validation.diagnostics.sorted().into_iter().find(|d| d.is_error()).map(|d| d.to_string());
        return Err(DemoError::Setup(format!(
            "the repository has errors; run capstan validate ({})",
            first.unwrap_or_default()
        )));
    }
    let mut policy =
        validation.policies.into_iter().next().ok_or_else(|| DemoError::Setup("no cluster policy".into()))?;
    let revision = local_revision(&opts.repo, &snapshot);
    let world = World::new(&policy.kops_name, START);
    std::fs::create_dir_all(&opts.state_dir).map_err(setup("creating the state store folder"))?;
    let url = format!("file://{}", opts.state_dir.display());
    let store = Store::open(&url, &S3Options::default()).await.map_err(setup("opening the state store"))?;
    let copy = opts.repo.join("clusters").join(&policy.cluster).join("cluster.yaml");
    let spec = std::fs::read(&copy).map_err(setup(&format!("reading {}", copy.display())))?;
    super::seed_state_store(&store, &spec, &policy).await.map_err(setup("seeding the state store"))?;
    let report =
        reconcile_once(&store, &Target::from_policy(&policy, &revision.to_string()), &Default::default(), wall(START))
            .await
            .map_err(setup("reconciling the state store"))?;
    let igs: Vec<String> =
        report.outcome.applied.iter().map(|a| format!("{:?} InstanceGroup/{}", a.action, a.name)).collect();
    rec.note(
        &world,
        "state-store",
        format!("{} InstanceGroup change(s) applied to {url}/{} ({})", igs.len(), policy.kops_name, report.result),
        json!({"applied": igs, "revision": revision}),
    );
    let missing =
        crate::kops::userdata::resolve_user_data(&store, &mut policy).await.map_err(setup("reading nodeup scripts"))?;
    for m in missing {
        rec.note(&world, "note", m, json!({}));
    }

    let rules = Arc::new(Rules::from_policy(&policy, revision.clone()));
    let log = DecisionLog {
        store: Store::open(&url, &S3Options::default()).await.map_err(setup("opening the state store"))?,
        kops_name: policy.kops_name.clone(),
    };
    let mut lp = world.capacity_loop(rules.clone()).with_decision_log(log);
    let text =
        std::fs::read_to_string(&opts.workload).map_err(setup(&format!("reading {}", opts.workload.display())))?;
    let workloads =
        workload::parse(&opts.workload.display().to_string(), &text).map_err(setup("loading the workload"))?;
    let Some(Workload::Deployment(d)) =
        workloads.iter().find(|w| matches!(w, Workload::Deployment(d) if d.name == opts.deployment)).cloned()
    else {
        return Err(DemoError::Setup(format!("{} has no Deployment {}", opts.workload.display(), opts.deployment)));
    };
    world.cluster.apply(workloads);
    // The story starts from zero whatever the workload file says.
    world.cluster.scale(&d.namespace, &d.name, 0).map_err(setup("scaling"))?;
    let pools: Vec<&str> = rules.pools.iter().map(|p| p.name.as_str()).collect();
    rec.note(
        &world,
        "initial",
        format!(
            "0 nodes; Deployment {}/{} at 0 replicas; NodePools {} (policy {revision})",
            d.namespace,
            d.name,
            pools.join(", ")
        ),
        json!({"nodes": 0, "nodePools": pools, "revision": revision}),
    );
    rec.run_until(&world, &mut lp, &d, Duration::from_secs(5), |_| false).await;

    let cpu = d.template.requests.cpu as f64 / 1000.0;
    world.cluster.scale(&d.namespace, &d.name, opts.replicas).map_err(setup("scaling"))?;
    rec.note(
        &world,
        "scale",
        format!("Deployment {} scaled 0 → {} ({} pods × {cpu} cpu)", d.name, opts.replicas, opts.replicas),
        json!({"replicas": opts.replicas}),
    );
    let scaled_up = world.now();
    let n = opts.replicas as usize;
    let ok = rec
        .run_until(&world, &mut lp, &d, Duration::from_secs(900), |w| w.cluster.running(&d.namespace, &d.name) >= n)
        .await;
    if !ok {
        return Err(DemoError::Incomplete(format!(
            "{} of {n} pods Running after 15 simulated minutes",
            world.cluster.running(&d.namespace, &d.name)
        )));
    }
    let running_after = (world.now() - scaled_up).as_secs_f64();
    rec.note(
        &world,
        "pods-running",
        format!("{n}/{n} pods of {} Running", d.name),
        json!({"running": n, "secondsAfterScale": running_after}),
    );

    rec.run_until(&world, &mut lp, &d, Duration::from_secs(30), |_| false).await;
    world.cluster.scale(&d.namespace, &d.name, 0).map_err(setup("scaling"))?;
    rec.note(&world, "scale", format!("Deployment {} scaled {n} → 0", d.name), json!({"replicas": 0}));
    let scaled_down = world.now();
    let ok = rec.run_until(&world, &mut lp, &d, Duration::from_secs(1200), |w| w.nodes() == 0).await;
    if !ok {
        return Err(DemoError::Incomplete(format!(
            "{} node(s) still running 20 simulated minutes after scale-down",
            world.nodes()
        )));
    }
    let down_after = (world.now() - scaled_down).as_secs_f64();
    rec.note(&world, "scaled-down", format!("no nodes left, {down_after:.0}s after scaling to 0"), json!({"nodes": 0}));
    Ok(summary(
        rec,
        &revision.to_string(),
        scaled_up,
        running_after,
        down_after,
        &format!("{url}/{}", crate::kops::decisions::prefix(&policy.kops_name)),
    ))
}

fn summary(
    rec: &Recorder,
    revision: &str,
    scaled_up: Duration,
    running: f64,
    down: f64,
    decisions_at: &str,
) -> Summary {
    let up = (scaled_up - START).as_secs_f64();
    let launches: Vec<&Entry> = rec.entries.iter().filter(|e| e.event == "launch").collect();
    Summary {
        revision: revision.to_string(),
        seconds_to_ready: rec.first("node-ready").map(|t| t - up),
        seconds_to_running: Some(running),
        seconds_to_scale_down: Some(down),
        nodes_launched: launches.len(),
        instance_types: launches.iter().filter_map(|l| l.detail["instanceType"].as_str().map(String::from)).collect(),
        cost_usd: rec.samples.cost_usd(),
        decisions_at: decisions_at.to_string(),
    }
}
