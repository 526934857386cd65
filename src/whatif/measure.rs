//! Measuring a replay: cost and node-hours integrated over time, pods' waits, and the loop's
//! events counted. Pure bookkeeping over what the replay hands it, so it is tested directly.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Percentiles, Run, Sample};
use crate::capacity::report::LoopEvent;

/// The shortest time between two samples of the series the charts draw.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(60);
/// The most samples a series holds: a long trace is sampled less often.
pub const MAX_SAMPLES: u64 = 1440;

/// Time between samples for a trace of `length`: a minute, or whole minutes enough to keep a
/// series within [`MAX_SAMPLES`].
pub fn sample_every(length: Duration) -> u64 {
    let minutes = length.as_secs().div_ceil(MAX_SAMPLES * 60).max(1);
    minutes * SAMPLE_EVERY.as_secs()
}

/// A node that costs money while the replay advances.
#[derive(Debug, Clone, PartialEq)]
pub struct Billed {
    pub instance_type: String,
    /// `on-demand`, `spot`, or `static` for nodes present from the start.
    pub capacity_type: String,
    pub price: f64,
}

/// What the cluster looks like between two moments of the replay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub nodes: Vec<Billed>,
    pub pending_pods: usize,
}

/// Accumulates a [`Run`].
#[derive(Debug, Default)]
pub struct Meter {
    run: Run,
    /// Waits in seconds, bound or not.
    waits: Vec<f64>,
    /// Pods already counted against a limit.
    limited: BTreeSet<String>,
    /// Instances seen launched (a launch the cloud answers with an existing instance is not new).
    launched: BTreeSet<String>,
    /// Nodes disrupted since the last sample.
    disrupted_since: usize,
    /// The next sample's time, in seconds since the start.
    next_sample: u64,
    /// Seconds between samples.
    every: u64,
    node_seconds: f64,
    elapsed: f64,
}

impl Meter {
    /// A meter for a replay of `length` under `revision`.
    pub fn new(revision: &str, length: Duration) -> Meter {
        let run = Run { revision: revision.to_string(), ..Run::default() };
        Meter { run, every: sample_every(length), ..Meter::default() }
    }

    /// The cluster held `state` from `from` to `to` (seconds since the start): cost, node-hours
    /// and the samples falling in `[from, to)`.
    pub fn advance(&mut self, from: f64, to: f64, state: &State) {
        let span = (to - from).max(0.0);
        let hours = span / 3600.0;
        for n in &state.nodes {
            self.run.cost_usd += n.price * hours;
            *self.run.instance_types.entry(n.instance_type.clone()).or_default() += hours;
            *self.run.capacity_types.entry(n.capacity_type.clone()).or_default() += hours;
        }
        self.node_seconds += state.nodes.len() as f64 * span;
        self.elapsed += span;
        self.run.nodes_peak = self.run.nodes_peak.max(state.nodes.len());
        while (self.next_sample as f64) < to || (span == 0.0 && self.next_sample as f64 == from) {
            self.run.series.push(Sample {
                t: self.next_sample,
                nodes: state.nodes.len(),
                cost_per_hour: state.nodes.iter().fold(0.0, |sum, n| sum + n.price),
                pending_pods: state.pending_pods,
                disruptions: std::mem::take(&mut self.disrupted_since),
            });
            self.next_sample += self.every;
        }
    }

    /// The capacity loop's events of one pass.
    pub fn events(&mut self, events: &[LoopEvent]) {
        for e in events {
            match e.event.as_str() {
                "launch" => {
                    let id = e.detail["instance"].as_str().unwrap_or_default();
                    if self.launched.insert(id.to_string()) {
                        self.run.launches += 1;
                    }
                }
                "cordon" => {
                    let reason = e.detail["reason"].as_str().unwrap_or("unknown").to_string();
                    *self.run.disruptions.entry(reason).or_default() += 1;
                    self.disrupted_since += 1;
                }
                "unschedulable" => {
                    let reason = e.detail["reason"].as_str().unwrap_or_default();
                    let pod = e.detail["pod"].as_str().unwrap_or_default();
                    if reason.contains("limit") && self.limited.insert(pod.to_string()) {
                        self.run.limits_hit += 1;
                    }
                }
                _ => {}
            }
        }
    }

    /// A pod waited `seconds` for a node and got one (`bound`) or did not.
    pub fn wait(&mut self, seconds: f64, bound: bool) {
        self.waits.push(seconds.max(0.0));
        if bound {
            self.run.pods_scheduled += 1;
        } else {
            self.run.pods_never_scheduled += 1;
        }
    }

    pub fn interrupted(&mut self, instances: usize) {
        self.run.interruptions += instances;
    }

    /// The run, with `evicted` pods evicted by drains.
    pub fn finish(mut self, evicted: u64) -> Run {
        self.run.evicted_pods = evicted;
        if self.elapsed > 0.0 {
            self.run.nodes_avg = self.node_seconds / self.elapsed;
            self.run.cost_per_hour = self.run.cost_usd / (self.elapsed / 3600.0);
        }
        self.run.pending = percentiles(&mut self.waits);
        self.run
    }
}

/// Nearest-rank percentiles; zeros when there is no value.
pub fn percentiles(values: &mut [f64]) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    values.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let i = ((p / 100.0) * values.len() as f64).ceil() as usize;
        values[i.clamp(1, values.len()) - 1]
    };
    Percentiles { p50: rank(50.0), p95: rank(95.0), p99: rank(99.0), max: values[values.len() - 1] }
}

/// Node-hours of each key, rounded for people.
pub fn rounded(hours: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    hours.iter().map(|(k, v)| (k.clone(), (v * 100.0).round() / 100.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(price: f64) -> Billed {
        Billed { instance_type: "m5.large".into(), capacity_type: "on-demand".into(), price }
    }

    #[test]
    fn cost_is_price_times_time_and_samples_fall_every_minute() {
        let mut m = Meter::new("r", Duration::from_secs(3600));
        let s = State { nodes: vec![node(0.096), node(0.096)], pending_pods: 3 };
        m.advance(0.0, 1800.0, &s);
        m.advance(1800.0, 3600.0, &State::default());
        let run = m.finish(0);
        assert!((run.cost_usd - 0.096).abs() < 1e-9, "{}", run.cost_usd);
        assert!((run.nodes_avg - 1.0).abs() < 1e-9);
        assert_eq!(run.nodes_peak, 2);
        assert_eq!(run.series.len(), 60);
        assert_eq!(run.series[29].nodes, 2);
        assert_eq!(run.series[30].nodes, 0);
        assert_eq!(run.series[0].pending_pods, 3);
    }

    #[test]
    fn a_long_trace_is_sampled_less_often() {
        assert_eq!(sample_every(Duration::from_secs(24 * 3600)), 60);
        assert_eq!(sample_every(Duration::from_secs(25 * 3600)), 120);
        assert!(744 * 3600 / sample_every(Duration::from_secs(744 * 3600)) <= MAX_SAMPLES);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = percentiles(&mut v);
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(percentiles(&mut []), Percentiles::default());
    }
}
