//! The terminal table from hand-built boards.

use super::*;
use crate::view::{Cost, Pending, ReasonCount, Totals};

const GIB: i64 = 1 << 30;

fn node(name: &str, pool: &str, zone: &str) -> NodeView {
    NodeView {
        name: name.into(),
        node_pool: Some(pool.into()),
        zone: Some(zone.into()),
        instance_type: Some("c5.xlarge".into()),
        capacity_type: Some("on-demand".into()),
        price_per_hour: Some(0.17),
        since: 1000.0,
        state: NodeState::Ready,
        cpu: Bar { requested: 2000, allocatable: 4000 },
        memory: Bar { requested: GIB, allocatable: 8 * GIB },
        pods: 16,
        max_pods: Some(58),
        ..NodeView::default()
    }
}

fn board(nodes: Vec<NodeView>) -> Board {
    let mut totals = Totals { nodes: nodes.len(), pods: nodes.iter().map(|n| n.pods).sum(), ..Totals::default() };
    nodes.iter().for_each(|n| (totals.cpu.add(n.cpu), totals.memory.add(n.memory)).1);
    Board {
        cluster: "dev".into(),
        revision: Some("main@sha1:abc".into()),
        cost: Cost::hourly(nodes.iter().filter_map(|n| n.price_per_hour).sum()),
        nodes,
        totals,
        ..Board::default()
    }
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("no {name} in\n{out}"))
}

#[test]
fn nodes_are_grouped_by_pool_then_zone() {
    let b = board(vec![node("n3", "spot", "a"), node("n2", "default", "b"), node("n1", "default", "a")]);
    let out = render(&b, 1000.0, false);
    let at = |s: &str| out.find(s).unwrap_or_else(|| panic!("no {s} in\n{out}"));
    assert!(at("nodepool default") < at("zone a") && at("zone a") < at("n1 ") && at("n1 ") < at("zone b"));
    assert!(at("zone b") < at("n2 ") && at("n2 ") < at("nodepool spot") && at("nodepool spot") < at("n3 "));
    assert_eq!(out.matches("nodepool default").count(), 1);
    assert!(out.contains("nodepool default  2 nodes  $0.340/hour\n"), "{out}");
    assert!(out.starts_with("cluster dev  revision main@sha1:abc  3 nodes  48 pods (0 running)\n"), "{out}");
}

#[test]
fn bars_fill_in_proportion_and_show_the_percent() {
    let p = Paint(false);
    assert_eq!(bar(Bar { requested: 2000, allocatable: 4000 }, 10, p), "█████░░░░░  50%");
    assert_eq!(bar(Bar { requested: 0, allocatable: 4000 }, 4, p), "░░░░   0%");
    assert_eq!(bar(Bar { requested: 9000, allocatable: 4000 }, 4, p), "████ 225%");
    assert_eq!(bar(Bar::default(), 4, p), "░░░░    -");
    let out = render(&board(vec![node("n1", "default", "a")]), 1000.0, false);
    assert!(
        line(&out, "n1")
            .contains("cpu █████░░░░░  50%  mem █░░░░░░░░░  13%  16/58 pods  c5.xlarge  on-demand  $0.1700/h"),
        "{out}"
    );
    assert!(out.contains(&format!("cpu    {}{}  50%  2/4 cores", "█".repeat(10), "░".repeat(10))), "{out}");
}

#[test]
fn ages_read_as_kubectl_shows_them() {
    let cases = [(-5.0, "0s"), (45.0, "45s"), (125.0, "2m5s"), (180.0, "3m"), (2520.0, "42m"), (10_800.0, "3h")];
    let more = [(11_520.0, "3h12m"), (72_000.0, "20h"), (4.0 * 86_400.0, "4d"), (30.0 * 86_400.0, "30d")];
    for (secs, want) in cases.into_iter().chain(more) {
        assert_eq!(age(100.0, 100.0 + secs), want, "{secs}");
    }
    let out = render(&board(vec![node("n1", "default", "a")]), 1125.0, false);
    assert!(line(&out, "n1").contains(" 2m5s  Ready"), "{out}");
}

#[test]
fn states_show_their_disruption_reason() {
    let mut draining = node("n1", "default", "a");
    (draining.state, draining.reason) = (NodeState::Draining, Some("underutilized".into()));
    let mut cordoned = node("n2", "default", "a");
    (cordoned.state, cordoned.reason) = (NodeState::Cordoned, Some("drifted".into()));
    let mut launching = node("n3", "default", "a");
    (launching.state, launching.cpu, launching.pods) = (NodeState::Launching, Bar::default(), 0);
    let out = render(&board(vec![draining, cordoned, launching]), 1000.0, false);
    assert!(line(&out, "n1").ends_with("draining (underutilized)"), "{out}");
    assert!(line(&out, "n2").ends_with("cordoned (drifted)"), "{out}");
    assert!(line(&out, "n3").ends_with("launching") && line(&out, "n3").contains("cpu ░░░░░░░░░░    -"), "{out}");
}

#[test]
fn the_footer_has_the_cost_and_the_pending_pods_by_reason() {
    let mut b = board(vec![node("n1", "default", "a"), node("n2", "default", "a")]);
    let reason = |r: &str, pods| ReasonCount { reason: r.into(), pods };
    b.pending = Pending { total: 3, pods: vec![], by_reason: vec![reason("no offering", 2), reason("waiting", 1)] };
    let out = render(&b, 1000.0, false);
    assert!(out.ends_with("cost $0.340/hour $248.20/month\npending 3 pods: 2 no offering, 1 waiting\n"), "{out}");
    let empty = render(&board(vec![]), 0.0, false);
    assert!(
        empty.contains("\nno nodes\n") && empty.ends_with("cost $0.000/hour $0.00/month\npending 0 pods\n"),
        "{empty}"
    );
}

#[test]
fn pool_limits_show_when_set() {
    let mut b = board(vec![node("n1", "default", "a")]);
    let usage =
        |name: &str| PoolUsage { name: name.into(), nodes: 1, cpu: 4000, memory: 8 * GIB, ..PoolUsage::default() };
    b.pools = vec![PoolUsage { limit_cpu: Some(100_000), limit_nodes: Some(1), ..usage("default") }, usage("spot")];
    let out = render(&b, 1000.0, false);
    assert!(out.contains("nodepool default  1 node  $0.000/hour  limits: nodes 1/1, cpu 4/100\n"), "{out}");
    assert!(render(&b, 1000.0, true).contains("\x1b[31mnodes 1/1\x1b[0m"));
}

#[test]
fn colour_only_when_asked() {
    let b = board(vec![node("n1", "default", "a")]);
    assert!(!render(&b, 1000.0, false).contains('\x1b'));
    let out = render(&b, 1000.0, true);
    assert!(out.contains("\x1b[32mReady\x1b[0m") && out.contains("\x1b[1mdev\x1b[0m"), "{out:?}");
}

#[test]
fn names_from_the_cluster_cannot_send_escapes() {
    let mut n = node("evil\x1b]0;owned\x07\x1b[2J\u{202e}name", "po\x1bol", "zone\r");
    n.reason = Some("\x1b[31m".into());
    n.state = NodeState::Cordoned;
    let mut b = board(vec![n]);
    b.cluster = "dev\x1b[H".into();
    b.pending.by_reason = vec![ReasonCount { reason: "x\x1b[1Ay\n".into(), pods: 1 }];
    let plain = render(&b, 1000.0, false);
    assert!(!plain.contains('\x1b') && !plain.contains('\x07') && !plain.contains('\r'), "{plain:?}");
    assert!(plain.contains("evil?]0;owned??[2J?name") && plain.contains("cordoned (?[31m)"), "{plain}");
    let painted = render(&b, 1000.0, true);
    for bad in ["\x1b]", "\x07", "\x1b[2J", "\x1b[H", "\x1b[1A", "\u{202e}"] {
        assert!(!painted.contains(bad), "{bad:?} in {painted:?}");
    }
}
