//! The daemon's own metrics: what is running (`capstan_build_info`) and whether this replica
//! leads (`capstan_leader`). The tasks' metrics are registered beside them by their modules.

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// The commit the binary was built from, when the build said (`CAPSTAN_COMMIT`).
pub const COMMIT: &str = match option_env!("CAPSTAN_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub commit: &'static str,
}

/// 1 while this replica holds the leader Lease, read from the elector's channel when scraped,
/// so it is never stale (always 1 with the simulated backends).
#[derive(Debug)]
pub struct Leader(pub watch::Receiver<bool>);

impl EncodeMetric for Leader {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&i64::from(*self.0.borrow()))
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// Registers `capstan_build_info` (1, labelled with the version and commit) and
/// `capstan_leader`.
pub fn register(registry: &mut Registry, leading: watch::Receiver<bool>) {
    let build = Family::<BuildLabels, Gauge>::default();
    build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION"), commit: COMMIT }).set(1);
    registry.register("capstan_build_info", "The version and commit running (value 1)", build);
    registry.register("capstan_leader", "1 while this replica holds the leader Lease", Leader(leading));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_is_one_and_leader_follows_the_lease() {
        let (tx, rx) = watch::channel(false);
        let mut registry = Registry::default();
        register(&mut registry, rx);
        let text = || {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
            out
        };
        let line = format!("capstan_build_info{{version=\"{}\",commit=\"{COMMIT}\"}} 1\n", env!("CARGO_PKG_VERSION"));
        assert!(text().contains(&line), "{}", text());
        assert!(text().contains("# TYPE capstan_leader gauge\ncapstan_leader 0\n"), "{}", text());
        tx.send_replace(true);
        assert!(text().contains("capstan_leader 1\n"), "{}", text());
    }
}
