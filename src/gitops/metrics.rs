//! Prometheus metrics of the Git follower: the revision in force, fetches, rejections.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevisionLabels {
    pub revision: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `fetch` (the source could not be read) or `rejected` (signature or validation).
    pub reason: &'static str,
}

impl ReasonLabels {
    /// Every reason a failure is counted under.
    pub const REASONS: [&'static str; 2] = ["fetch", "rejected"];
}

#[derive(Debug, Clone, Default)]
pub struct GitMetrics {
    /// 1 for the revision in force, 0 for the one it replaced.
    pub applied: Family<RevisionLabels, Gauge>,
    pub fetches: Counter,
    pub failures: Family<ReasonLabels, Counter>,
}

impl GitMetrics {
    /// Creates the families and registers them under `capstan_policy_*`.
    pub fn register(registry: &mut Registry) -> GitMetrics {
        let m = GitMetrics::default();
        registry.register(
            "capstan_policy_revision_applied",
            "The policy revision in force (value 1), labelled branch@sha1:sha",
            m.applied.clone(),
        );
        registry.register("capstan_policy_fetches", "Fetches of the config repository", m.fetches.clone());
        // Every reason at 0 from the start, so a failure is an increase, not a new series.
        for reason in ReasonLabels::REASONS {
            let _ = m.failures.get_or_create(&ReasonLabels { reason });
        }
        registry.register(
            "capstan_policy_failures",
            "Fetches that failed and revisions rejected, by reason",
            m.failures.clone(),
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_reason_shows_zero_before_the_first_failure() {
        let mut registry = Registry::default();
        GitMetrics::register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for reason in ReasonLabels::REASONS {
            assert!(text.contains(&format!("capstan_policy_failures_total{{reason=\"{reason}\"}} 0\n")), "{text}");
        }
    }
}
