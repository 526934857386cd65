//! Interruption notices: what EC2 tells before it takes an instance away (a spot interruption
//! warning, a rebalance recommendation, a scheduled change, a state change), as read from the
//! interruption queue.

use serde::{Deserialize, Serialize};

/// What a rebalance recommendation does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RebalancePolicy {
    /// Launch a replacement at once and drain the node once it is ready, within the NodePool's
    /// disruption budgets and `karpenter.sh/do-not-disrupt` (the default).
    #[default]
    Replace,
    /// Record it as a decision and do nothing else (Karpenter's behaviour).
    Record,
}

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
    /// What happened.
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
    /// EC2 takes the spot instance back in two minutes.
    SpotInterruption,
    /// The spot instance is at elevated risk of interruption.
    RebalanceRecommendation,
    /// AWS Health: scheduled maintenance (a retirement, a reboot) of the instance.
    ScheduledChange,
    /// The instance changed state (stopping, terminated, …).
    StateChange,
    /// The capacity reservation the instance runs in takes it back.
    CapacityReservationInterruption,
}

impl Kind {
    /// The kind's name in decisions, events and logs.
    pub fn label(self) -> &'static str {
        match self {
            Kind::SpotInterruption => "spot-interruption",
            Kind::RebalanceRecommendation => "rebalance-recommendation",
            Kind::ScheduledChange => "scheduled-change",
            Kind::StateChange => "state-change",
            Kind::CapacityReservationInterruption => "capacity-reservation-interruption",
        }
    }
}

impl Event {
    /// Whether the event means the instances go away: every kind but a rebalance
    /// recommendation, and a state change only to `stopping`, `stopped`, `shutting-down` or
    /// `terminated`.
    pub fn takes_instances_away(&self) -> bool {
        match self.kind {
            Kind::RebalanceRecommendation => false,
            Kind::StateChange => {
                matches!(self.state.as_deref(), Some("stopping" | "stopped" | "shutting-down" | "terminated"))
            }
            _ => true,
        }
    }
}

/// Reads the body of a queue message: an EventBridge event (`version` `"0"`, `source`,
/// `detail-type`, `detail`) as EC2 and AWS Health send them. `Err` says why the message is not
/// one capstan acts on (bad JSON, another version, an unknown source or detail-type, a Health
/// event of another service or category, no instance id).
pub fn parse(body: &str) -> Result<Event, String> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let text = |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_str()).map(str::to_string);
    match text(&v, "version").as_deref() {
        Some("0") => {}
        other => return Err(format!("not an EventBridge event of version 0 (version {other:?})")),
    }
    let source = text(&v, "source").unwrap_or_default();
    let detail_type = text(&v, "detail-type").unwrap_or_default();
    let detail = v.get("detail").cloned().unwrap_or_default();
    let kind = match (source.as_str(), detail_type.as_str()) {
        ("aws.ec2", "EC2 Spot Instance Interruption Warning") => Kind::SpotInterruption,
        ("aws.ec2", "EC2 Instance Rebalance Recommendation") => Kind::RebalanceRecommendation,
        ("aws.ec2", "EC2 Instance State-change Notification") => Kind::StateChange,
        ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning") => Kind::CapacityReservationInterruption,
        ("aws.health", "AWS Health Event") => Kind::ScheduledChange,
        _ => return Err(format!("unknown event: source {source:?}, detail-type {detail_type:?}")),
    };
    let instance_ids: Vec<String> = if kind == Kind::ScheduledChange {
        let service = text(&detail, "service").unwrap_or_default();
        let category = text(&detail, "eventTypeCategory").unwrap_or_default();
        if service != "EC2" || category != "scheduledChange" {
            return Err(format!(
                "AWS Health event of service {service:?}, category {category:?}: not an EC2 scheduled change"
            ));
        }
        let entities = detail.get("affectedEntities").and_then(|e| e.as_array()).cloned().unwrap_or_default();
        entities.iter().filter_map(|e| text(e, "entityValue")).filter(|id| id.starts_with("i-")).collect()
    } else {
        text(&detail, "instance-id").into_iter().collect()
    };
    if instance_ids.is_empty() {
        return Err(format!("{detail_type} names no instance"));
    }
    let state = (kind == Kind::StateChange).then(|| text(&detail, "state")).flatten();
    Ok(Event { kind, instance_ids, state, time: text(&v, "time") })
}

/// A spot interruption warning for `instance_id` in the shape EC2 sends through EventBridge,
/// for the simulated cloud (and tests): it goes through [`parse`] like a real one.
pub fn spot_warning(instance_id: &str, region: &str, time: &str) -> String {
    serde_json::json!({
        "version": "0",
        "id": format!("spot-{instance_id}"),
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": time,
        "region": region,
        "resources": [format!("arn:aws:ec2:{region}:123456789012:instance/{instance_id}")],
        "detail": {"instance-id": instance_id, "instance-action": "terminate"},
    })
    .to_string()
}

#[cfg(test)]
mod tests;
