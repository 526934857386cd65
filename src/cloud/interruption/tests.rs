//! The parser on each event in the shape AWS documents for it, and on what it must refuse.

use serde_json::{Value, json};

use super::*;

fn event(source: &str, detail_type: &str, detail: Value) -> String {
    json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-11-30T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-1234567890abcdef0"],
        "detail": detail,
    })
    .to_string()
}

fn ok(kind: Kind, ids: &[&str], state: Option<&str>) -> Result<Event, String> {
    Ok(Event {
        kind,
        instance_ids: ids.iter().map(|s| s.to_string()).collect(),
        state: state.map(str::to_string),
        time: Some("2026-11-30T12:00:00Z".into()),
    })
}

#[test]
fn a_spot_interruption_warning() {
    let body = event(
        "aws.ec2",
        "EC2 Spot Instance Interruption Warning",
        json!({"instance-id": "i-1234567890abcdef0", "instance-action": "terminate"}),
    );
    assert_eq!(parse(&body), ok(Kind::SpotInterruption, &["i-1234567890abcdef0"], None));
    assert!(parse(&body).unwrap().takes_instances_away());
}

#[test]
fn the_simulators_warning_reads_as_a_real_one() {
    let e = parse(&spot_warning("i-00000000000000001", "us-east-1", "2026-11-30T12:00:00Z")).unwrap();
    assert_eq!(e.kind, Kind::SpotInterruption);
    assert_eq!(e.instance_ids, ["i-00000000000000001"]);
}

#[test]
fn a_rebalance_recommendation_does_not_take_the_instance_away() {
    let body = event("aws.ec2", "EC2 Instance Rebalance Recommendation", json!({"instance-id": "i-1234567890abcdef0"}));
    assert_eq!(parse(&body), ok(Kind::RebalanceRecommendation, &["i-1234567890abcdef0"], None));
    assert!(!parse(&body).unwrap().takes_instances_away());
}

#[test]
fn a_state_change_takes_the_instance_away_only_when_it_stops_or_terminates() {
    for (state, away) in [
        ("pending", false),
        ("running", false),
        ("stopping", true),
        ("stopped", true),
        ("shutting-down", true),
        ("terminated", true),
    ] {
        let body = event(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-1234567890abcdef0", "state": state}),
        );
        let e = parse(&body);
        assert_eq!(e, ok(Kind::StateChange, &["i-1234567890abcdef0"], Some(state)));
        assert_eq!(e.unwrap().takes_instances_away(), away, "{state}");
    }
}

#[test]
fn a_capacity_reservation_interruption() {
    let body = event(
        "aws.ec2",
        "EC2 Capacity Reservation Instance Interruption Warning",
        json!({"instance-id": "i-1234567890abcdef0", "capacity-reservation-id": "cr-0123456789abcdef0"}),
    );
    assert_eq!(parse(&body), ok(Kind::CapacityReservationInterruption, &["i-1234567890abcdef0"], None));
}

fn health(service: &str, category: &str) -> String {
    event(
        "aws.health",
        "AWS Health Event",
        json!({
            "eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/x",
            "service": service,
            "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
            "eventTypeCategory": category,
            "startTime": "Mon, 07 Dec 2026 12:00:00 GMT",
            "eventDescription": [{"language": "en_US", "latestDescription": "retirement"}],
            "affectedEntities": [
                {"entityValue": "i-0aaaaaaaaaaaaaaa1"},
                {"entityValue": "i-0aaaaaaaaaaaaaaa2"},
            ],
        }),
    )
}

#[test]
fn a_scheduled_change_names_every_affected_instance() {
    assert_eq!(
        parse(&health("EC2", "scheduledChange")),
        ok(Kind::ScheduledChange, &["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"], None)
    );
}

#[test]
fn health_events_of_another_service_or_category_are_refused() {
    for (service, category) in [("RDS", "scheduledChange"), ("EC2", "issue"), ("EC2", "accountNotification")] {
        let e = parse(&health(service, category)).unwrap_err();
        assert!(e.contains("not an EC2 scheduled change"), "{e}");
    }
}

#[test]
fn unknown_sources_and_detail_types_are_refused() {
    let id = json!({"instance-id": "i-1234567890abcdef0"});
    for (source, detail_type) in [
        ("aws.ec2", "EC2 Instance Launch Successful"),
        ("aws.autoscaling", "EC2 Instance-terminate Lifecycle Action"),
        ("custom.app", "EC2 Spot Instance Interruption Warning"),
    ] {
        let e = parse(&event(source, detail_type, id.clone())).unwrap_err();
        assert!(e.starts_with("unknown event"), "{e}");
    }
}

#[test]
fn bad_json_another_version_and_no_instance_are_refused() {
    assert!(parse("{not json").unwrap_err().starts_with("not JSON"));
    assert!(parse("").unwrap_err().starts_with("not JSON"));
    let mut v: Value = serde_json::from_str(&event(
        "aws.ec2",
        "EC2 Spot Instance Interruption Warning",
        json!({"instance-id": "i-1"}),
    ))
    .unwrap();
    v["version"] = json!("1");
    assert!(parse(&v.to_string()).unwrap_err().contains("version"));
    v.as_object_mut().unwrap().remove("version");
    assert!(parse(&v.to_string()).unwrap_err().contains("version"));
    let none = event("aws.ec2", "EC2 Spot Instance Interruption Warning", json!({"instance-action": "terminate"}));
    assert!(parse(&none).unwrap_err().contains("names no instance"));
    // An SQS test message or a raw string is not an event either.
    assert!(parse(r#"{"Type":"Notification","Message":"hi"}"#).is_err());
}
