//! Disruption budgets: the smallest active budget for the reason, a percentage rounded up,
//! less nodes already disrupting or not Ready.

use capstan::policy::meta::CronSchedule;
use capstan::scheduling::pod::pod;

use super::*;

/// `n` empty nodes e0, e1…
fn empties(case: &mut Case, n: usize) {
    for i in 0..n {
        case.node(node(&format!("e{i}")));
    }
}

#[test]
fn a_count_budget_limits_how_many_nodes_go() {
    let mut case = Case::new();
    case.pool().budgets = vec![budget(BudgetNodes::Count(1))];
    empties(&mut case, 3);
    let plan = case.plan();
    assert_eq!(only(&plan).targets.len(), 1);
    let held: Vec<&str> = plan.kept.iter().map(|(_, why)| why.as_str()).collect();
    assert_eq!(held.len(), 2, "{plan:#?}");
    assert!(held.iter().all(|w| w.contains("budget of NodePool default is used up")), "{held:?}");
}

#[test]
fn a_percent_budget_rounds_up() {
    let cluster = |percent, n| {
        let mut case = Case::new();
        case.pool().budgets = vec![budget(BudgetNodes::Percent(percent))];
        empties(&mut case, n);
        case.plan()
    };
    assert_eq!(only(&cluster(50, 3)).targets.len(), 2, "50% of 3 is 1.5");
    assert_eq!(only(&cluster(10, 3)).targets.len(), 1, "10% of 3 is 0.3");
    assert!(cluster(0, 3).commands.is_empty());
}

#[test]
fn the_smallest_active_budget_wins() {
    let mut case = Case::new();
    case.pool().budgets = vec![budget(BudgetNodes::Percent(100)), budget(BudgetNodes::Count(2))];
    empties(&mut case, 4);
    assert_eq!(only(&case.plan()).targets.len(), 2);
}

#[test]
fn a_budget_limits_only_its_reasons() {
    // No empty node may go; consolidation is not limited.
    let mut case = Case::new();
    case.pool().budgets = vec![Budget { reasons: Some(vec![Reason::Empty]), ..budget(BudgetNodes::Count(0)) }];
    case.node(node("empty")).node(node("a")).node(node("big").unmanaged().of_type("m6i.4xlarge"));
    case.pod("a", pod().cpu("1"));
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(c.reason, Reason::Underutilized);
    assert_eq!(targets(c), ["a"]);
    assert!(kept(&plan, "empty").is_some_and(|w| w.starts_with("empty: disruption budget")), "{plan:#?}");
}

#[test]
fn a_drift_budget_of_zero_leaves_an_empty_drifted_node_to_emptiness() {
    let mut case = Case::new();
    case.pool().budgets = vec![
        budget(BudgetNodes::Percent(100)),
        Budget { reasons: Some(vec![Reason::Drifted]), ..budget(BudgetNodes::Count(0)) },
    ];
    case.node(node("a").hash("h0"));
    let plan = case.plan();
    assert_eq!(reasons(&plan), [Reason::Empty]);
    assert!(kept(&plan, "a").is_some_and(|w| w.starts_with("drifted: disruption budget")), "{plan:#?}");
}

#[test]
fn a_cron_budget_applies_only_inside_its_window() {
    let mut case = Case::new();
    case.pool().budgets = vec![Budget {
        nodes: BudgetNodes::Count(0),
        schedule: Some(CronSchedule::parse("0 9 * * mon-fri").unwrap()),
        duration: Some(secs(8 * HOUR)),
        reasons: None,
    }];
    empties(&mut case, 2);
    for (wall, blocked) in [
        ("2026-01-05T08:59:59Z", false),
        ("2026-01-05T09:00:00Z", true),
        ("2026-01-05T16:59:59Z", true),
        ("2026-01-05T17:00:00Z", false),
        ("2026-01-10T12:00:00Z", false),
    ] {
        case.wall = at(wall);
        let plan = case.plan();
        assert_eq!(plan.commands.is_empty(), blocked, "{wall}: {plan:#?}");
    }
}

#[test]
fn nodes_not_ready_or_disrupting_use_up_the_budget() {
    let mut case = Case::new();
    case.pool().budgets = vec![budget(BudgetNodes::Count(2))];
    empties(&mut case, 2);
    case.node(node("booting").not_ready());
    assert_eq!(only(&case.plan()).targets.len(), 1);
    case.node(node("draining").disrupting());
    assert!(case.plan().commands.is_empty());
}

#[test]
fn budgets_are_per_pool() {
    let mut case = Case::new();
    case.pool().budgets = vec![budget(BudgetNodes::Count(1))];
    case.add_pool("other");
    empties(&mut case, 2);
    case.node(node("o1").pool("other")).node(node("o2").pool("other"));
    let plan = case.plan();
    assert_eq!(only(&plan).targets.len(), 3, "{plan:#?}");
}

#[test]
fn a_budget_limits_multi_node_consolidation() {
    let mut case = Case::new();
    case.pool().budgets = vec![budget(BudgetNodes::Count(2))];
    for n in ["a", "b", "c", "d"] {
        case.node(node(n));
        case.pod(n, pod().cpu("500m"));
    }
    let plan = case.plan();
    let c = only(&plan);
    assert_eq!(c.reason, Reason::Underutilized);
    assert_eq!(c.targets.len(), 2, "{c:#?}");
}

/// NodePool budgets name only Underutilized, Empty and Drifted: a budget for those reasons does
/// not limit expiration, a budget for every reason does.
#[test]
fn only_a_budget_for_every_reason_limits_expiration() {
    let cluster = |reasons: Option<Vec<Reason>>| {
        let mut case = Case::new();
        case.pool().consolidate_after = None;
        case.pool().expire_after = Some(secs(HOUR));
        case.pool().budgets = vec![Budget { reasons, ..budget(BudgetNodes::Count(0)) }];
        case.node(node("a"));
        case.pod("a", pod().cpu("1"));
        case.plan()
    };
    let named = cluster(Some(vec![Reason::Underutilized, Reason::Empty, Reason::Drifted]));
    assert_eq!(reasons(&named), [Reason::Expired]);
    let every = cluster(None);
    assert!(every.commands.is_empty(), "{every:#?}");
    assert!(kept(&every, "a").is_some_and(|w| w.starts_with("expired: disruption budget")), "{every:#?}");
}
