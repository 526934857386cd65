//! The reservation a `reserved` offering carries, and the node labels it gives: plain data the
//! catalog holds. What the scheduler does with reservations is in [`super::reserved`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A reserved offering costs its on-demand price divided by this.
pub const RESERVED_PRICE_DIVISOR: f64 = 10_000_000.0;
/// Node label: the reservation a node was launched into.
pub const RESERVATION_ID_LABEL: &str = "karpenter.k8s.aws/capacity-reservation-id";
/// Node label: `default` or `capacity-block`.
pub const RESERVATION_TYPE_LABEL: &str = "karpenter.k8s.aws/capacity-reservation-type";
/// Node label, present (`"true"`) only on nodes of an interruptible reservation.
pub const RESERVATION_INTERRUPTIBLE_LABEL: &str = "karpenter.k8s.aws/capacity-reservation-interruptible";
/// Every label a node launched into a reservation may carry (and its instance is tagged with).
pub const RESERVATION_LABELS: [&str; 3] =
    [RESERVATION_ID_LABEL, RESERVATION_TYPE_LABEL, RESERVATION_INTERRUPTIBLE_LABEL];

/// The kind of reservation, as EC2 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReservationKind {
    /// An On-Demand Capacity Reservation.
    #[default]
    Default,
    /// A capacity block (for machine learning), reserved for a fixed time.
    CapacityBlock,
}

impl ReservationKind {
    /// The value of [`RESERVATION_TYPE_LABEL`].
    pub fn label(self) -> &'static str {
        match self {
            ReservationKind::Default => "default",
            ReservationKind::CapacityBlock => "capacity-block",
        }
    }
}

/// The reservation behind a `reserved` offering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// `cr-…`: where the launch is targeted.
    pub id: String,
    /// Ordinary reservation or capacity block.
    #[serde(default)]
    pub kind: ReservationKind,
    /// EC2 may take the capacity back (its nodes are labelled so).
    #[serde(default)]
    pub interruptible: bool,
    /// Instances the reservation can still take.
    pub available: u32,
    /// The EC2NodeClasses whose `capacityReservationSelectorTerms` select it: only their
    /// NodePools may plan nodes into it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

impl Reservation {
    /// Whether a NodePool of EC2NodeClass `class` may launch into this reservation.
    pub fn admits(&self, class: &str) -> bool {
        self.classes.iter().any(|c| c == class)
    }

    /// The labels (and instance tags) of a node launched into this reservation.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::from([
            (RESERVATION_ID_LABEL.to_string(), self.id.clone()),
            (RESERVATION_TYPE_LABEL.to_string(), self.kind.label().to_string()),
        ]);
        if self.interruptible {
            out.insert(RESERVATION_INTERRUPTIBLE_LABEL.to_string(), "true".to_string());
        }
        out
    }
}
