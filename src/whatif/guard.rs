//! Outcome guardrails: `guardrails.yaml`'s `spec.simulation` limits checked against what the
//! head revision's replay showed. A pure function of the two runs.

use super::{Breach, Run, change_pct};
use crate::policy::capstan::SimulationGuardrails;

/// The limits `head` crosses, against `base`, over a trace of `seconds`.
pub fn check(rules: &SimulationGuardrails, base: &Run, head: &Run, seconds: u64) -> Vec<Breach> {
    let mut out = Vec::new();
    if let Some(max) = rules.max_cost_increase_percent {
        let rise = match change_pct(base.cost_usd, head.cost_usd) {
            Some(p) => Some(p),
            // From nothing to something is an unbounded rise.
            None if head.cost_usd > 0.005 => Some(f64::INFINITY),
            None => None,
        };
        if let Some(p) = rise.filter(|p| *p > max) {
            out.push(Breach {
                rule: "maxCostIncreasePercent".into(),
                limit: format!("{max} %"),
                actual: if p.is_finite() { format!("{p:+.1} %") } else { "from $0".into() },
                message: format!(
                    "cost rises from ${:.2} to ${:.2} over the trace, more than the {max} % allowed",
                    base.cost_usd, head.cost_usd
                ),
            });
        }
    }
    if let Some(max) = &rules.max_pending_p99 {
        let limit = max.duration().as_secs_f64();
        if head.pending.p99 > limit {
            out.push(Breach {
                rule: "maxPendingP99".into(),
                limit: max.to_string(),
                actual: format!("{:.0}s", head.pending.p99),
                message: format!(
                    "99 % of pods wait up to {:.0}s for a node, longer than the {max} allowed",
                    head.pending.p99
                ),
            });
        }
    }
    if let Some(max) = rules.max_disruptions_per_hour {
        let rate = head.disruptions_per_hour(seconds);
        if rate > max {
            out.push(Breach {
                rule: "maxDisruptionsPerHour".into(),
                limit: format!("{max}/h"),
                actual: format!("{rate:.2}/h"),
                message: format!("{} nodes disrupted ({rate:.2} per hour), more than {max} per hour", head.disrupted()),
            });
        }
    }
    if let Some(max) = rules.max_pods_never_scheduled
        && head.pods_never_scheduled as u64 > max
    {
        out.push(Breach {
            rule: "maxPodsNeverScheduled".into(),
            limit: max.to_string(),
            actual: head.pods_never_scheduled.to_string(),
            message: format!("{} pods never got a node, more than the {max} allowed", head.pods_never_scheduled),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::duration::GoDuration;

    fn run(cost: f64, p99: f64, disrupted: usize, never: usize) -> Run {
        let mut r = Run { cost_usd: cost, pods_never_scheduled: never, ..Run::default() };
        r.pending.p99 = p99;
        r.disruptions.insert("empty".into(), disrupted);
        r
    }

    #[test]
    fn each_rule_breaks_only_past_its_limit() {
        let rules = SimulationGuardrails {
            max_cost_increase_percent: Some(10.0),
            max_pending_p99: GoDuration::parse("2m"),
            max_disruptions_per_hour: Some(1.0),
            max_pods_never_scheduled: Some(0),
        };
        let base = run(100.0, 60.0, 1, 0);
        assert!(check(&rules, &base, &run(110.0, 120.0, 24, 0), 24 * 3600).is_empty());
        let broken = check(&rules, &base, &run(110.5, 121.0, 25, 1), 24 * 3600);
        let names: Vec<&str> = broken.iter().map(|b| b.rule.as_str()).collect();
        assert_eq!(
            names,
            ["maxCostIncreasePercent", "maxPendingP99", "maxDisruptionsPerHour", "maxPodsNeverScheduled"]
        );
    }

    #[test]
    fn a_cost_from_nothing_breaks_any_increase_limit() {
        let rules = SimulationGuardrails { max_cost_increase_percent: Some(1000.0), ..Default::default() };
        assert_eq!(check(&rules, &run(0.0, 0.0, 0, 0), &run(1.0, 0.0, 0, 0), 3600).len(), 1);
        assert!(check(&rules, &run(0.0, 0.0, 0, 0), &run(0.0, 0.0, 0, 0), 3600).is_empty());
    }
}
