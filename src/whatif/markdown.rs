//! The report as a pull-request comment: a hidden marker a bot finds its earlier comment by, a
//! one-line headline, the breaches, a table per cluster and collapsed breakdowns, cut to fit
//! the forge's comment size limit.

use std::fmt::Write;

use super::text::{Row, breakdowns, rows, short_sha, summary, trace_label};
use super::{ClusterOutcome, Report, Side};

/// The first line of every comment, invisible once rendered.
pub const MARKER: &str = "<!-- capstan-simulate -->";

/// The most a comment may hold, in bytes: GitHub takes 65,536 characters (GitLab 1,000,000);
/// the rest is room for what a bot adds around it.
pub const LIMIT: usize = 60_000;

/// The most breaches listed one by one, so that they cannot fill the comment on their own.
const MAX_BREACHES: usize = 50;

/// A cell's text with what would break the table (`|`, line breaks) or open HTML (`<`) escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('<', "&lt;").replace(['\n', '\r'], " ")
}

fn table(key: &str, rows: &[Row]) -> String {
    let mut out = format!("| {} | base | head | change |\n| --- | ---: | ---: | ---: |\n", cell(key));
    for r in rows {
        let _ = writeln!(out, "| {} | {} | {} | {} |", cell(&r.name), cell(&r.base), cell(&r.head), cell(r.change()));
    }
    out
}

/// One cluster: its table and its breakdowns, each breakdown apart so it can be left out.
struct Section {
    table: String,
    details: Vec<Option<String>>,
    /// Clusters with breaches are the last to lose their table.
    breached: bool,
}

impl Section {
    fn new(c: &ClusterOutcome) -> Section {
        let heading = format!("### {}\n\n{}", cell(&c.cluster), table("metric", &rows(c)));
        let details = breakdowns(c)
            .into_iter()
            .filter(|b| !b.rows.is_empty())
            .map(|b| {
                Some(format!("<details><summary>{}</summary>\n\n{}\n</details>\n", b.title, table(b.key, &b.rows)))
            })
            .collect();
        Section { table: heading, details, breached: !c.breaches.is_empty() }
    }

    fn len(&self) -> usize {
        self.table.len() + 1 + self.details.iter().flatten().map(|d| d.len() + 1).sum::<usize>()
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "{}", self.table);
        for d in self.details.iter().flatten() {
            let _ = writeln!(out, "{d}");
        }
    }
}

/// The report as Markdown for a pull request, at most [`LIMIT`] bytes long.
pub fn markdown(report: &Report) -> String {
    let mut head =
        format!("{MARKER}\n**capstan simulate** ({}): {}\n\n", cell(&trace_label(report)), summary(report, "❌"));
    let side = |s: &Side| match short_sha(s) {
        Some(sha) => format!("`{}` ({sha})", s.rev.replace('`', "'")),
        None => format!("`{}`", s.rev.replace('`', "'")),
    };
    let (base, head_side) = (side(&report.base), side(&report.head));
    let (events, pods) = (report.trace.events, report.trace.peak_pods);
    let _ = writeln!(head, "Base {base} → head {head_side} · {events} trace events · up to {pods} pods\n");
    let breaches: Vec<_> = report.breaches().collect();
    if !breaches.is_empty() {
        head.push_str("#### Guardrail breaches\n\n");
        for (cluster, b) in breaches.iter().take(MAX_BREACHES) {
            let _ = writeln!(
                head,
                "- ❌ **{}**: {} (cluster {}; limit {}, actual {})",
                cell(&b.rule),
                cell(&b.message),
                cell(cluster),
                cell(&b.limit),
                cell(&b.actual)
            );
        }
        if breaches.len() > MAX_BREACHES {
            let _ = writeln!(head, "- …and {} more", breaches.len() - MAX_BREACHES);
        }
        head.push('\n');
    }
    let mut sections: Vec<Section> = report.clusters.iter().map(Section::new).collect();
    let note = fit(&mut sections, LIMIT.saturating_sub(head.len()));
    let mut out = head;
    if let Some(note) = note {
        let _ = writeln!(out, "> ⚠️ {note}\n");
    }
    for s in &sections {
        s.write(&mut out);
    }
    out
}

/// Leaves out breakdowns, largest first, then whole cluster sections (clusters without breaches
/// first, from the end) until the sections and the note about them fit in `room` bytes; returns
/// that note.
fn fit(sections: &mut Vec<Section>, room: usize) -> Option<String> {
    /// Room kept for the note itself.
    const NOTE: usize = 200;
    let mut size = sections.iter().map(Section::len).sum::<usize>();
    if size <= room {
        return None;
    }
    size += NOTE;
    let mut details: Vec<(usize, usize, usize)> = Vec::new();
    for (i, s) in sections.iter().enumerate() {
        for (j, d) in s.details.iter().enumerate() {
            details.push((d.as_ref().map_or(0, String::len), i, j));
        }
    }
    details.sort_by_key(|d| std::cmp::Reverse(d.0));
    let mut dropped = 0;
    for (len, i, j) in details {
        if size <= room {
            break;
        }
        sections[i].details[j] = None;
        size -= len + 1;
        dropped += 1;
    }
    let mut tables = 0;
    while size > room {
        let Some(i) = sections.iter().rposition(|s| !s.breached).or(sections.len().checked_sub(1)) else { break };
        size -= sections.remove(i).len();
        tables += 1;
    }
    let mut note = format!("{dropped} details sections were left out to keep this comment within the size limit");
    if tables > 0 {
        let _ = write!(note, ", and the tables of {tables} clusters");
    }
    note.push_str("; `capstan simulate --format html` shows everything.");
    Some(note)
}
