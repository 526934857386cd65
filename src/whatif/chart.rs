//! Charts as SVG, drawn by plotters on a time axis: lines (the base and the head revision of
//! `capstan simulate`; the pods and the cost of `capstan demo`) and a Gantt of nodes' lives, each
//! with optional vertical markers for decisions. Text is left to the browser (an SVG `<text>`),
//! so no font is needed here. Markers and bars are SVG elements of their own carrying `data-*`
//! attributes, so a page's reader (or its test) can tell them apart.

use std::fmt::Write;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{Run, Sample};

/// What one chart of `capstan simulate` shows, from [`Run::series`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Metric {
    Nodes,
    CostPerHour,
    PendingPods,
    /// Summed from the start, so two revisions' disruptions can be told apart at a glance.
    Disruptions,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::Nodes, Metric::CostPerHour, Metric::PendingPods, Metric::Disruptions];

    /// The name the page marks the chart with (`data-chart`).
    pub fn key(self) -> &'static str {
        match self {
            Metric::Nodes => "nodes",
            Metric::CostPerHour => "cost-per-hour",
            Metric::PendingPods => "pending-pods",
            Metric::Disruptions => "disruptions",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Metric::Nodes => "Nodes",
            Metric::CostPerHour => "Cost per hour ($)",
            Metric::PendingPods => "Pending pods",
            Metric::Disruptions => "Disruptions (cumulative)",
        }
    }

    fn value(self, s: &Sample) -> f64 {
        match self {
            Metric::Nodes => s.nodes as f64,
            Metric::CostPerHour => s.cost_per_hour,
            Metric::PendingPods => s.pending_pods as f64,
            Metric::Disruptions => s.disruptions as f64,
        }
    }

    /// (seconds, value) of every sample, each value held until the next sample.
    fn points(self, run: &Run) -> Vec<(f64, f64)> {
        let mut sum = 0.0;
        steps(run.series.iter().map(|s| {
            let v = self.value(s);
            sum += v;
            (s.t as f64, if self == Metric::Disruptions { sum } else { v })
        }))
    }
}

/// Okabe–Ito blue: the base revision's line, drawn wider so an equal head line leaves it visible.
pub(super) const BASE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
/// Okabe–Ito vermillion: the head revision's line.
pub(super) const HEAD: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
/// Okabe–Ito bluish green.
pub(super) const GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);
/// Okabe–Ito sky blue.
pub(super) const SKY: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
/// Okabe–Ito orange.
pub(super) const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
/// Okabe–Ito reddish purple.
pub(super) const PURPLE: RGBColor = RGBColor(0xCC, 0x79, 0xA7);
/// Dark grey, for what ends.
pub(super) const GREY: RGBColor = RGBColor(0x44, 0x44, 0x44);

/// `#RRGGBB`, as plotters writes a line's `stroke`.
pub(super) fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// `(t, v)` pairs with each value held until the next `t`: a step line.
pub(super) fn steps(samples: impl IntoIterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (t, v) in samples {
        if let Some(&(_, prev)) = out.last() {
            out.push((t, prev));
        }
        out.push((t, v));
    }
    out
}

/// A line of a chart: `(seconds, value)` points.
pub(super) struct Series {
    pub points: Vec<(f64, f64)>,
    pub colour: RGBColor,
    pub width: u32,
}

/// A moment marked across a chart: a dashed vertical line, `title` its tooltip.
pub(super) struct Marker {
    pub t: f64,
    /// `data-marker`: what happened (`launch`, `cordon`…).
    pub kind: String,
    pub colour: RGBColor,
    pub title: String,
}

/// A part of a Gantt row from `from` to `to` seconds.
pub(super) struct Span {
    pub from: f64,
    pub to: f64,
    /// `data-phase`.
    pub phase: &'static str,
    pub colour: RGBColor,
}

/// One row of a Gantt: up to two lines of label, the row's `data-*` attributes, its spans.
pub(super) struct Row {
    pub label: Vec<String>,
    pub data: Vec<(&'static str, String)>,
    pub spans: Vec<Span>,
}

/// A chart's size in pixels (the page scales it) and the seconds its time axis covers.
pub(super) struct Frame {
    pub size: (u32, u32),
    pub seconds: f64,
}

const SMALL: (u32, u32) = (520, 240);
/// Width of the Gantt's row labels.
const LABELS: u32 = 230;

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Seconds up to ten minutes, minutes up to three hours, hours beyond, so ticks fall on round
/// numbers: the unit's suffix and its length in seconds.
fn unit(end: f64) -> (&'static str, f64) {
    match end {
        e if e <= 600.0 => ("s", 1.0),
        e if e <= 3.0 * 3600.0 => ("m", 60.0),
        _ => ("h", 3600.0),
    }
}

/// A chart's y axis.
struct YAxis<'a> {
    range: std::ops::Range<f64>,
    ticks: usize,
    /// Width of the labels' area, in pixels.
    area: u32,
    label: &'a dyn Fn(&f64) -> String,
}

/// Draws on a white `frame.size` canvas with a time axis to `end` seconds and `y`; `draw` adds
/// the chart's content, given the seconds per unit of the time axis, and returns SVG elements
/// to append.
fn canvas(
    frame: &Frame,
    end: f64,
    y: YAxis,
    draw: impl FnOnce(&mut Chart, f64) -> Result<String, String>,
) -> Result<String, String> {
    let (suffix, per) = unit(end);
    let x_label = move |x: &f64| format!("{}{suffix}", (x * 100.0).round() / 100.0);
    let err = |e: DrawingAreaErrorKind<_>| e.to_string();
    let mut out = String::new();
    let extra;
    {
        let root = SVGBackend::with_string(&mut out, frame.size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(y.area)
            .build_cartesian_2d(0.0..end / per, y.range)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(y.ticks)
            .x_label_formatter(&x_label)
            .y_label_formatter(y.label)
            .light_line_style(RGBColor(0xF2, 0xF2, 0xF2))
            .bold_line_style(RGBColor(0xDD, 0xDD, 0xDD))
            .label_style(("sans-serif", 13).into_font().color(&GREY))
            .draw()
            .map_err(err)?;
        extra = draw(&mut chart, per)?;
        root.present().map_err(err)?;
    }
    if let Some(i) = out.rfind("</svg>") {
        out.insert_str(i, &extra);
    }
    Ok(out)
}

/// `markers` as dashed vertical lines across the plotting area, in a `<g class="markers">`;
/// nothing without any.
fn markers(chart: &Chart, markers: &[Marker], per: f64) -> String {
    if markers.is_empty() {
        return String::new();
    }
    let (y0, y1) = (chart.y_range().start, chart.y_range().end);
    let mut out = String::from("<g class=\"markers\">\n");
    for m in markers {
        let (x, top) = chart.backend_coord(&(m.t / per, y1));
        let (_, bottom) = chart.backend_coord(&(m.t / per, y0));
        let _ = writeln!(
            out,
            "<line class=\"marker\" data-marker=\"{}\" data-t=\"{}\" x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{bottom}\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"6 4\" opacity=\"0.8\"><title>{}</title></line>",
            esc(&m.kind),
            m.t,
            hex(m.colour),
            esc(&m.title)
        );
    }
    out.push_str("</g>\n");
    out
}

/// `series` over `frame.seconds`, with `markers`; `counted` values get whole-number ticks.
pub(super) fn lines(frame: &Frame, series: &[Series], marks: &[Marker], counted: bool) -> Result<String, String> {
    let points = || series.iter().flat_map(|s| &s.points);
    let end = points().map(|p| p.0).chain(marks.iter().map(|m| m.t)).fold(frame.seconds, f64::max).max(1.0);
    let top = points().map(|p| p.1).fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let y_label = move |y: &f64| match top {
        _ if counted && y.fract() != 0.0 => String::new(),
        _ if counted => format!("{y:.0}"),
        t if t < 2.0 => format!("{y:.2}"),
        t if t < 10.0 => format!("{y:.1}"),
        _ => format!("{y:.0}"),
    };
    canvas(frame, end, YAxis { range: 0.0..top, ticks: 6, area: 48, label: &y_label }, |chart, per| {
        for s in series {
            let scaled = s.points.iter().map(|&(t, v)| (t / per, v));
            chart.draw_series(LineSeries::new(scaled, s.colour.stroke_width(s.width))).map_err(|e| e.to_string())?;
        }
        Ok(markers(chart, marks, per))
    })
}

/// One row per entry of `rows`, top to bottom, each a `<g class="bar">` of `<rect>` spans over
/// `frame.seconds`, with `markers`.
pub(super) fn gantt(frame: &Frame, rows: &[Row], marks: &[Marker]) -> Result<String, String> {
    let spans = || rows.iter().flat_map(|r| &r.spans);
    let end = spans().map(|s| s.to).chain(marks.iter().map(|m| m.t)).fold(frame.seconds, f64::max).max(1.0);
    let n = rows.len().max(1) as f64;
    let y = YAxis { range: 0.0..n, ticks: rows.len() + 1, area: LABELS, label: &|_| String::new() };
    canvas(frame, end, y, |chart, per| {
        let mut out = String::from("<g class=\"bars\">\n");
        for (i, r) in rows.iter().enumerate() {
            let middle = n - i as f64 - 0.5;
            let data: String = r.data.iter().map(|(k, v)| format!(" data-{k}=\"{}\"", esc(v))).collect();
            let _ = writeln!(out, "<g class=\"bar\"{data}>");
            let (left, y) = chart.backend_coord(&(0.0, middle));
            for (k, line) in r.label.iter().take(2).enumerate() {
                let _ = writeln!(
                    out,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-family=\"sans-serif\" font-size=\"13\" fill=\"{}\">{}</text>",
                    left - 8,
                    y - 3 + 16 * k as i32,
                    hex(GREY),
                    esc(line)
                );
            }
            for s in &r.spans {
                let (x0, y0) = chart.backend_coord(&(s.from / per, middle + 0.3));
                let (x1, y1) = chart.backend_coord(&(s.to / per, middle - 0.3));
                let _ = writeln!(
                    out,
                    "<rect class=\"span\" data-phase=\"{}\" x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>",
                    s.phase,
                    (x1 - x0).max(1),
                    y1 - y0,
                    hex(s.colour),
                    esc(s.phase)
                );
            }
            out.push_str("</g>\n");
        }
        out.push_str("</g>\n");
        Ok(out + &markers(chart, marks, per))
    })
}

/// One metric of both revisions over `seconds` of trace, as an `<svg>` element.
pub(super) fn svg(metric: Metric, base: &Run, head: &Run, seconds: u64) -> Result<String, String> {
    let series = [
        Series { points: metric.points(base), colour: BASE, width: 3 },
        Series { points: metric.points(head), colour: HEAD, width: 2 },
    ];
    let frame = Frame { size: SMALL, seconds: seconds as f64 };
    lines(&frame, &series, &[], metric != Metric::CostPerHour)
}

/// Text with `&`, `<`, `>` and quotes escaped, for element content and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}
