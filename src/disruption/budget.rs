//! Disruption budgets: how many of a NodePool's nodes may be disrupted now, for a reason.
//! Karpenter's arithmetic: the smallest active budget, a percentage of the pool's nodes rounded
//! up, less the nodes already being disrupted or not Ready.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::rules::{Budget, Reason};

/// Whether `budget` is in force at `now` (a cron window `[fire, fire + duration)`).
pub fn active(budget: &Budget, now: DateTime<Utc>) -> bool {
    let Some(schedule) = &budget.schedule else { return true };
    let duration = budget.duration.unwrap_or(Duration::ZERO);
    let Ok(cron) = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(schedule.as_str())
    else {
        return false;
    };
    let Ok(fire) = cron.find_previous_occurrence(&now, true) else { return false };
    let end = fire + chrono::Duration::from_std(duration).unwrap_or_default();
    fire <= now && now < end
}

/// Nodes of a pool that may still be disrupted for `reason`: `total` nodes in the pool, of which
/// `busy` are being disrupted or not Ready. Only voluntary disruptions ask: an interruption is
/// involuntary (the instance goes whatever capstan does) and no budget limits it, as in
/// Karpenter.
pub fn allowed(budgets: &[Budget], reason: Reason, total: u64, busy: u64, now: DateTime<Utc>) -> u64 {
    budgets
        .iter()
        .filter(|b| b.reasons.as_ref().is_none_or(|rs| rs.contains(&reason)))
        .filter(|b| active(b, now))
        .map(|b| b.nodes.allowed(total))
        .min()
        .map_or(total, |a| a.saturating_sub(busy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::meta::CronSchedule;
    use crate::policy::nodepool::BudgetNodes;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn business_hours_window_blocks_underutilized_only() {
        let budgets = vec![
            Budget { nodes: BudgetNodes::Percent(10), schedule: None, duration: None, reasons: None },
            Budget {
                nodes: BudgetNodes::Count(0),
                schedule: Some(CronSchedule::parse("0 9 * * mon-fri").unwrap()),
                duration: Some(Duration::from_secs(8 * 3600)),
                reasons: Some(vec![Reason::Underutilized, Reason::Drifted]),
            },
        ];
        let monday_noon = at("2026-01-05T12:00:00Z");
        let monday_night = at("2026-01-05T20:00:00Z");
        let saturday_noon = at("2026-01-10T12:00:00Z");
        assert_eq!(allowed(&budgets, Reason::Underutilized, 15, 0, monday_noon), 0);
        assert_eq!(allowed(&budgets, Reason::Empty, 15, 0, monday_noon), 2, "10% of 15 rounds up to 2");
        assert_eq!(allowed(&budgets, Reason::Underutilized, 15, 0, monday_night), 2);
        assert_eq!(allowed(&budgets, Reason::Underutilized, 15, 1, saturday_noon), 1);
        assert_eq!(allowed(&budgets, Reason::Drifted, 15, 3, saturday_noon), 0);
    }

    #[test]
    fn a_rebalance_is_limited_by_the_budgets_for_every_reason_only() {
        let none = Budget { nodes: BudgetNodes::Count(0), schedule: None, duration: None, reasons: None };
        let drift = Budget { reasons: Some(vec![Reason::Drifted]), ..none.clone() };
        let one = Budget { nodes: BudgetNodes::Count(1), ..none.clone() };
        let now = at("2026-01-05T12:00:00Z");
        assert_eq!(allowed(std::slice::from_ref(&none), Reason::Rebalance, 4, 0, now), 0);
        assert_eq!(allowed(std::slice::from_ref(&drift), Reason::Rebalance, 4, 0, now), 4);
        assert_eq!(allowed(std::slice::from_ref(&one), Reason::Rebalance, 4, 0, now), 1);
        assert_eq!(allowed(&[one], Reason::Rebalance, 4, 1, now), 0, "less those being disrupted");
    }
}
