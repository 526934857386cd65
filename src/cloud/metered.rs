//! `Metered<P>`: Prometheus metrics for any provider — calls, errors and latency by operation.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::CloudError;
use super::provider::{Avoid, CloudProvider, Created, Instance, NodeClaim};
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
        registry.register("capstan_cloud_calls", "Cloud provider calls by operation", m.calls.clone());
        registry.register("capstan_cloud_errors", "Cloud provider errors by operation and kind", m.errors.clone());
        registry.register("capstan_cloud_call_seconds", "Cloud provider call latency by operation", m.latency.clone());
        m
    }
}

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

    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        self.measure("list", self.inner.list()).await
    }
}
