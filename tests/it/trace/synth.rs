//! `capstan trace synth`: deterministic for a seed, within `pods` and `hours`, shaped like its
//! pattern, and every trace it writes loads back and replays.

use std::collections::BTreeMap;

use capstan::policy::duration::GoDuration;
use capstan::revision::Revision;
use capstan::trace::synth::{Pattern, SynthError, SynthOptions, synth};
use capstan::trace::{Action, Trace};
use proptest::prelude::*;
use serde_json::Value;

const PATTERNS: [Pattern; 4] = [Pattern::Diurnal, Pattern::Burst, Pattern::Batch, Pattern::Steady];
const HOUR: u64 = 3600;

fn make(pattern: Pattern, pods: u32, hours: u32, seed: u64) -> Trace {
    synth(&SynthOptions { pattern, pods, hours, seed }).unwrap()
}

fn secs(d: &GoDuration) -> u64 {
    d.duration().as_secs()
}

/// A Job's pods and how long its waves run, from its object.
fn job_run(job: &Value) -> (u32, u64) {
    let spec = &job["spec"];
    let parallelism = spec["parallelism"].as_u64().unwrap() as u32;
    let completions = spec["completions"].as_u64().unwrap() as u32;
    let runtime = job["metadata"]["annotations"][capstan::trace::POD_RUNTIME].as_str().unwrap();
    let runtime = GoDuration::parse(runtime).unwrap().duration().as_secs();
    (parallelism, u64::from(completions.div_ceil(parallelism)) * runtime)
}

/// Replicas asked for over time: (t, Deployment replicas summed, Job pods running), after
/// every moment an event happens. A Job runs from its creation for its waves' runtime.
fn timeline(trace: &Trace) -> Vec<(u64, u32, u32)> {
    type Jobs = Vec<(u64, u64, u32)>;
    fn add(t: u64, v: &Value, apps: &mut BTreeMap<String, u32>, jobs: &mut Jobs) {
        match v["kind"].as_str().unwrap() {
            "Deployment" | "StatefulSet" => {
                let name = v["metadata"]["name"].as_str().unwrap().to_string();
                apps.insert(name, v["spec"]["replicas"].as_u64().unwrap() as u32);
            }
            "Job" => {
                let (p, run) = job_run(v);
                jobs.push((t, t + run, p));
            }
            _ => {}
        }
    }
    let mut apps: BTreeMap<String, u32> = BTreeMap::new();
    let mut jobs: Jobs = Vec::new();
    for w in &trace.spec.workloads {
        add(0, w, &mut apps, &mut jobs);
    }
    let mut out = Vec::new();
    let events = &trace.spec.events;
    let mut i = 0;
    let mut t = 0;
    loop {
        while let Some(e) = events.get(i).filter(|e| secs(&e.at) == t) {
            match &e.action {
                Action::Scale(s) => {
                    assert!(apps.contains_key(&s.name), "scale of unknown {}", s.name);
                    apps.insert(s.name.clone(), s.replicas);
                }
                Action::Create(v) => add(t, v, &mut apps, &mut jobs),
                _ => {}
            }
            i += 1;
        }
        let running = jobs.iter().filter(|(start, end, _)| *start <= t && t < *end).map(|j| j.2).sum();
        out.push((t, apps.values().sum(), running));
        match events.get(i) {
            Some(e) => t = secs(&e.at),
            None => return out,
        }
    }
}

fn peak(trace: &Trace) -> u32 {
    timeline(trace).iter().map(|(_, apps, jobs)| apps + jobs).max().unwrap_or(0)
}

/// Deployment replicas summed at `t`.
fn apps_at(trace: &Trace, t: u64) -> u32 {
    timeline(trace).iter().take_while(|x| x.0 <= t).last().map_or(0, |x| x.1)
}

fn count(trace: &Trace, what: impl Fn(&Action) -> bool) -> usize {
    trace.spec.events.iter().filter(|e| what(&e.action)).count()
}

fn workload<'a>(trace: &'a Trace, kind: &str) -> Vec<&'a Value> {
    trace.spec.workloads.iter().filter(|w| w["kind"] == kind).collect()
}

#[test]
fn the_same_seed_writes_the_same_trace_and_another_seed_another() {
    for pattern in PATTERNS {
        let a = make(pattern, 120, 12, 7).to_yaml();
        assert_eq!(a, make(pattern, 120, 12, 7).to_yaml(), "{pattern:?}");
        assert_ne!(a, make(pattern, 120, 12, 8).to_yaml(), "{pattern:?}");
    }
}

#[test]
fn every_pattern_reaches_its_peak_of_pods_and_never_exceeds_it() {
    for pattern in PATTERNS {
        for (pods, hours) in [(200, 24), (37, 48), (1000, 24)] {
            let trace = make(pattern, pods, hours, 42);
            let peak = peak(&trace);
            assert!(peak <= pods, "{pattern:?} {pods} pods: peak {peak}");
            assert!(f64::from(peak) >= f64::from(pods) * 0.85, "{pattern:?} {pods} pods: peak only {peak}");
            assert_eq!(secs(&trace.spec.duration), u64::from(hours) * HOUR, "{pattern:?}");
            assert!(trace.spec.events.iter().all(|e| secs(&e.at) <= u64::from(hours) * HOUR));
        }
    }
}

#[test]
fn a_single_pod_is_a_peak_too() {
    for pattern in PATTERNS {
        for hours in [1, 3, 25] {
            let trace = make(pattern, 1, hours, 3);
            assert_eq!(peak(&trace), 1, "{pattern:?} {hours}h");
        }
    }
}

#[test]
fn out_of_range_options_are_refused_with_the_range() {
    let opts = |pods, hours| SynthOptions { pattern: Pattern::Steady, pods, hours, seed: 1 };
    assert_eq!(synth(&opts(0, 1)), Err(SynthError::Pods(0)));
    assert_eq!(synth(&opts(100_001, 1)), Err(SynthError::Pods(100_001)));
    assert_eq!(synth(&opts(1, 0)), Err(SynthError::Hours(0)));
    assert_eq!(synth(&opts(1, 745)), Err(SynthError::Hours(745)));
    let message = SynthError::Hours(745).to_string();
    assert!(message.contains("745") && message.contains("1 to 744"), "{message}");
    assert!(SynthError::Pods(0).to_string().contains("1 to 100000"));
    let longest = synth(&opts(100_000, 744)).unwrap();
    assert_eq!(secs(&longest.spec.duration), 744 * HOUR);
    assert!(peak(&longest) <= 100_000);
}

#[test]
fn a_diurnal_day_is_low_at_night_high_in_the_afternoon_with_a_nightly_batch() {
    let trace = make(Pattern::Diurnal, 200, 24, 42);
    let night = apps_at(&trace, 4 * HOUR);
    let afternoon = apps_at(&trace, 15 * HOUR);
    assert!(night * 3 < afternoon, "night {night}, afternoon {afternoon}");
    // An HPA for each Deployment, re-evaluated every 5 minutes.
    let scales = count(&trace, |a| matches!(a, Action::Scale(_)));
    assert!((400..=4 * 288).contains(&scales), "{scales} scale events");
    assert!(trace.spec.events.windows(2).all(|w| w[0].at.duration() <= w[1].at.duration()));
    let jobs: Vec<(u64, &Value)> = trace
        .spec
        .events
        .iter()
        .filter_map(|e| match &e.action {
            Action::Create(v) if v["kind"] == "Job" => Some((secs(&e.at), v)),
            _ => None,
        })
        .collect();
    assert_eq!(jobs.len(), 1, "one nightly Job a day");
    let (at, job) = jobs[0];
    assert_eq!(at, 2 * HOUR);
    let (parallelism, run) = job_run(job);
    assert_eq!(parallelism, 40, "a fifth of the peak");
    assert!((30 * 60..=60 * 60).contains(&run), "{run}s");
    assert!(count(&trace, |a| matches!(a, Action::Interrupt(_))) >= 1);
    assert_eq!(workload(&trace, "DaemonSet").len(), 1);
    assert!(workload(&trace, "PodDisruptionBudget").len() >= 2);
    let deployments = workload(&trace, "Deployment");
    let cpus: std::collections::BTreeSet<&str> = deployments
        .iter()
        .map(|d| d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"].as_str().unwrap())
        .collect();
    assert!(cpus.len() >= 3, "requests differ: {cpus:?}");
    assert!(deployments.iter().any(|d| d["spec"]["template"]["spec"]["topologySpreadConstraints"].is_array()));
}

#[test]
fn a_burst_multiplies_the_queue_workers_for_minutes_then_returns() {
    let trace = make(Pattern::Burst, 200, 24, 42);
    let worker: Vec<(u64, u32)> = trace
        .spec
        .events
        .iter()
        .filter_map(|e| match &e.action {
            Action::Scale(s) if s.name == "queue-worker" => Some((secs(&e.at), s.replicas)),
            _ => None,
        })
        .collect();
    let base = workload(&trace, "Deployment")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "queue-worker")
        .unwrap()["spec"]["replicas"]
        .as_u64()
        .unwrap() as u32;
    assert!(worker.len() >= 4 && worker.len().is_multiple_of(2), "{worker:?}");
    for pair in worker.chunks(2) {
        let ((up_at, up), (down_at, down)) = (pair[0], pair[1]);
        assert!(up >= base * 3 - 1 && up <= base * 5, "{base} → {up}");
        assert_eq!(down, base);
        assert!((10 * 60..=30 * 60).contains(&(down_at - up_at)), "{pair:?}");
    }
    assert!(count(&trace, |a| matches!(a, Action::Interrupt(_))) >= 1);
}

#[test]
fn batch_is_jobs_of_different_sizes_over_little_steady_load() {
    let trace = make(Pattern::Batch, 200, 24, 42);
    let jobs: Vec<(u32, u64)> = trace
        .spec
        .events
        .iter()
        .filter_map(|e| match &e.action {
            Action::Create(v) if v["kind"] == "Job" => Some(job_run(v)),
            _ => None,
        })
        .collect();
    assert!(jobs.len() >= 40, "{} jobs in a day", jobs.len());
    let sizes: std::collections::BTreeSet<u32> = jobs.iter().map(|j| j.0).collect();
    let runs: std::collections::BTreeSet<u64> = jobs.iter().map(|j| j.1).collect();
    assert!(sizes.len() >= 5 && runs.len() >= 5, "{sizes:?} {runs:?}");
    assert!(apps_at(&trace, 12 * HOUR) <= 20, "little steady load");
}

#[test]
fn steady_stays_within_a_few_percent() {
    let trace = make(Pattern::Steady, 200, 24, 42);
    let line = timeline(&trace);
    assert!(line.iter().all(|(_, apps, _)| (190..=200).contains(apps)), "{line:?}");
    assert!(count(&trace, |a| matches!(a, Action::Scale(_))) > 10, "some noise");
}

/// The example fleet's dev policy, as `capstan demo` loads it.
fn dev_policy() -> capstan::policy::EffectivePolicy {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet");
    let snapshot = capstan::policy::Snapshot::from_dir(&repo).unwrap();
    let validation = capstan::policy::validate(&snapshot, Some("dev")).unwrap();
    assert!(!validation.diagnostics.has_errors());
    validation.policies.into_iter().next().unwrap()
}

/// Pods the trace itself creates: Deployment replicas at the start and every increase, and
/// the first wave of every Job.
fn pods_created(trace: &Trace) -> usize {
    fn object(v: &Value, replicas: &mut BTreeMap<String, u32>) -> u32 {
        match v["kind"].as_str().unwrap() {
            "Deployment" => {
                let n = v["spec"]["replicas"].as_u64().unwrap() as u32;
                replicas.insert(v["metadata"]["name"].as_str().unwrap().to_string(), n);
                n
            }
            "Job" => job_run(v).0,
            _ => 0,
        }
    }
    let mut replicas = BTreeMap::new();
    let mut created: u32 = trace.spec.workloads.iter().map(|w| object(w, &mut replicas)).sum();
    for e in &trace.spec.events {
        created += match &e.action {
            Action::Create(v) => object(v, &mut replicas),
            Action::Scale(s) => s.replicas.saturating_sub(replicas.insert(s.name.clone(), s.replicas).unwrap_or(0)),
            _ => 0,
        };
    }
    created as usize
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_synthetic_trace_loads_back_and_replays(
        pattern in prop::sample::select(PATTERNS.to_vec()),
        pods in 1u32..=200,
        hours in 1u32..=4,
        seed in any::<u64>(),
    ) {
        let trace = make(pattern, pods, hours, seed);
        prop_assert!(peak(&trace) <= pods);
        let yaml = trace.to_yaml();
        let back = capstan::trace::parse("synth.yaml", yaml.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &trace);

        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let run = rt
            .block_on(capstan::whatif::replay::replay(&dev_policy(), Revision::local("synth"), &back))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(run.cost_usd >= 0.0 && run.cost_per_hour >= 0.0, "{:?}", run);
        prop_assert!(run.nodes_peak >= 1, "no node for {} pods", pods);
        let accounted = run.pods_scheduled + run.pods_never_scheduled;
        let created = pods_created(&back);
        prop_assert!(accounted >= created, "{} pods created, {} accounted for", created, accounted);
        prop_assert!(run.pods_scheduled >= 1);
    }
}
