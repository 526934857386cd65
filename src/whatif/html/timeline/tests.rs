use serde_json::{Value, json};

use super::page;
use crate::sim::demo::story::{DECISIONS, DemoStory, Point};
use crate::sim::demo::{DemoError, Entry, Summary};

fn entry(t: f64, event: &str, message: &str, detail: Value) -> Entry {
    Entry { t, event: event.into(), message: message.into(), detail }
}

fn launch(t: f64, n: u32, instance_type: &str) -> Entry {
    let detail = json!({
        "instance": format!("i-{n}"), "claim": format!("c-{n}"), "instanceType": instance_type,
        "capacityType": "on-demand", "pricePerHour": 0.5,
    });
    entry(t, "launch", &format!("launched {instance_type}"), detail)
}

fn point(t: f64, pending_pods: usize, running_pods: usize, nodes: usize) -> Point {
    Point { t, pending_pods, running_pods, nodes, cost_per_hour: nodes as f64 * 0.5 }
}

/// Two nodes launched for 16 pods, both Ready, then drained and terminated.
fn story() -> DemoStory {
    let rev = "main@sha1:0123456789abcdef";
    let mut entries = vec![
        entry(0.0, "initial", "0 nodes", json!({"revision": rev})),
        entry(5.0, "scale", "scaled 0 → 16", json!({"replicas": 16})),
        entry(6.0, "scale-up-decision", "16 pending pod(s)", json!({"pendingPods": 16})),
        launch(6.0, 1, "c6g.4xlarge"),
        launch(6.0, 2, "c6g.large"),
    ];
    for n in 1..=2 {
        let ids = json!({"node": format!("n-{n}"), "claim": format!("c-{n}")});
        entries.push(entry(21.0, "node-registered", "registered", ids.clone()));
        entries.push(entry(126.0, "node-ready", "Ready", ids));
    }
    entries.push(entry(190.0, "disruption-decision", "empty", json!({"reason": "empty"})));
    for n in 1..=2 {
        entries.push(entry(205.0, "cordon", "cordoned", json!({"node": format!("n-{n}")})));
    }
    for n in 1..=2 {
        let detail = json!({"node": format!("n-{n}"), "instance": format!("i-{n}"), "decidedUnder": rev});
        entries.push(entry(206.0, "terminate", "terminated", detail));
    }
    let samples = vec![
        point(0.0, 0, 0, 0),
        point(5.0, 16, 0, 0),
        point(6.0, 16, 0, 2),
        point(126.0, 0, 16, 2),
        point(206.0, 0, 0, 0),
    ];
    let summary = Summary { revision: rev.into(), nodes_launched: 2, cost_usd: 0.0556, ..Summary::default() };
    DemoStory { deployment: "inflate".into(), replicas: 16, entries, samples, outcome: Ok(summary) }
}

#[test]
fn every_event_is_a_row_of_the_table_with_its_revision() {
    let s = story();
    let html = page(&s);
    assert_eq!(html.matches("<tr data-event=").count(), s.entries.len());
    for e in &s.entries {
        let row = format!("<tr data-event=\"{}\" data-t=\"{}\">", e.event, e.t);
        assert!(html.contains(&row), "{row} missing");
    }
    assert_eq!(html.matches("<td class=\"revision\">main@sha1:0123456789abcdef</td>").count(), 3, "{html}");
}

#[test]
fn every_chart_marks_every_decision_and_the_nodes_chart_has_a_bar_per_instance() {
    let s = story();
    let html = page(&s);
    let decisions = s.entries.iter().filter(|e| DECISIONS.contains(&e.event.as_str())).count();
    assert_eq!(decisions, 8);
    assert_eq!(html.matches("<figure class=\"chart\"").count(), 3);
    assert_eq!(html.matches("<line class=\"marker\"").count(), 3 * decisions);
    for event in DECISIONS {
        let kind = s.entries.iter().filter(|e| e.event == event).count();
        assert_eq!(html.matches(&format!("data-marker=\"{event}\"")).count(), 3 * kind, "{event}");
    }
    assert_eq!(html.matches("<g class=\"bar\"").count(), 2);
    assert!(html.contains("data-instance=\"i-1\" data-instance-type=\"c6g.4xlarge\""), "{html}");
    for phase in ["launching", "registered", "ready", "draining"] {
        assert_eq!(html.matches(&format!("<rect class=\"span\" data-phase=\"{phase}\"")).count(), 2, "{phase}");
    }
    // 2 nodes at $0.50/h for 200 s.
    assert!(html.contains("cumulative cost $0.0556"), "{html}");
}

#[test]
fn text_is_escaped_and_nothing_is_loaded() {
    let mut s = story();
    s.entries.push(entry(207.0, "note", "<script>alert('x')</script> & \"more\"", json!({})));
    s.entries.push(launch(208.0, 3, "<b>odd\"type"));
    s.deployment = "in<flate".into();
    let html = page(&s);
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;"), "{html}");
    assert!(html.contains("data-instance-type=\"&lt;b&gt;odd&quot;type\""), "{html}");
    assert!(html.contains("&lt;b&gt;odd&quot;type · on-demand</text>"), "{html}");
    assert!(!html.contains("in<flate") && !html.contains("<b>"), "{html}");
    assert!(html.contains("content=\"default-src 'none'; style-src 'unsafe-inline'\""));
    for bad in ["<script", " src=", " href=", "@import", "url("] {
        assert!(!html.contains(bad), "{bad} in the page");
    }
}

#[test]
fn a_story_that_stopped_says_why_and_draws_what_happened() {
    let mut s = story();
    s.entries.truncate(6);
    s.samples.truncate(3);
    s.outcome = Err(DemoError::Incomplete("3 of 16 pods Running after 15 simulated minutes".into()));
    let html = page(&s);
    assert!(html.contains("The story stopped"), "{html}");
    assert!(html.contains("the story did not complete: 3 of 16 pods Running"), "{html}");
    assert_eq!(html.matches("<g class=\"bar\"").count(), 2);
    assert!(!html.contains("data-phase=\"ready\""), "no node got Ready: {html}");
}
