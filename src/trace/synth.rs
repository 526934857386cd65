//! Synthetic traces (`capstan trace synth`): realistic workload shapes drawn from a seed, for
//! `capstan simulate` when no recorded trace is at hand.
//!
//! ```text
//! SynthOptions ─► pattern (diurnal | burst | batch | steady) ─► workloads at the start
//!                                                              + events, sorted by time ─► Trace
//! ```
//!
//! `pods` bounds what the trace asks for at any moment: the replicas of its Deployments plus
//! the parallelism of the Jobs that may still run (created, and not yet done with every wave
//! of pods, with a margin for pods that waited for a node). DaemonSet pods, one per node, are
//! not counted. Each pattern reaches close to that peak once.
//!
//! The same options give the same trace: every draw comes from one `SmallRng` seeded with
//! `seed`, and nothing reads a clock.

use std::f64::consts::PI;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use thiserror::Error;

use super::{Action, Interrupt, POD_RUNTIME, Scale, TimedEvent, Trace};
use crate::policy::duration::GoDuration;

/// The largest peak a synthetic trace may ask for (a trace's `MAX_REPLICAS`).
pub const MAX_PODS: u32 = super::MAX_REPLICAS;
/// The longest synthetic trace, in hours: 31 days, as long as a trace may run.
pub const MAX_HOURS: u32 = (super::MAX_DURATION_SECS / 3600) as u32;
/// How often the autoscaler of a Deployment (an HPA) re-evaluates its replicas.
pub const TICK_SECS: u64 = 300;
/// The taint that keeps pods off spot nodes unless they tolerate it, as the example fleet's
/// spot NodePool writes it. Batch pods and queue workers tolerate it.
pub const SPOT_TAINT: &str = "example.com/spot";
/// How much longer than its ideal run a Job is counted against `pods`: the time its pods may
/// wait for a node.
const JOB_MARGIN_SECS: u64 = 15 * 60;
const HOUR: u64 = 3600;
const MINUTE: u64 = 60;

/// The shape of a synthetic trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pattern {
    /// Web Deployments following a weekday curve (low at night, peak mid-afternoon) with a
    /// nightly batch Job.
    Diurnal,
    /// A steady base with a few sudden bursts of queue workers (×3–5 for 10–30 minutes).
    Burst,
    /// Jobs of different sizes and runtimes arriving through the period, little steady load.
    Batch,
    /// Constant replicas with small noise.
    Steady,
}

impl Pattern {
    /// The name used on the command line and in the trace's name.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Diurnal => "diurnal",
            Pattern::Burst => "burst",
            Pattern::Batch => "batch",
            Pattern::Steady => "steady",
        }
    }
}

/// What to synthesize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthOptions {
    pub pattern: Pattern,
    /// The peak number of pods the trace asks for (see the module documentation).
    pub pods: u32,
    /// The trace's length.
    pub hours: u32,
    /// Seeds every random draw: the same seed gives the same trace.
    pub seed: u64,
}

/// Options that do not make a trace.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SynthError {
    /// A peak of no pods, or more than one workload may ask for.
    #[error("--pods {0} is out of range: give the peak number of pods, from 1 to {MAX_PODS}")]
    Pods(u32),
    /// An empty trace, or one longer than a trace may run.
    #[error("--hours {0} is out of range: give the trace's length in hours, from 1 to {MAX_HOURS} (31 days)")]
    Hours(u32),
}

/// A synthetic trace of `opts.pattern`.
pub fn synth(opts: &SynthOptions) -> Result<Trace, SynthError> {
    if opts.pods == 0 || opts.pods > MAX_PODS {
        return Err(SynthError::Pods(opts.pods));
    }
    if opts.hours == 0 || opts.hours > MAX_HOURS {
        return Err(SynthError::Hours(opts.hours));
    }
    let mut b = Builder {
        rng: SmallRng::seed_from_u64(opts.seed),
        pods: opts.pods,
        length: u64::from(opts.hours) * HOUR,
        workloads: Vec::new(),
        events: Vec::new(),
        jobs: Vec::new(),
        made: 0,
    };
    let about = match opts.pattern {
        Pattern::Diurnal => diurnal(&mut b),
        Pattern::Burst => burst(&mut b),
        Pattern::Batch => batch(&mut b),
        Pattern::Steady => steady(&mut b),
    };
    b.workloads.push(daemon_set());
    // Stable: events of one moment keep the order they were made in.
    b.events.sort_by_key(|e| e.at.duration());
    let mut trace = Trace::new(opts.pattern.name(), duration(b.length));
    trace.metadata.description = Some(format!(
        "{about}. Made by: capstan trace synth --pattern {} --pods {} --hours {} --seed {}",
        opts.pattern.name(),
        opts.pods,
        opts.hours,
        opts.seed
    ));
    trace.spec.workloads = b.workloads;
    trace.spec.events = b.events;
    if opts.pattern == Pattern::Diurnal && b.length < 24 * HOUR {
        let at = crate::trace::DEFAULT_START + diurnal_start(b.length);
        trace.spec.start = chrono::DateTime::from_timestamp(at as i64, 0);
    }
    Ok(trace)
}

/// Where a diurnal trace starts, in seconds from Monday 00:00: a day from midnight, or a
/// shorter window around the afternoon peak.
fn diurnal_start(length: u64) -> u64 {
    if length >= 24 * HOUR { 0 } else { 15 * HOUR - length / 2 }
}

/// A duration as whole hours, minutes and seconds (`2m36s`), as a trace is written by hand.
fn duration(secs: u64) -> GoDuration {
    let (h, m, s) = (secs / HOUR, secs % HOUR / MINUTE, secs % MINUTE);
    let mut text = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            text.push_str(&format!("{n}{unit}"));
        }
    }
    if text.is_empty() {
        text.push_str("0s");
    }
    GoDuration::parse(&text).expect("whole hours, minutes and seconds parse")
}

/// The state of a synthesis: the draws, what exists and what happens.
struct Builder {
    rng: SmallRng,
    pods: u32,
    /// The trace's length in seconds.
    length: u64,
    workloads: Vec<Value>,
    events: Vec<TimedEvent>,
    /// Jobs made so far: when they start, until when they are counted, and their parallelism.
    jobs: Vec<(u64, u64, u32)>,
    /// Jobs made so far, for their names.
    made: u32,
}

impl Builder {
    fn at(&mut self, secs: u64, action: Action) {
        self.events.push(TimedEvent { at: duration(secs), action });
    }

    /// Job pods counted against `pods` at `t`.
    fn job_pods(&self, t: u64) -> u32 {
        self.jobs.iter().filter(|(start, end, _)| *start <= t && t < *end).map(|j| j.2).sum()
    }

    /// Creates a Job of `shape` at `t`.
    fn job(&mut self, t: u64, shape: JobShape) {
        self.made += 1;
        let name = format!("{}-{:04}", shape.name, self.made);
        let end = t + u64::from(shape.waves) * shape.runtime + JOB_MARGIN_SECS;
        self.jobs.push((t, end, shape.parallelism));
        self.at(t, Action::Create(job(&name, &shape)));
    }

    /// Moves `app` to `replicas` at `t`, when that changes it.
    fn scale(&mut self, t: u64, app: &mut Running, replicas: u32) {
        if app.replicas != replicas {
            app.replicas = replicas;
            let action = Action::Scale(Scale {
                kind: "Deployment".to_string(),
                namespace: "default".to_string(),
                name: app.name.to_string(),
                replicas,
            });
            self.at(t, action);
        }
    }

    fn interrupt(&mut self, t: u64, count: u32) {
        let t = t.min(self.length);
        self.at(t, Action::Interrupt(Interrupt { count, instance_type: None, zone: None }));
    }
}

/// A pod's requests.
struct Size {
    cpu: &'static str,
    memory: &'static str,
}

const SMALL: Size = Size { cpu: "250m", memory: "512Mi" };
const MEDIUM: Size = Size { cpu: "500m", memory: "1Gi" };
const LARGE: Size = Size { cpu: "1", memory: "2Gi" };
const XLARGE: Size = Size { cpu: "2", memory: "4Gi" };

/// A Job a pattern creates: `waves` rounds of `parallelism` pods, each running `runtime` seconds.
struct JobShape {
    /// Its name before the number that makes it unique.
    name: &'static str,
    size: Size,
    parallelism: u32,
    waves: u32,
    runtime: u64,
    /// Its pods may not be disrupted (`karpenter.sh/do-not-disrupt`).
    pinned: bool,
}

/// A Deployment a pattern runs.
struct App {
    name: &'static str,
    size: Size,
    /// Its part of the peak.
    share: f64,
    /// Tolerates spot nodes.
    spot: bool,
    /// Spread evenly over zones (`DoNotSchedule`, skew 1).
    spread: bool,
    /// Its PodDisruptionBudget: `minAvailable` or `maxUnavailable` and the amount.
    pdb: Option<(&'static str, &'static str)>,
    /// Hours its daily peak comes after the others' (diurnal).
    lag: f64,
}

impl App {
    fn new(name: &'static str, size: Size, share: f64) -> App {
        App { name, size, share, spot: false, spread: false, pdb: None, lag: 0.0 }
    }

    fn spot(self) -> App {
        App { spot: true, ..self }
    }

    fn spread(self) -> App {
        App { spread: true, ..self }
    }

    fn pdb(self, field: &'static str, amount: &'static str) -> App {
        App { pdb: Some((field, amount)), ..self }
    }

    fn lag(self, hours: f64) -> App {
        App { lag: hours, ..self }
    }
}

/// A Deployment of the trace: its name, the most replicas it may have, and those it has.
struct Running {
    name: &'static str,
    cap: u32,
    replicas: u32,
}

/// Splits `total` by `shares`, largest remainder first; sums to `total`.
fn split(total: u32, shares: &[f64]) -> Vec<u32> {
    let sum: f64 = shares.iter().sum();
    let exact: Vec<f64> = shares.iter().map(|s| f64::from(total) * s / sum).collect();
    let mut out: Vec<u32> = exact.iter().map(|e| e.floor() as u32).collect();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let short = total - out.iter().sum::<u32>();
    for &i in order.iter().take(short as usize) {
        out[i] += 1;
    }
    out
}

/// Lowers the largest of `replicas` until they sum to at most `limit`.
fn fit(replicas: &mut [u32], limit: u32) {
    while replicas.iter().sum::<u32>() > limit {
        let max = replicas.iter_mut().max().expect("not empty, since the sum is above a limit");
        *max -= 1;
    }
}

/// Places `apps` by their shares of `budget`, leaving out those whose part rounds to nothing;
/// their objects (and PDBs) go into the trace's workloads, with `replicas(index, cap)` each.
fn place(b: &mut Builder, apps: &[App], budget: u32, replicas: impl Fn(usize, u32) -> u32) -> Vec<(usize, Running)> {
    let caps = split(budget, &apps.iter().map(|a| a.share).collect::<Vec<_>>());
    let mut out = Vec::new();
    for (i, (app, cap)) in apps.iter().zip(caps).enumerate() {
        if cap == 0 {
            continue;
        }
        let r = replicas(i, cap);
        b.workloads.push(deployment(app, r));
        if let Some((field, amount)) = app.pdb {
            b.workloads.push(pdb(app.name, field, amount));
        }
        out.push((i, Running { name: app.name, cap, replicas: r }));
    }
    out
}

/// Where the day is, 0 at night to 1 at the weekday afternoon peak; `t` counts from Monday 00:00.
fn day_curve(t: u64, lag: f64) -> f64 {
    let hour = (t % (24 * HOUR)) as f64 / HOUR as f64 - lag;
    // Lowest at 03:00, highest at 15:00.
    let wave = (1.0 - (2.0 * PI * (hour - 3.0) / 24.0).cos()) / 2.0;
    let weekend = (t / (24 * HOUR)) % 7 >= 5;
    (0.15 + 0.85 * wave.powf(1.3)) * if weekend { 0.6 } else { 1.0 }
}

fn diurnal(b: &mut Builder) -> String {
    let apps = [
        App::new("web", SMALL, 0.35).pdb("minAvailable", "50%"),
        App::new("api", MEDIUM, 0.30).pdb("maxUnavailable", "10%").lag(0.5),
        App::new("checkout", LARGE, 0.15).pdb("maxUnavailable", "1").spread().lag(-0.5),
        App::new("worker", MEDIUM, 0.20).spot().lag(1.0),
    ];
    let start = diurnal_start(b.length);
    let level = |t: u64, lag: f64, noise: f64, cap: u32| -> u32 {
        let want = (f64::from(cap) * day_curve(start + t, lag) * (1.0 + noise)).round();
        (want as u32).clamp(1, cap)
    };
    let mut noise = vec![0.0; apps.len()];
    let mut running = place(b, &apps, b.pods, |i, cap| level(0, apps[i].lag, 0.0, cap));
    let nightly = ((f64::from(b.pods) * 0.2).round() as u32).min(b.pods);
    let mut t = TICK_SECS;
    while t < b.length {
        if nightly > 0 && (start + t) % (24 * HOUR) == 2 * HOUR {
            let runtime = b.rng.random_range(30..=60) * MINUTE;
            let shape =
                JobShape { name: "nightly-etl", size: LARGE, parallelism: nightly, waves: 1, runtime, pinned: false };
            b.job(t, shape);
        }
        let mut want = Vec::new();
        for (i, app) in &running {
            noise[*i] = 0.7 * noise[*i] + b.rng.random_range(-0.05..0.05);
            want.push(level(t, apps[*i].lag, noise[*i], app.cap));
        }
        fit(&mut want, b.pods - b.job_pods(t).min(b.pods));
        for ((_, app), r) in running.iter_mut().zip(want) {
            b.scale(t, app, r);
        }
        t += TICK_SECS;
    }
    // Spot notices at the afternoon peak, and during the nightly batch.
    b.interrupt((15 * HOUR + 10 * MINUTE).saturating_sub(start), 1);
    if b.length >= 24 * HOUR {
        b.interrupt(2 * HOUR + 20 * MINUTE, 2);
    }
    if b.length < 24 * HOUR {
        format!("Web load around the weekday afternoon peak from {:02}:{:02}", start / HOUR, start % HOUR / MINUTE)
    } else {
        "Web load following a weekday curve from Monday 00:00, with a nightly batch Job at 02:00".to_string()
    }
}

fn burst(b: &mut Builder) -> String {
    let apps = [
        App::new("web", SMALL, 0.55).pdb("minAvailable", "50%"),
        App::new("api", MEDIUM, 0.45).pdb("maxUnavailable", "1").spread(),
    ];
    let count = 1 + b.length / (6 * HOUR);
    let segment = b.length / count;
    let mut bursts = Vec::new();
    for k in 0..count {
        let times: u32 = b.rng.random_range(3..=5);
        let len = b.rng.random_range(10..=30) * MINUTE;
        let room = segment.saturating_sub(len + 10 * MINUTE);
        let offset = if room > 0 { 5 * MINUTE + b.rng.random_range(0..room) / MINUTE * MINUTE } else { 0 };
        bursts.push((k * segment + offset, len.min(b.length - k * segment - offset), times));
    }
    let most = bursts.iter().map(|x| x.2).max().unwrap_or(3);
    // The base leaves room for the queue workers' largest burst.
    let others = b.pods * 2 / 5;
    let worker_cap = b.pods - others;
    let worker_base = ((f64::from(worker_cap) / f64::from(most)).round() as u32).max(1);
    let mut running = place(b, &apps, others, |_, cap| cap);
    let worker = App::new("queue-worker", MEDIUM, 1.0).spot();
    b.workloads.push(deployment(&worker, worker_base));
    let mut queue = Running { name: worker.name, cap: worker_cap, replicas: worker_base };
    for &(start, len, times) in &bursts {
        b.scale(start, &mut queue, (worker_base * times).min(worker_cap));
        b.scale(start + len, &mut queue, worker_base);
    }
    steady_noise(b, &mut running, 0.9);
    let first = bursts[0];
    b.interrupt(first.0 + first.1 / 2, 1);
    if bursts.len() > 1 {
        let last = bursts[bursts.len() - 1];
        b.interrupt(last.0 + last.1 / 2, 2);
    }
    format!("A steady web base with {count} burst(s) of queue workers (×3–5 for 10–30 minutes) and spot interruptions")
}

/// Every tick, each app may move one replica, staying between `low` of its cap and its cap.
fn steady_noise(b: &mut Builder, running: &mut [(usize, Running)], low: f64) {
    let mut t = TICK_SECS;
    while t < b.length {
        for (_, app) in running.iter_mut() {
            let floor = ((f64::from(app.cap) * low).ceil() as u32).max(1);
            if b.rng.random_bool(0.3) {
                let up = b.rng.random_bool(0.5);
                let r = if up { app.replicas + 1 } else { app.replicas.saturating_sub(1) };
                b.scale(t, app, r.clamp(floor, app.cap));
            }
        }
        t += TICK_SECS;
    }
}

fn steady(b: &mut Builder) -> String {
    let apps = [
        App::new("web", SMALL, 0.40).pdb("minAvailable", "50%"),
        App::new("api", MEDIUM, 0.35).pdb("maxUnavailable", "1").spread(),
        App::new("worker", LARGE, 0.25).spot(),
    ];
    let mut running = place(b, &apps, b.pods, |_, cap| cap);
    steady_noise(b, &mut running, 0.95);
    "Constant replicas with small noise".to_string()
}

fn batch(b: &mut Builder) -> String {
    let api = App::new("batch-api", SMALL, 1.0);
    let steady = if b.pods >= 4 { (b.pods / 20).max(1) } else { 0 };
    if steady > 0 {
        b.workloads.push(deployment(&api, steady));
    }
    let mut large_made = false;
    let mut t = b.rng.random_range(1..=10) * MINUTE;
    while t < b.length {
        let free = b.pods - steady - b.job_pods(t).min(b.pods - steady);
        let roll: f64 = b.rng.random();
        // One large Job takes what is left, once a third of the period has gone by.
        let large = roll >= 0.9 || (!large_made && t * 10 >= b.length * 3);
        if free > 0 {
            if large {
                large_made = true;
                let runtime = b.rng.random_range(30..=90) * MINUTE;
                b.job(t, JobShape { name: "train", size: XLARGE, parallelism: free, waves: 1, runtime, pinned: true });
            } else if roll < 0.55 {
                let (p, waves, runtime) =
                    (b.rng.random_range(1..=3), b.rng.random_range(1..=3), b.rng.random_range(5..=15) * MINUTE);
                b.job(
                    t,
                    JobShape { name: "etl", size: MEDIUM, parallelism: p.min(free), waves, runtime, pinned: false },
                );
            } else {
                let p = b.rng.random_range(1..=(b.pods / 10).max(1));
                let (waves, runtime) = (b.rng.random_range(1..=2), b.rng.random_range(15..=45) * MINUTE);
                b.job(
                    t,
                    JobShape { name: "report", size: LARGE, parallelism: p.min(free), waves, runtime, pinned: false },
                );
            }
        }
        // Arrivals about every 15 minutes (exponential gaps), at least a minute apart.
        let u: f64 = b.rng.random_range(f64::EPSILON..1.0);
        t += ((-u.ln() * 900.0) as u64).max(MINUTE);
    }
    "Jobs of different sizes and runtimes arriving about every 15 minutes, over a small steady API".to_string()
}

fn labels(name: &str) -> Value {
    json!({ "app": name })
}

fn container(name: &str, size: &Size) -> Value {
    json!({
        "name": name,
        "image": format!("registry.example.com/{name}:1.0"),
        "resources": { "requests": { "cpu": size.cpu, "memory": size.memory } },
    })
}

fn spot_toleration() -> Value {
    json!([{ "key": SPOT_TAINT, "operator": "Exists", "effect": "NoSchedule" }])
}

fn deployment(app: &App, replicas: u32) -> Value {
    let mut spec = json!({ "containers": [container(app.name, &app.size)] });
    if app.spot {
        spec["tolerations"] = spot_toleration();
    }
    if app.spread {
        spec["topologySpreadConstraints"] = json!([{
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": { "matchLabels": labels(app.name) },
        }]);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": app.name, "namespace": "default" },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": labels(app.name) },
            "template": { "metadata": { "labels": labels(app.name) }, "spec": spec },
        },
    })
}

fn pdb(name: &str, field: &str, amount: &str) -> Value {
    let amount: Value = amount.parse::<i64>().map_or_else(|_| json!(amount), |n| json!(n));
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": { "name": name, "namespace": "default" },
        "spec": { field: amount, "selector": { "matchLabels": labels(name) } },
    })
}

fn job(name: &str, shape: &JobShape) -> Value {
    let mut meta = json!({ "labels": labels(name) });
    if shape.pinned {
        meta["annotations"] = json!({ "karpenter.sh/do-not-disrupt": "true" });
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "default",
            "annotations": { POD_RUNTIME: duration(shape.runtime).as_str() },
        },
        "spec": {
            "parallelism": shape.parallelism,
            "completions": shape.parallelism * shape.waves,
            "backoffLimit": 3,
            "template": {
                "metadata": meta,
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container(shape.name, &shape.size)],
                    "tolerations": spot_toleration(),
                },
            },
        },
    })
}

/// A node agent on every node.
fn daemon_set() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": { "name": "node-exporter", "namespace": "default" },
        "spec": {
            "selector": { "matchLabels": labels("node-exporter") },
            "template": {
                "metadata": { "labels": labels("node-exporter") },
                "spec": {
                    "containers": [container("node-exporter", &Size { cpu: "100m", memory: "128Mi" })],
                    "tolerations": [{ "operator": "Exists" }],
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_as_by_hand() {
        assert_eq!(duration(156).as_str(), "2m36s");
        assert_eq!(duration(5).as_str(), "5s");
        assert_eq!(duration(24 * HOUR).as_str(), "24h");
        assert_eq!(duration(HOUR + 5).as_str(), "1h5s");
        assert_eq!(duration(0).as_str(), "0s");
    }

    #[test]
    fn a_split_sums_to_its_total_by_share() {
        assert_eq!(split(10, &[0.35, 0.30, 0.15, 0.20]), [4, 3, 1, 2]);
        assert_eq!(split(1, &[0.5, 0.5]).iter().sum::<u32>(), 1);
        assert_eq!(split(0, &[1.0]), [0]);
    }

    #[test]
    fn fit_lowers_the_largest_first() {
        let mut r = [5, 2, 4];
        fit(&mut r, 8);
        assert_eq!(r, [3, 2, 3]);
    }

    #[test]
    fn the_day_curve_is_low_at_night_and_peaks_in_the_afternoon() {
        let at = |h: u64| day_curve(h * HOUR, 0.0);
        assert!(at(3) < 0.2 && at(15) > 0.99, "{} {}", at(3), at(15));
        assert!(at(10) > at(3) && at(10) < at(15));
        let saturday = 5 * 24 * HOUR + 15 * HOUR;
        assert!(day_curve(saturday, 0.0) < 0.7);
    }
}
