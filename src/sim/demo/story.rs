//! The demo's story as data for people: the timeline, the cluster sampled after every step of
//! the world, and each node's life read back from the capacity loop's events.
//!
//! ```text
//! World::run_until ─ after each step ─► Samples::record ─► Vec<Point> ─┐
//! CapacityLoop events ─► Entry ─────────┬──────────────────────────────┴─► DemoStory ─► page
//!                                       └─► lives() ─► NodeLife (launch → ready → cordon → gone)
//! ```

use serde::Serialize;
use serde_json::Value;

use super::{DemoError, Entry, START, Summary};
use crate::sim::World;

/// The loop's decisions, as events of the timeline: what the demo's charts mark.
pub const DECISIONS: [&str; 5] = ["scale-up-decision", "launch", "disruption-decision", "cordon", "terminate"];

/// The cluster at one moment of the story.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Seconds since the start.
    pub t: f64,
    /// Pods waiting for a node.
    pub pending_pods: usize,
    /// Pods of the story's Deployment that are Running.
    pub running_pods: usize,
    /// Instances not terminated.
    pub nodes: usize,
    /// What those instances cost per hour, in USD.
    pub cost_per_hour: f64,
}

impl Point {
    /// The world now, with the Running pods of Deployment `namespace/name`.
    pub fn of(world: &World, namespace: &str, name: &str) -> Point {
        let live = world.cloud.current();
        Point {
            t: (world.now() - START).as_secs_f64(),
            pending_pods: world.cluster.waiting().len(),
            running_pods: world.cluster.running(namespace, name),
            nodes: live.len(),
            cost_per_hour: live.iter().map(|i| i.price).sum(),
        }
    }

    fn same(&self, other: &Point) -> bool {
        (self.pending_pods, self.running_pods, self.nodes) == (other.pending_pods, other.running_pods, other.nodes)
            && self.cost_per_hour == other.cost_per_hour
    }
}

/// The cluster over time: a point whenever it changed, each holding until the next.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    points: Vec<Point>,
    /// The last moment seen.
    end: f64,
}

impl Samples {
    pub fn record(&mut self, p: Point) {
        if self.points.last().is_none_or(|last| !last.same(&p)) {
            self.points.push(p);
        }
        self.end = self.end.max(p.t);
    }

    /// What the instances cost from the first point to the last moment seen, in USD.
    pub fn cost_usd(&self) -> f64 {
        cost_usd(&self.points, self.end)
    }

    /// The points, the last one repeated at the last moment seen so a chart runs to the end.
    pub fn finish(mut self) -> Vec<Point> {
        if let Some(&last) = self.points.last().filter(|p| p.t < self.end) {
            self.points.push(Point { t: self.end, ..last });
        }
        self.points
    }
}

/// What the instances of `points` cost until `end`, each price holding until the next point.
fn cost_usd(points: &[Point], end: f64) -> f64 {
    let ends = points.iter().skip(1).map(|p| p.t).chain([end]);
    points.iter().zip(ends).map(|(p, to)| p.cost_per_hour * (to - p.t).max(0.0) / 3600.0).sum()
}

/// Everything the demo tells, complete or not.
#[derive(Debug)]
pub struct DemoStory {
    /// The name of the Deployment scaled.
    pub deployment: String,
    pub replicas: u32,
    pub entries: Vec<Entry>,
    pub samples: Vec<Point>,
    /// The summary, or why the story stopped.
    pub outcome: Result<Summary, DemoError>,
}

impl DemoStory {
    /// Seconds from the start to the last thing that happened.
    pub fn seconds(&self) -> f64 {
        let last = |t: Option<f64>| t.unwrap_or(0.0);
        last(self.samples.last().map(|p| p.t)).max(last(self.entries.last().map(|e| e.t)))
    }

    /// What the instances cost over the story, in USD.
    pub fn cost_usd(&self) -> f64 {
        cost_usd(&self.samples, self.seconds())
    }

    /// Each launched instance's life, in launch order.
    pub fn lives(&self) -> Vec<NodeLife> {
        lives(&self.entries)
    }
}

/// One instance from its launch, as the timeline tells it; times in seconds since the start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeLife {
    pub instance: String,
    pub claim: String,
    /// The Node's name once it registered.
    pub node: Option<String>,
    pub instance_type: String,
    pub capacity_type: String,
    pub price_per_hour: f64,
    pub launched: f64,
    pub registered: Option<f64>,
    pub ready: Option<f64>,
    /// Cordoned for a disruption, draining from then on.
    pub cordoned: Option<f64>,
    /// Terminated.
    pub gone: Option<f64>,
}

impl Summary {
    /// The summary's lines for people, label and value, for a story of `replicas` pods.
    pub fn rows(&self, replicas: u32) -> Vec<(String, String)> {
        let (types, running) = (self.instance_types.join(", "), format!("{replicas}/{replicas} pods Running after"));
        [
            ("node Ready after scale-up", human(self.seconds_to_ready)),
            (running.as_str(), human(self.seconds_to_running)),
            ("nodes gone after scale to 0", human(self.seconds_to_scale_down)),
            ("nodes launched", format!("{} ({types})", self.nodes_launched)),
            ("cost of the run", format!("${:.4}", self.cost_usd)),
            ("decision log", self.decisions_at.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

fn text(detail: &Value, key: &str) -> String {
    detail[key].as_str().unwrap_or_default().to_string()
}

/// The lives of the instances `launch` events name (each once), from the events that follow:
/// `node-registered` and `node-ready` name the claim, `cordon` the node, `terminate` and
/// `registration-timeout` the instance.
pub fn lives(entries: &[Entry]) -> Vec<NodeLife> {
    let mut out: Vec<NodeLife> = Vec::new();
    for e in entries {
        let d = &e.detail;
        let claim = |l: &NodeLife| !l.claim.is_empty() && d["claim"].as_str() == Some(&l.claim);
        let node = |l: &NodeLife| l.node.is_some() && d["node"].as_str() == l.node.as_deref();
        let instance = |l: &NodeLife| d["instance"].as_str() == Some(&l.instance) || node(l);
        let set = |slot: &mut Option<f64>| *slot = Some(slot.unwrap_or(e.t));
        match e.event.as_str() {
            "launch" if !out.iter().any(|l| d["instance"].as_str() == Some(&l.instance)) => out.push(NodeLife {
                instance: text(d, "instance"),
                claim: text(d, "claim"),
                instance_type: text(d, "instanceType"),
                capacity_type: text(d, "capacityType"),
                price_per_hour: d["pricePerHour"].as_f64().unwrap_or(0.0),
                launched: e.t,
                ..NodeLife::default()
            }),
            "node-registered" | "node-ready" => {
                for l in out.iter_mut().filter(|l| claim(l)) {
                    l.node = Some(text(d, "node"));
                    set(if e.event == "node-ready" { &mut l.ready } else { &mut l.registered });
                }
            }
            "cordon" => out.iter_mut().filter(|l| node(l)).for_each(|l| set(&mut l.cordoned)),
            "terminate" | "registration-timeout" => {
                out.iter_mut().filter(|l| instance(l)).for_each(|l| set(&mut l.gone))
            }
            _ => {}
        }
    }
    out
}

/// `h:mm:ss` of `t` seconds.
pub fn clock(t: f64) -> String {
    let s = t.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `2m 01s`, `50s`, or `—` for nothing.
pub fn human(secs: Option<f64>) -> String {
    match secs {
        Some(s) if s >= 60.0 => format!("{}m {:02}s", (s / 60.0).floor() as u64, (s % 60.0).round() as u64),
        Some(s) => format!("{s:.0}s"),
        None => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn point(t: f64, nodes: usize, cost_per_hour: f64) -> Point {
        Point { t, nodes, cost_per_hour, ..Point::default() }
    }

    fn entry(t: f64, event: &str, detail: Value) -> Entry {
        Entry { t, event: event.into(), message: format!("{event} happened"), detail }
    }

    #[test]
    fn samples_keep_changes_and_cost_is_price_times_time() {
        let mut s = Samples::default();
        for t in 0..10 {
            s.record(point(f64::from(t), 0, 0.0));
        }
        for t in 10..370 {
            s.record(point(f64::from(t), 2, 0.6));
        }
        for t in 370..400 {
            s.record(point(f64::from(t), 0, 0.0));
        }
        assert!((s.cost_usd() - 0.06).abs() < 1e-9, "{}", s.cost_usd());
        let points = s.finish();
        let times: Vec<f64> = points.iter().map(|p| p.t).collect();
        assert_eq!(times, [0.0, 10.0, 370.0, 399.0]);
        assert_eq!(points[3].nodes, 0);
    }

    #[test]
    fn a_node_lives_from_launch_to_terminate() {
        let launch = json!({"instance": "i-1", "claim": "c-1", "instanceType": "m6g.large", "capacityType": "spot", "pricePerHour": 0.04});
        let entries = vec![
            entry(6.0, "launch", launch.clone()),
            entry(6.0, "launch", launch),
            entry(21.0, "node-registered", json!({"node": "n-1", "claim": "c-1"})),
            entry(126.0, "node-ready", json!({"node": "n-1", "claim": "c-1"})),
            entry(205.0, "cordon", json!({"node": "n-1", "reason": "empty"})),
            entry(206.0, "terminate", json!({"node": "n-1", "instance": "i-1"})),
            entry(7.0, "launch", json!({"instance": "i-2", "claim": "c-2"})),
        ];
        let lives = lives(&entries);
        assert_eq!(lives.len(), 2, "a launch answered with the same instance is one life");
        let l = &lives[0];
        assert_eq!((l.instance_type.as_str(), l.capacity_type.as_str(), l.price_per_hour), ("m6g.large", "spot", 0.04));
        assert_eq!((l.registered, l.ready, l.cordoned, l.gone), (Some(21.0), Some(126.0), Some(205.0), Some(206.0)));
        assert_eq!(l.node.as_deref(), Some("n-1"));
        assert_eq!((lives[1].ready, lives[1].gone), (None, None));
    }

    #[test]
    fn times_read_as_clocks_and_durations() {
        assert_eq!(clock(3726.0), "1:02:06");
        assert_eq!((human(Some(121.0)), human(Some(50.0)), human(None)), ("2m 01s".into(), "50s".into(), "—".into()));
    }
}
