//! `Metered<P>`: Prometheus metrics for any provider — calls, errors and latency by operation.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::CloudError;
use super::interruption::Notice;
use super::provider::{Avoid, CloudProvider, Created, Instance, NodeClaim, Tidied};
use crate::scheduling::catalog::Catalog;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub operation: &'static str,
    pub kind: &'static str,
}

/// The metric families a `Metered` provider feeds.
#[derive(Debug, Clone)]
pub struct CloudMetrics {
    pub calls: Family<OpLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub latency: Family<OpLabels, Histogram>,
}

impl CloudMetrics {
    /// Creates the families and registers them under `capstan_cloud_*`.
    pub fn register(registry: &mut Registry) -> CloudMetrics {
        let m = CloudMetrics {
            calls: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16))),
        };
        // Every operation's calls and every error it can count, at 0 from the start.
        for operation in OPERATIONS {
            let _ = m.calls.get_or_create(&OpLabels { operation });
            for kind in ERROR_KINDS {
                let _ = m.errors.get_or_create(&ErrorLabels { operation, kind });
            }
        }
        registry.register("capstan_cloud_calls", "Cloud provider calls by operation", m.calls.clone());
        registry.register("capstan_cloud_errors", "Cloud provider errors by operation and kind", m.errors.clone());
        registry.register("capstan_cloud_call_seconds", "Cloud provider call latency by operation", m.latency.clone());
        m
    }
}

/// The operations a `Metered` provider measures.
pub const OPERATIONS: [&str; 8] = ["catalog", "create", "delete", "get", "list", "notices", "acknowledge", "tidy"];

/// Every label [`error_kind`] gives.
pub const ERROR_KINDS: [&str; 7] =
    ["insufficient_capacity", "not_found", "throttled", "unauthorized", "invalid_config", "dry_run", "api"];

/// The label an error is counted under.
pub fn error_kind(e: &CloudError) -> &'static str {
    match e {
        CloudError::InsufficientCapacity { .. } => "insufficient_capacity",
        CloudError::NotFound(_) => "not_found",
        CloudError::Throttled(_) => "throttled",
        CloudError::Unauthorized(_) => "unauthorized",
        CloudError::InvalidConfig(_) => "invalid_config",
        CloudError::DryRun { .. } => "dry_run",
        CloudError::Api(_) => "api",
    }
}

/// Wraps a provider and measures every call.
#[derive(Debug, Clone)]
pub struct Metered<P> {
    inner: P,
    metrics: CloudMetrics,
}

impl<P> Metered<P> {
    pub fn new(inner: P, metrics: CloudMetrics) -> Metered<P> {
        Metered { inner, metrics }
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }

    async fn measure<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, CloudError>>,
    ) -> Result<T, CloudError> {
        let started = Instant::now();
        let out = call.await;
        let labels = OpLabels { operation };
        self.metrics.calls.get_or_create(&labels).inc();
        self.metrics.latency.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
        if let Err(e) = &out {
            self.metrics.errors.get_or_create(&ErrorLabels { operation, kind: error_kind(e) }).inc();
        }
        out
    }
}

impl<P: CloudProvider> CloudProvider for Metered<P> {
    async fn catalog(&self) -> Result<Catalog, CloudError> {
        self.measure("catalog", self.inner.catalog()).await
    }

    async fn create(&self, claim: &NodeClaim, avoid: &Avoid) -> Result<Created, CloudError> {
        self.measure("create", self.inner.create(claim, avoid)).await
    }

    async fn delete(&self, id: &str) -> Result<(), CloudError> {
        self.measure("delete", self.inner.delete(id)).await
    }

    async fn get(&self, id: &str) -> Result<Instance, CloudError> {
        self.measure("get", self.inner.get(id)).await
    }

    fn cluster_tag(&self) -> Option<String> {
        self.inner.cluster_tag()
    }

    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        self.measure("list", self.inner.list()).await
    }

    async fn notices(&self) -> Result<Vec<Notice>, CloudError> {
        self.measure("notices", self.inner.notices()).await
    }

    async fn acknowledge(&self, receipt: &str) -> Result<(), CloudError> {
        self.measure("acknowledge", self.inner.acknowledge(receipt)).await
    }

    async fn tidy(&self) -> Result<Tidied, CloudError> {
        self.measure("tidy", self.inner.tidy()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_is_counted_at_zero_before_the_first_error() {
        let every = [
            CloudError::InsufficientCapacity { offerings: Vec::new() },
            CloudError::NotFound(String::new()),
            CloudError::Throttled(String::new()),
            CloudError::Unauthorized(String::new()),
            CloudError::InvalidConfig(String::new()),
            CloudError::DryRun { operation: "create", target: String::new() },
            CloudError::Api(String::new()),
        ];
        let kinds: Vec<_> = every.iter().map(error_kind).collect();
        assert_eq!(kinds, ERROR_KINDS);
        let mut registry = Registry::default();
        CloudMetrics::register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for operation in OPERATIONS {
            assert!(text.contains(&format!("capstan_cloud_calls_total{{operation=\"{operation}\"}} 0\n")), "{text}");
            for kind in ERROR_KINDS {
                let line = format!("capstan_cloud_errors_total{{operation=\"{operation}\",kind=\"{kind}\"}} 0\n");
                assert!(text.contains(&line), "{line} missing:\n{text}");
            }
        }
    }
}
