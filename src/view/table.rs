//! The board as a table for a terminal (`capstan nodes`), eks-node-viewer style: a header with
//! the cluster's bars, one line per node grouped by NodePool and zone, a footer with the cost and
//! the pending pods. Pure: the board, the daemon's clock and whether to colour in, text out.
//!
//! Every string taken from the board goes through [`clean`]: a node or pod name comes from the
//! cluster and must not be able to send escape sequences to the reader's terminal.

use std::fmt::Write;

use super::{Bar, Board, NodeState, NodeView, PoolUsage};

/// Cells of a node's cpu and memory bars.
pub const NODE_BAR: usize = 10;
/// Cells of the cluster's bars in the header.
pub const CLUSTER_BAR: usize = 20;

/// The table for `board`, its ages counted to `now` (seconds since the epoch on the daemon's
/// clock); ANSI colours only with `colour`.
pub fn render(board: &Board, now: f64, colour: bool) -> String {
    let p = Paint(colour);
    let mut out = String::new();
    let t = &board.totals;
    let revision = board.revision.as_deref().map_or_else(|| "none in force yet".to_string(), clean);
    let _ = writeln!(
        out,
        "cluster {}  revision {revision}  {}  {} ({} running)",
        p.paint("1", &clean(&board.cluster)),
        count(t.nodes, "node"),
        count(t.pods, "pod"),
        t.running
    );
    let _ = writeln!(
        out,
        "cpu    {}  {} cores   memory {}  {}",
        bar(t.cpu, CLUSTER_BAR, p),
        ratio(t.cpu, cores),
        bar(t.memory, CLUSTER_BAR, p),
        ratio(t.memory, gib)
    );
    out.push('\n');
    if board.nodes.is_empty() {
        out.push_str("no nodes\n");
    }
    let mut nodes: Vec<&NodeView> = board.nodes.iter().collect();
    nodes.sort_by(|a, b| (&a.node_pool, &a.zone).cmp(&(&b.node_pool, &b.zone)));
    let rows: Vec<Row> = nodes.iter().map(|n| Row::of(n, now)).collect();
    let w = Widths::of(&rows);
    let mut group: Option<(&Option<String>, &Option<String>)> = None;
    for (n, row) in nodes.iter().zip(&rows) {
        if group.map(|g| g.0) != Some(&n.node_pool) {
            let _ = writeln!(out, "{}", pool_line(board, n.node_pool.as_deref(), &nodes, p));
        }
        if group != Some((&n.node_pool, &n.zone)) {
            let _ = writeln!(out, "  zone {}", n.zone.as_deref().map_or_else(|| "(none)".to_string(), clean));
        }
        group = Some((&n.node_pool, &n.zone));
        let _ = writeln!(out, "{}", row.line(n, &w, p));
    }
    out.push('\n');
    let c = board.cost;
    let hour = p.paint("1", &format!("${:.3}", dollars(c.per_hour)));
    let _ = writeln!(out, "cost {hour}/hour ${:.2}/month", dollars(c.per_month));
    let reasons: Vec<String> =
        board.pending.by_reason.iter().map(|r| format!("{} {}", r.pods, clean(&r.reason))).collect();
    let pending = count(board.pending.total, "pod");
    let pending = if board.pending.total > 0 { p.paint("33", &pending) } else { pending };
    let why = if reasons.is_empty() { String::new() } else { format!(": {}", reasons.join(", ")) };
    let _ = writeln!(out, "pending {pending}{why}");
    out
}

/// `s` with control and bidirectional-formatting characters replaced by `?`, so that it cannot
/// move the cursor, retitle the window or reorder what follows it.
pub fn clean(s: &str) -> String {
    let unsafe_char = |c: char| {
        c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    s.chars().map(|c| if unsafe_char(c) { '?' } else { c }).collect()
}

/// Time since `since` as kubectl shows ages: `45s`, `2m5s`, `42m`, `3h12m`, `20h`, `4d6h`, `30d`.
pub fn age(since: f64, now: f64) -> String {
    let s = (now - since).max(0.0) as u64;
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    let two = |a: u64, ua: &str, b: u64, ub: &str| if b == 0 { format!("{a}{ua}") } else { format!("{a}{ua}{b}{ub}") };
    match s {
        0..120 => format!("{s}s"),
        120..600 => two(m, "m", s % 60, "s"),
        600..10_800 => format!("{m}m"),
        10_800..28_800 => two(h, "h", m % 60, "m"),
        28_800..172_800 => format!("{h}h"),
        172_800..691_200 => two(d, "d", h % 24, "h"),
        _ => format!("{d}d"),
    }
}

/// `width` cells filled in proportion to requests over allocatable, then the percent; blank when
/// nothing is allocatable yet (a node still launching).
pub fn bar(b: Bar, width: usize, p: Paint) -> String {
    if b.allocatable <= 0 {
        return format!("{}    -", p.paint("90", &"░".repeat(width)));
    }
    let f = b.fraction();
    let filled = ((f * width as f64).round() as usize).min(width);
    let tone = if f >= 0.9 {
        "31"
    } else if f >= 0.7 {
        "33"
    } else {
        "32"
    };
    let pct = ((f * 100.0).round() as u64).min(999);
    format!("{}{} {pct:>3}%", p.paint(tone, &"█".repeat(filled)), p.paint("90", &"░".repeat(width - filled)))
}

/// ANSI colour, or none.
#[derive(Debug, Clone, Copy)]
pub struct Paint(pub bool);

impl Paint {
    /// `text` in SGR `code` (`1` bold, `31` red…) when colouring.
    pub fn paint(self, code: &str, text: &str) -> String {
        if self.0 && !text.is_empty() { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

/// An amount without a sign when it is zero: a sum of no prices is `-0.0`.
fn dollars(x: f64) -> f64 {
    x + 0.0
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// One decimal at most: `4`, `7.5`.
fn short(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map(String::from).unwrap_or(s)
}

fn cores(millis: i64) -> String {
    short(millis as f64 / 1000.0)
}

fn gib(bytes: i64) -> String {
    format!("{}Gi", short(bytes as f64 / (1u64 << 30) as f64))
}

fn ratio(b: Bar, unit: fn(i64) -> String) -> String {
    format!("{}/{}", unit(b.requested), unit(b.allocatable))
}

/// `nodepool default  2 nodes  $0.340/hour  limits: nodes 2/10, cpu 8/100` (limits only when set;
/// one reached is red).
fn pool_line(board: &Board, pool: Option<&str>, nodes: &[&NodeView], p: Paint) -> String {
    let Some(name) = pool else { return p.paint("1", "(no NodePool)") };
    let mine = nodes.iter().filter(|n| n.node_pool.as_deref() == Some(name));
    let fallback = PoolUsage {
        nodes: mine.clone().count() as i64,
        cost: super::Cost::hourly(mine.filter_map(|n| n.price_per_hour).sum()),
        ..PoolUsage::default()
    };
    let u = board.pools.iter().find(|u| u.name == name).unwrap_or(&fallback);
    let mut line = format!(
        "{}  {}  ${:.3}/hour",
        p.paint("1", &format!("nodepool {}", clean(name))),
        count(u.nodes as usize, "node"),
        dollars(u.cost.per_hour)
    );
    let limits: Vec<String> = [
        ("nodes", u.nodes, u.limit_nodes, (|n: i64| n.to_string()) as fn(i64) -> String),
        ("cpu", u.cpu, u.limit_cpu, cores),
        ("memory", u.memory, u.limit_memory, gib),
    ]
    .into_iter()
    .filter_map(|(what, used, limit, unit)| {
        let limit = limit?;
        let text = format!("{what} {}/{}", unit(used), unit(limit));
        Some(if used >= limit { p.paint("31", &text) } else { text })
    })
    .collect();
    if !limits.is_empty() {
        let _ = write!(line, "  limits: {}", limits.join(", "));
    }
    line
}

/// A node's cells before padding.
struct Row {
    name: String,
    pods: String,
    kind: String,
    capacity: String,
    price: String,
    age: String,
    state: String,
}

impl Row {
    fn of(n: &NodeView, now: f64) -> Row {
        let dash = |s: &Option<String>| s.as_deref().map_or_else(|| "-".to_string(), clean);
        let state = match (n.state, &n.reason) {
            (NodeState::Cordoned | NodeState::Draining, Some(r)) => format!("{} ({})", n.state.label(), clean(r)),
            _ => n.state.label().to_string(),
        };
        Row {
            name: clean(&n.name),
            pods: format!("{}/{} pods", n.pods, n.max_pods.map_or_else(|| "-".to_string(), |m| m.to_string())),
            kind: dash(&n.instance_type),
            capacity: dash(&n.capacity_type),
            price: n.price_per_hour.map_or_else(|| "-".to_string(), |x| format!("${x:.4}/h")),
            age: age(n.since, now),
            state,
        }
    }

    fn line(&self, n: &NodeView, w: &Widths, p: Paint) -> String {
        let tone = match n.state {
            NodeState::Ready => "32",
            NodeState::NotReady | NodeState::Terminating => "31",
            NodeState::Cordoned | NodeState::Draining => "33",
            NodeState::Launching | NodeState::Registered => "36",
        };
        format!(
            "    {}  cpu {}  mem {}  {}  {}  {}  {}  {}  {}",
            pad(&self.name, w.name),
            bar(n.cpu, NODE_BAR, p),
            bar(n.memory, NODE_BAR, p),
            pad_left(&self.pods, w.pods),
            pad(&self.kind, w.kind),
            pad(&self.capacity, w.capacity),
            pad_left(&self.price, w.price),
            pad_left(&self.age, w.age),
            p.paint(tone, &self.state)
        )
    }
}

/// The widest cell of each column.
struct Widths {
    name: usize,
    pods: usize,
    kind: usize,
    capacity: usize,
    price: usize,
    age: usize,
}

impl Widths {
    fn of(rows: &[Row]) -> Widths {
        let max = |f: fn(&Row) -> &String| rows.iter().map(|r| f(r).chars().count()).max().unwrap_or(0);
        Widths {
            name: max(|r| &r.name),
            pods: max(|r| &r.pods),
            kind: max(|r| &r.kind),
            capacity: max(|r| &r.capacity),
            price: max(|r| &r.price),
            age: max(|r| &r.age),
        }
    }
}

fn pad(s: &str, width: usize) -> String {
    format!("{s}{}", " ".repeat(width.saturating_sub(s.chars().count())))
}

fn pad_left(s: &str, width: usize) -> String {
    format!("{}{s}", " ".repeat(width.saturating_sub(s.chars().count())))
}

#[cfg(test)]
mod tests;
