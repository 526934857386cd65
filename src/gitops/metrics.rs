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
        registry.register(
            "capstan_policy_failures",
            "Fetches that failed and revisions rejected, by reason",
            m.failures.clone(),
        );
        m
    }
}
