//! Prometheus metrics of the rollout, per cluster.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::gate::StepKind;
use super::record::{Phase, Record};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    pub cluster: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevisionLabels {
    pub cluster: String,
    pub revision: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub cluster: String,
    pub state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub cluster: String,
    pub step: String,
}

#[derive(Debug, Clone, Default)]
pub struct RolloutMetrics {
    pub in_force: Family<RevisionLabels, Gauge>,
    pub state: Family<StateLabels, Gauge>,
    pub soak_seconds: Family<ClusterLabels, Gauge>,
    pub halts: Family<ClusterLabels, Counter>,
    pub rollbacks: Family<ClusterLabels, Counter>,
    pub steps: Family<StepLabels, Counter>,
}

impl RolloutMetrics {
    pub fn register(registry: &mut Registry) -> RolloutMetrics {
        let m = RolloutMetrics::default();
        registry.register("capstan_fleet_revision_in_force", "The revision in force (1)", m.in_force.clone());
        registry.register(
            "capstan_fleet_wave_state",
            "The cluster's rollout state (1 for the current)",
            m.state.clone(),
        );
        registry.register(
            "capstan_fleet_soak_seconds",
            "How long the revision in force has been healthy in its soak",
            m.soak_seconds.clone(),
        );
        registry.register("capstan_fleet_halts", "Revisions halted by this cluster", m.halts.clone());
        registry.register("capstan_fleet_rollbacks", "Rollbacks to the last-known-good revision", m.rollbacks.clone());
        registry.register("capstan_fleet_steps", "Rollout steps, by kind", m.steps.clone());
        m
    }

    /// Creates this cluster's halt and rollback counters at 0, so they show before the first
    /// rollout pass (and an alert on their increase has a series to start from).
    pub fn for_cluster(self, cluster: &str) -> RolloutMetrics {
        let labels = ClusterLabels { cluster: cluster.to_string() };
        let _ = self.halts.get_or_create(&labels);
        let _ = self.rollbacks.get_or_create(&labels);
        self
    }

    /// Sets the gauges from a record; counts the steps of a pass.
    pub fn observe(&self, rec: &Record, steps: &[StepKind], soak_seconds: i64) {
        let cluster = rec.cluster.clone();
        self.in_force.clear();
        if let Some(f) = &rec.in_force {
            self.in_force
                .get_or_create(&RevisionLabels { cluster: cluster.clone(), revision: f.revision.clone() })
                .set(1);
        }
        for p in Phase::ALL {
            let on = i64::from(p == rec.phase);
            self.state.get_or_create(&StateLabels { cluster: cluster.clone(), state: p.label().into() }).set(on);
        }
        self.soak_seconds.get_or_create(&ClusterLabels { cluster: cluster.clone() }).set(soak_seconds);
        let labels = ClusterLabels { cluster: cluster.clone() };
        self.halts.get_or_create(&labels).inc_by(0);
        self.rollbacks.get_or_create(&labels).inc_by(0);
        for s in steps {
            match s {
                StepKind::Halted => self.halts.get_or_create(&labels).inc(),
                StepKind::RolledBack => self.rollbacks.get_or_create(&labels).inc(),
                _ => 0,
            };
            self.steps.get_or_create(&StepLabels { cluster: cluster.clone(), step: s.label().into() }).inc();
        }
    }
}
