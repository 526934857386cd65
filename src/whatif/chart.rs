//! A cluster over the trace as SVG charts, the base and the head revision on one set of axes,
//! drawn by plotters. Text is left to the browser (an SVG `<text>`), so no font is needed here.

use plotters::prelude::*;

use super::{Run, Sample};

/// What one chart shows, from [`Run::series`].
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
        let mut out: Vec<(f64, f64)> = Vec::with_capacity(run.series.len() * 2);
        let mut sum = 0.0;
        for s in &run.series {
            let v = match self {
                Metric::Disruptions => {
                    sum += self.value(s);
                    sum
                }
                _ => self.value(s),
            };
            if let Some(&(_, prev)) = out.last() {
                out.push((s.t as f64, prev));
            }
            out.push((s.t as f64, v));
        }
        out
    }
}

/// The base revision's line: Okabe–Ito blue, drawn wider so an equal head line leaves it visible.
pub(super) const BASE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
/// The head revision's line: Okabe–Ito vermillion.
pub(super) const HEAD: RGBColor = RGBColor(0xD5, 0x5E, 0x00);

/// `#RRGGBB`, as plotters writes a line's `stroke`.
pub(super) fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

const SIZE: (u32, u32) = (520, 240);

/// One metric of both revisions over `seconds` of trace, as an `<svg>` element.
pub(super) fn svg(metric: Metric, base: &Run, head: &Run, seconds: u64) -> Result<String, String> {
    let (b, h) = (metric.points(base), metric.points(head));
    let end = b.iter().chain(&h).map(|p| p.0).fold(seconds as f64, f64::max).max(1.0);
    // Minutes up to three hours, hours beyond, so the ticks fall on round numbers.
    let (unit, per) = if end > 3.0 * 3600.0 { ("h", 3600.0) } else { ("m", 60.0) };
    let scaled = |points: Vec<(f64, f64)>| points.into_iter().map(|(t, v)| (t / per, v)).collect::<Vec<_>>();
    let (b, h) = (scaled(b), scaled(h));
    let top = b.iter().chain(&h).map(|p| p.1).fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let x_label = move |x: &f64| format!("{}{unit}", (x * 100.0).round() / 100.0);
    let counted = metric != Metric::CostPerHour;
    let y_label = move |y: &f64| match top {
        _ if counted && y.fract() != 0.0 => String::new(),
        _ if counted => format!("{y:.0}"),
        t if t < 2.0 => format!("{y:.2}"),
        t if t < 10.0 => format!("{y:.1}"),
        _ => format!("{y:.0}"),
    };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..end / per, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .light_line_style(RGBColor(0xF2, 0xF2, 0xF2))
            .bold_line_style(RGBColor(0xDD, 0xDD, 0xDD))
            .label_style(("sans-serif", 13).into_font().color(&RGBColor(0x44, 0x44, 0x44)))
            .draw()
            .map_err(|e| e.to_string())?;
        for (points, colour, width) in [(b, BASE, 3), (h, HEAD, 2)] {
            chart.draw_series(LineSeries::new(points, colour.stroke_width(width))).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}
