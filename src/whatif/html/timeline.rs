//! `capstan demo --html`: the demo's story as one self-contained page, on the conventions and
//! the charts of simulate's report. Each node's life is a bar (launching → registered → Ready →
//! draining, ending when it is gone); pending and running pods and the cost per hour are lines;
//! the loop's decisions are dashed markers across every chart; the timeline is a table below.
//!
//! Bars are `<g class="bar" data-instance=…>` and markers `<line class="marker" data-marker=…>`,
//! so what the page shows can be counted against the timeline.

use std::fmt::Write;

use plotters::style::RGBColor;

use super::super::chart::{self, BASE, Frame, GREEN, GREY, HEAD, Marker, ORANGE, PURPLE, Row, SKY, Series, Span};
use super::{esc, figure, head};
use crate::sim::demo::story::{DECISIONS, DemoStory, NodeLife, Point, clock, human};

/// Light blue, for a node not yet registered.
const PALE: RGBColor = RGBColor(0xA6, 0xCE, 0xE3);

/// The phases of a node's bar: `data-phase`, what the legend says, colour.
const PHASES: [(&str, &str, RGBColor); 4] = [
    ("launching", "launching", PALE),
    ("registered", "registered, not Ready", SKY),
    ("ready", "Ready", BASE),
    ("draining", "cordoned, draining", HEAD),
];

/// Width of the page's charts, in pixels (the page scales them).
const WIDE: u32 = 1120;

/// A decision's colour on the charts.
fn colour(event: &str) -> RGBColor {
    match event {
        "scale-up-decision" => GREEN,
        "launch" => ORANGE,
        "disruption-decision" => PURPLE,
        "cordon" => HEAD,
        _ => GREY,
    }
}

const STYLE: &str = "
.charts.wide { grid-template-columns: 1fr; }
.legend { flex-wrap: wrap; font-size: 0.9em; }
.swatch.marker { height: 0; border-top: 3px dashed; }
table.events td.n, table.events td.event { white-space: nowrap; }
td.revision { font-family: ui-monospace, monospace; font-size: 0.85em; }
";

/// A colour key: a dashed line like a marker's, or a filled box.
fn swatch(colour: RGBColor, dashed: bool) -> String {
    let (class, property) = if dashed { ("swatch marker", "border-color") } else { ("swatch", "background") };
    format!("<span class=\"{class}\" style=\"{property}: {}\"></span>", chart::hex(colour))
}

/// A legend: per item its `data-legend`, text and colour (`data-colour`, as the chart draws it).
fn legend(items: &[(&str, &str, RGBColor)], dashed: bool) -> String {
    let mut out = String::from("<ul class=\"legend\">\n");
    for &(key, text, colour) in items {
        let (c, swatch) = (chart::hex(colour), swatch(colour, dashed));
        let _ = writeln!(out, "<li data-legend=\"{key}\" data-colour=\"{c}\">{swatch}{}</li>", esc(text));
    }
    out + "</ul>\n"
}

/// A marker per decision of the timeline.
fn markers(story: &DemoStory) -> Vec<Marker> {
    let decisions = story.entries.iter().filter(|e| DECISIONS.contains(&e.event.as_str()));
    decisions
        .map(|e| Marker {
            t: e.t,
            kind: e.event.clone(),
            colour: colour(&e.event),
            title: format!("{} {}: {}", clock(e.t), e.event, e.message),
        })
        .collect()
}

/// A node's bar, its phases running to the next one and ending when it is gone (or at `end`).
fn row(l: &NodeLife, end: f64) -> Row {
    let starts = [Some(l.launched), l.registered, l.ready, l.cordoned];
    let phases: Vec<(f64, &'static str, RGBColor)> =
        starts.iter().zip(PHASES).filter_map(|(t, (phase, _, c))| t.map(|t| (t, phase, c))).collect();
    let stop = l.gone.unwrap_or(end);
    let spans = phases
        .iter()
        .enumerate()
        .map(|(i, &(from, phase, colour))| {
            let to = phases.get(i + 1).map_or(stop, |next| next.0).min(stop);
            Span { from, to: to.max(from), phase, colour }
        })
        .collect();
    Row {
        label: vec![
            format!("{} · {}", l.instance_type, l.capacity_type),
            format!("${:.4}/h · {}", l.price_per_hour, l.instance),
        ],
        data: vec![
            ("instance", l.instance.clone()),
            ("instance-type", l.instance_type.clone()),
            ("capacity-type", l.capacity_type.clone()),
            ("price-per-hour", l.price_per_hour.to_string()),
            ("gone", l.gone.map_or(String::new(), |t| t.to_string())),
        ],
        spans,
    }
}

fn charts(out: &mut String, story: &DemoStory, cost: f64) {
    // A little room after the end, so what happens last is not on the frame.
    let (end, seconds) = (story.seconds(), story.seconds() * 1.04);
    let marks = markers(story);
    let lives = story.lives();
    let rows: Vec<Row> = lives.iter().map(|l| row(l, end)).collect();
    let gantt = Frame { size: (WIDE, 70 + 44 * rows.len().max(1) as u32), seconds };
    let line = Frame { size: (WIDE, 240), seconds };
    let series = |value: fn(&Point) -> f64, colour| Series {
        points: chart::steps(story.samples.iter().map(|p| (p.t, value(p)))),
        colour,
        width: 2,
    };
    let running = format!("pods of {} Running", story.deployment);
    let pods = [("pending", "pods waiting for a node", HEAD), ("running", running.as_str(), GREEN)];
    let cost_line = [("cost-per-hour", "instances not terminated, at their price", BASE)];
    let pod_lines = [series(|p| p.pending_pods as f64, pods[0].2), series(|p| p.running_pods as f64, pods[1].2)];
    out.push_str("<div class=\"charts wide\">\n");
    let figures = [
        (
            "nodes",
            "Nodes: one bar per instance".to_string(),
            legend(&PHASES, false),
            chart::gantt(&gantt, &rows, &marks),
        ),
        (
            "pods",
            format!("Pods of {}: waiting and Running", esc(&story.deployment)),
            legend(&pods, false),
            chart::lines(&line, &pod_lines, &marks, true),
        ),
        (
            "cost-per-hour",
            format!("Cost per hour ($) · cumulative ${cost:.4}"),
            legend(&cost_line, false),
            chart::lines(&line, &[series(|p| p.cost_per_hour, cost_line[0].2)], &marks, false),
        ),
    ];
    for (key, caption, legend, drawn) in figures {
        let data = format!(" data-markers=\"{}\"", marks.len());
        out.push_str(&figure(key, &data, &caption, drawn.map(|svg| legend + &svg)));
    }
    out.push_str("</div>\n");
}

/// The timeline as a table: time, event, message, and the policy revision where the event's
/// detail names one.
fn table(out: &mut String, story: &DemoStory) {
    out.push_str("<h2>Timeline</h2>\n<table class=\"events\">\n");
    out.push_str("<tr><th>time</th><th>event</th><th>message</th><th>policy revision</th></tr>\n");
    for e in &story.entries {
        let revision = ["revision", "decidedUnder"].iter().find_map(|k| e.detail[k].as_str()).unwrap_or_default();
        let decision = DECISIONS.contains(&e.event.as_str());
        let swatch = if decision { swatch(colour(&e.event), true) } else { String::new() };
        let _ = writeln!(
            out,
            "<tr data-event=\"{event}\" data-t=\"{}\"><td class=\"n\">{}</td><td class=\"event\">{swatch}{event}</td><td>{}</td><td class=\"revision\">{}</td></tr>",
            e.t,
            clock(e.t),
            esc(&e.message),
            esc(revision),
            event = esc(&e.event),
        );
    }
    out.push_str("</table>\n");
}

/// The story as a standalone HTML page.
pub fn page(story: &DemoStory) -> String {
    let title = format!("capstan demo: Deployment {} scaled 0 → {} → 0", story.deployment, story.replicas);
    let mut out = head(&title, STYLE);
    let cost = story.cost_usd();
    let _ = writeln!(out, "<header>\n<h1 class=\"headline\">{}</h1>", esc(&title));
    let lives = story.lives();
    let _ = writeln!(
        out,
        "<p class=\"sides\">Simulated EC2 and Kubernetes on a virtual clock · {} node(s) launched · cumulative cost ${cost:.4} over {}</p>",
        lives.len(),
        human(Some(story.seconds()))
    );
    let kinds: Vec<(&str, &str, RGBColor)> = DECISIONS.iter().map(|e| (*e, *e, colour(e))).collect();
    out.push_str(&legend(&kinds, true));
    out.push_str("</header>\n");
    match &story.outcome {
        Ok(s) => {
            out.push_str("<table class=\"summary\">\n");
            let _ = writeln!(out, "<tr><th>policy</th><td>{}</td></tr>", esc(&s.revision));
            for (label, value) in s.rows(story.replicas) {
                let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(&label), esc(&value));
            }
            out.push_str("</table>\n");
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "<section class=\"breaches\">\n<h2>The story stopped</h2>\n<p>{}</p>\n</section>",
                esc(&e.to_string())
            );
        }
    }
    charts(&mut out, story, cost);
    table(&mut out, story);
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests;
