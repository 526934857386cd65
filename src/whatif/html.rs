//! The report as one self-contained HTML page: the headline and tables of the other formats, and
//! per cluster four charts over the trace. Nothing in it is fetched when it is opened (inline CSS
//! and SVG only, no script, and a content security policy that forbids loading anything).
//! [`timeline`] makes the page of `capstan demo` on the same conventions and charts.

pub mod timeline;

use std::fmt::Write;

use super::chart::{self, BASE, HEAD, Metric, esc};
use super::text::{CROSS, Row, breakdowns, rows, side, summary, trace_label};
use super::{ClusterOutcome, Report};

const STYLE: &str = "
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1f2328; margin: 24px auto; max-width: 1180px; padding: 0 16px; }
h1 { font-size: 1.35em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
.sides { color: #59636e; margin: 0 0 8px; }
.legend { list-style: none; padding: 0; margin: 8px 0; display: flex; gap: 20px; }
.swatch { display: inline-block; width: 22px; height: 4px; vertical-align: middle; margin-right: 6px; }
.breaches { border: 1px solid #cf222e; background: #ffebe9; border-radius: 6px; padding: 8px 16px; margin: 12px 0; }
.breaches h2 { border: 0; margin: 4px 0; color: #a40e26; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 10px; }
th { background: #f6f8fa; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.changed { font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 12px; margin: 12px 0; }
figure { margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
figure svg { width: 100%; height: auto; display: block; }
details { margin: 6px 0; }
summary { cursor: pointer; }
";

fn table(key: &str, rows: &[Row]) -> String {
    let mut out = format!("<table>\n<tr><th>{}</th><th>base</th><th>head</th><th>change</th></tr>\n", esc(key));
    for r in rows {
        let changed = if r.change.is_some() { " changed" } else { "" };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n{changed}\">{}</td></tr>",
            esc(&r.name),
            esc(&r.base),
            esc(&r.head),
            esc(r.change())
        );
    }
    out.push_str("</table>\n");
    out
}

/// A chart in a `<figure class="chart" data-chart="{key}"{data}>`; `data` (further attributes)
/// and `caption` are HTML. A chart that could not be drawn says why instead.
fn figure(key: &str, data: &str, caption: &str, drawn: Result<String, String>) -> String {
    let body = drawn.unwrap_or_else(|e| format!("<p class=\"error\">The chart could not be drawn: {}</p>", esc(&e)));
    format!(
        "<figure class=\"chart\" data-chart=\"{}\"{data}>\n<figcaption>{caption}</figcaption>\n{body}\n</figure>\n",
        esc(key)
    )
}

/// The page up to `<body>`: the content security policy that loads nothing, `title`, and the
/// style sheet with `style` added.
fn head(title: &str, style: &str) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{}</title>", esc(title));
    let _ = write!(out, "<style>{STYLE}{style}</style>\n</head>\n<body>\n");
    out
}

fn cluster(out: &mut String, c: &ClusterOutcome, seconds: u64) {
    let name = esc(&c.cluster);
    let _ = writeln!(out, "<section class=\"cluster\" data-cluster=\"{name}\">\n<h2>Cluster {name}</h2>");
    out.push_str(&table("metric", &rows(c)));
    out.push_str("<div class=\"charts\">\n");
    for metric in Metric::ALL {
        let drawn = chart::svg(metric, &c.base, &c.head, seconds);
        let data = format!(" data-cluster=\"{name}\"");
        out.push_str(&figure(metric.key(), &data, metric.title(), drawn));
    }
    out.push_str("</div>\n");
    for b in breakdowns(c).into_iter().filter(|b| !b.rows.is_empty()) {
        let _ = write!(out, "<details>\n<summary>{}</summary>\n{}</details>\n", esc(b.title), table(b.key, &b.rows));
    }
    out.push_str("</section>\n");
}

/// The report as a standalone HTML page.
pub fn html(report: &Report) -> String {
    let title = format!("capstan simulate ({})", trace_label(report));
    let style = format!(
        ".swatch.base {{ background: {} }}\n.swatch.head {{ background: {} }}\n",
        chart::hex(BASE),
        chart::hex(HEAD)
    );
    let mut out = head(&title, &style);
    out.push_str("<header>\n");
    let _ = writeln!(out, "<h1 class=\"headline\">{}: {}</h1>", esc(&title), esc(&summary(report, CROSS)));
    let (base, head) = (side(&report.base), side(&report.head));
    let _ = writeln!(
        out,
        "<p class=\"sides\">Base {} → head {} · {} trace events · up to {} pods</p>",
        esc(&base),
        esc(&head),
        report.trace.events,
        report.trace.peak_pods
    );
    out.push_str("<ul class=\"legend\">\n");
    for (revision, colour, label) in [("base", BASE, &base), ("head", HEAD, &head)] {
        let stroke = chart::hex(colour);
        let _ = writeln!(
            out,
            "<li data-revision=\"{revision}\" data-stroke=\"{stroke}\"><span class=\"swatch {revision}\"></span>{revision}: {}</li>",
            esc(label)
        );
    }
    out.push_str("</ul>\n</header>\n");
    let breaches: Vec<_> = report.breaches().collect();
    if !breaches.is_empty() {
        out.push_str("<section class=\"breaches\">\n<h2>Guardrail breaches</h2>\n<ul>\n");
        for (cluster, b) in breaches {
            let _ = writeln!(
                out,
                "<li>{CROSS} <strong>{}</strong>: {} (cluster {}; limit {}, actual {})</li>",
                esc(&b.rule),
                esc(&b.message),
                esc(cluster),
                esc(&b.limit),
                esc(&b.actual)
            );
        }
        out.push_str("</ul>\n</section>\n");
    }
    for c in &report.clusters {
        cluster(&mut out, c, report.trace.seconds);
    }
    out.push_str("</body>\n</html>\n");
    out
}
