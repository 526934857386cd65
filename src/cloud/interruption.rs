//! Interruption notices: what EC2 tells before it takes an instance away (a spot interruption
//! warning, a rebalance recommendation, a scheduled change, a state change), as read from the
//! interruption queue.

use serde::Serialize;

/// One message read from the interruption queue and not yet deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// What deletes the message (SQS's receipt handle; the simulator's message id).
    pub receipt: String,
    /// The queue's id of the message, for the record.
    pub message_id: String,
    /// What the message says; an unreadable or unknown message is `Err(why)`: logged and deleted.
    pub event: Result<Event, String>,
}

/// An interruption event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub kind: Kind,
    /// The instances it concerns.
    pub instance_ids: Vec<String>,
    /// The instance state of a state-change notification (`stopping`, `terminated`, …).
    pub state: Option<String>,
    /// The event's own time, as the message gives it.
    pub time: Option<String>,
}

/// The kinds of event Karpenter's interruption handling knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    SpotInterruption,
    RebalanceRecommendation,
    ScheduledChange,
    StateChange,
    CapacityReservationInterruption,
}
