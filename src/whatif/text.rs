//! The report for a terminal, and the figures every format shares: the headline, the metric rows
//! of a cluster's table and its breakdowns, each value and change already written out.
//!
//! ```text
//! Report ─► headline, sides ─────────┐
//! ClusterOutcome ─► rows, breakdowns ─┴─► text (here) | markdown | html
//! ```

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{ClusterOutcome, Report, Run, Side, change_pct};

/// One line of a comparison: what is measured and its value under each revision.
pub(super) struct Row {
    pub name: String,
    pub base: String,
    pub head: String,
    /// Signed (`+3`, `−12.0 %`); `None` when the value did not change.
    pub change: Option<String>,
}

impl Row {
    /// The change, or [`SAME`].
    pub fn change(&self) -> &str {
        self.change.as_deref().unwrap_or(SAME)
    }
}

/// A cluster's node-hours or disruptions split by instance type, capacity type or reason.
pub(super) struct Breakdown {
    pub title: &'static str,
    /// What the rows name: `instance type`, `capacity type`, `reason`.
    pub key: &'static str,
    pub rows: Vec<Row>,
}

/// Marks a breach where emoji may not render (a terminal, a page without an emoji font).
pub(super) const CROSS: &str = "✗";

/// The text shown when a value did not change.
const SAME: &str = "—";

/// `magnitude` behind `−` (the minus sign, not a hyphen) or `+`.
fn signed(negative: bool, magnitude: String) -> String {
    format!("{}{magnitude}", if negative { '−' } else { '+' })
}

/// Seconds, whole from ten on or when whole, else with one decimal.
fn secs(s: f64) -> String {
    let whole = s.abs() >= 9.95 || (s - s.round()).abs() < 0.05;
    if whole { format!("{s:.0}") } else { format!("{s:.1}") }
}

fn count_change(base: f64, head: f64) -> Option<String> {
    let d = head - base;
    (d != 0.0).then(|| signed(d < 0.0, format!("{}", d.abs())))
}

fn decimal_change(base: f64, head: f64) -> Option<String> {
    let d = head - base;
    (d.abs() >= 0.05).then(|| signed(d < 0.0, format!("{:.1}", d.abs())))
}

fn secs_change(base: f64, head: f64) -> Option<String> {
    let d = head - base;
    (d.abs() >= 0.05).then(|| signed(d < 0.0, format!("{} s", secs(d.abs()))))
}

/// A change in USD as a percentage of the base, or in USD when the base cost nothing.
fn money_change(base: f64, head: f64) -> Option<String> {
    let d = head - base;
    (d.abs() >= 0.005).then(|| match change_pct(base, head) {
        Some(pct) => signed(d < 0.0, format!("{:.1} %", pct.abs())),
        None => signed(d < 0.0, format!("${:.2}", d.abs())),
    })
}

fn row(name: &str, base: String, head: String, change: Option<String>) -> Row {
    Row { name: name.into(), base, head, change }
}

fn count(name: &str, base: usize, head: usize) -> Row {
    row(name, base.to_string(), head.to_string(), count_change(base as f64, head as f64))
}

fn money(name: &str, base: f64, head: f64) -> Row {
    row(name, format!("{base:.2}"), format!("{head:.2}"), money_change(base, head))
}

fn pending(name: &str, base: f64, head: f64) -> Row {
    row(name, secs(base), secs(head), secs_change(base, head))
}

/// The comparison table of one cluster, in the order every format shows it.
pub(super) fn rows(c: &ClusterOutcome) -> Vec<Row> {
    let (b, h) = (&c.base, &c.head);
    let (bp, hp) = (&b.pending, &h.pending);
    vec![
        money("cost total ($)", b.cost_usd, h.cost_usd),
        money("cost per hour ($)", b.cost_per_hour, h.cost_per_hour),
        row(
            "nodes avg",
            format!("{:.1}", b.nodes_avg),
            format!("{:.1}", h.nodes_avg),
            decimal_change(b.nodes_avg, h.nodes_avg),
        ),
        count("nodes peak", b.nodes_peak, h.nodes_peak),
        pending("pending p50 (s)", bp.p50, hp.p50),
        pending("pending p95 (s)", bp.p95, hp.p95),
        pending("pending p99 (s)", bp.p99, hp.p99),
        pending("pending max (s)", bp.max, hp.max),
        count("pods never scheduled", b.pods_never_scheduled, h.pods_never_scheduled),
        count("launches", b.launches, h.launches),
        count("disruptions (total)", b.disrupted(), h.disrupted()),
        count("evicted pods", b.evicted_pods as usize, h.evicted_pods as usize),
        count("limits hit", b.limits_hit, h.limits_hit),
        count("spot interruptions", b.interruptions, h.interruptions),
    ]
}

/// One row for every key either revision has; node-hours with one decimal, counts whole.
fn split(base: &BTreeMap<String, f64>, head: &BTreeMap<String, f64>, hours: bool) -> Vec<Row> {
    let mut keys: Vec<&String> = base.keys().chain(head.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: f64| if hours { format!("{v:.1}") } else { format!("{v}") };
    keys.into_iter()
        .map(|k| {
            let (b, h) = (base.get(k).copied().unwrap_or(0.0), head.get(k).copied().unwrap_or(0.0));
            let change = if hours { decimal_change(b, h) } else { count_change(b, h) };
            row(k, show(b), show(h), change)
        })
        .collect()
}

/// The instance-type, capacity-type and disruption-reason breakdowns of one cluster.
pub(super) fn breakdowns(c: &ClusterOutcome) -> Vec<Breakdown> {
    let reasons = |r: &Run| r.disruptions.iter().map(|(k, v)| (k.clone(), *v as f64)).collect();
    let (b, h) = (&c.base, &c.head);
    vec![
        Breakdown {
            title: "Instance-type mix (node-hours)",
            key: "instance type",
            rows: split(&b.instance_types, &h.instance_types, true),
        },
        Breakdown {
            title: "Capacity-type mix (node-hours)",
            key: "capacity type",
            rows: split(&b.capacity_types, &h.capacity_types, true),
        },
        Breakdown { title: "Disruptions by reason", key: "reason", rows: split(&reasons(b), &reasons(h), false) },
    ]
}

/// A length of time as `24h`, `1h30m`, `20m` or `45s`.
pub(super) fn duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            let _ = write!(out, "{n}{unit}");
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

/// What the trace was: `trace diurnal-web, 24h`.
pub(super) fn trace_label(report: &Report) -> String {
    format!("trace {}, {}", report.trace.name, duration(report.trace.seconds))
}

/// The commit a revision resolved to, abbreviated, when the revision does not already say it.
pub(super) fn short_sha(s: &Side) -> Option<&str> {
    let short = s.sha.get(..7).unwrap_or(&s.sha);
    (!short.is_empty() && !s.rev.starts_with(short)).then_some(short)
}

/// A revision as given and the commit it resolved to: `main (1a2b3c4)`.
pub(super) fn side(s: &Side) -> String {
    match short_sha(s) {
        Some(sha) => format!("{} ({sha})", s.rev),
        None => s.rev.clone(),
    }
}

/// The outcome in one line over every cluster: total cost, worst pending p99, total disruptions
/// and the breaches behind `mark`, or `no change`.
pub(super) fn summary(report: &Report, mark: &str) -> String {
    let total = |f: fn(&ClusterOutcome) -> f64| report.clusters.iter().map(f).sum::<f64>();
    let worst = |f: fn(&ClusterOutcome) -> f64| report.clusters.iter().map(f).fold(0.0, f64::max);
    let parts = [
        ("cost", money_change(total(|c| c.base.cost_usd), total(|c| c.head.cost_usd))),
        ("pending p99", secs_change(worst(|c| c.base.pending.p99), worst(|c| c.head.pending.p99))),
        ("disruptions", count_change(total(|c| c.base.disrupted() as f64), total(|c| c.head.disrupted() as f64))),
    ];
    let mut out = if parts.iter().all(|(_, change)| change.is_none()) {
        "no change".to_string()
    } else {
        let said: Vec<String> = parts
            .iter()
            .map(|(what, change)| match change {
                Some(change) => format!("{what} {change}"),
                None => format!("{what} unchanged"),
            })
            .collect();
        said.join(", ")
    };
    // Pods left without a node matter even when the three headline numbers do not move.
    let never = |f: fn(&ClusterOutcome) -> usize| report.clusters.iter().map(f).sum::<usize>() as f64;
    if let Some(change) = count_change(never(|c| c.base.pods_never_scheduled), never(|c| c.head.pods_never_scheduled)) {
        out = if out == "no change" { String::new() } else { format!("{out}, ") };
        out.push_str(&format!("pods never scheduled {change}"));
    }
    match report.breaches().count() {
        0 => {}
        1 => out.push_str(&format!(", {mark} 1 guardrail breach")),
        n => out.push_str(&format!(", {mark} {n} guardrail breaches")),
    }
    out
}

/// The report for a terminal: the headline, a table per cluster, then the breaches.
pub fn text(report: &Report) -> String {
    let mut out = format!("capstan simulate ({}): {}\n", trace_label(report), summary(report, CROSS));
    let _ = writeln!(out, "base {} → head {}", side(&report.base), side(&report.head));
    for c in &report.clusters {
        let _ = write!(out, "\ncluster {}\n", c.cluster);
        let mut table = vec![row("metric", "base".into(), "head".into(), Some("change".into()))];
        table.extend(rows(c));
        let width = |f: fn(&Row) -> &str| table.iter().map(|r| f(r).chars().count()).max().unwrap_or(0);
        let w = [width(|r| &r.name), width(|r| &r.base), width(|r| &r.head), width(Row::change)];
        for r in &table {
            let line = format!(
                "  {:<a$}  {:>b$}  {:>c$}  {:>d$}",
                r.name,
                r.base,
                r.head,
                r.change(),
                a = w[0],
                b = w[1],
                c = w[2],
                d = w[3]
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    let breaches: Vec<_> = report.breaches().collect();
    if !breaches.is_empty() {
        out.push_str("\nguardrail breaches\n");
        for (cluster, b) in breaches {
            let _ = writeln!(
                out,
                "  {CROSS} {cluster}: {}: {} (limit {}, actual {})",
                b.rule, b.message, b.limit, b.actual
            );
        }
    }
    out
}
