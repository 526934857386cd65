//! The interruption queue against a real SQS API (moto): `AwsCloud::notices` reads what was sent
//! (by SendMessage, and through an EventBridge rule whose target is the queue), by queue name and
//! by URL; `acknowledge` deletes a message and only that one; a missing queue is a typed error.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use capstan::cloud::CloudError;
use capstan::cloud::aws::provider::AwsCloud;
use capstan::cloud::aws::sqs::{self, Reader};
use capstan::cloud::aws::{self, Endpoint};
use capstan::cloud::interruption::{Kind, Notice, spot_warning};
use capstan::cloud::provider::CloudProvider;
use capstan::scheduling::builtin;
use serde_json::json;

use crate::aws_catalog::moto;

/// A queue name no other test uses (SQS names: letters, digits, `-` and `_`).
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{nanos}")
}

async fn client() -> aws_sdk_sqs::Client {
    sqs::client(Some("us-east-1".into()), Some(moto())).await
}

/// An `AwsCloud` whose only working part is the interruption queue `queue`.
async fn cloud(queue: &str) -> AwsCloud {
    let ep = Endpoint { url: Some(moto()), region: Some("us-east-1".into()) };
    let mut c =
        AwsCloud::new(aws::ec2(&ep).await, aws::ssm(&ep).await, "q.example.com", BTreeMap::new(), builtin::catalog());
    c.interruptions = Some(Reader::start(client().await, queue));
    c
}

/// Notices until `n` have arrived (a few seconds at most).
async fn read(cloud: &AwsCloud, n: usize) -> Vec<Notice> {
    let mut got = Vec::new();
    for _ in 0..100 {
        got.extend(cloud.notices().await.expect("notices"));
        if got.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got.len(), n, "{got:?}");
    got
}

/// (visible, in flight) messages of the queue at `url`.
async fn counts(c: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = c
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes().unwrap();
    let n = |a: A| attrs.get(&a).and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    (n(A::ApproximateNumberOfMessages), n(A::ApproximateNumberOfMessagesNotVisible))
}

async fn queue(c: &aws_sdk_sqs::Client) -> (String, String) {
    let name = unique("capstan-interruption");
    let url = c.create_queue().queue_name(&name).send().await.unwrap().queue_url().unwrap().to_string();
    (name, url)
}

#[tokio::test]
async fn notices_are_read_by_name_and_by_url_and_acknowledged_one_by_one() {
    let c = client().await;
    for by_url in [false, true] {
        let (name, url) = queue(&c).await;
        for id in ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"] {
            let body = spot_warning(id, "us-east-1", "2026-11-30T12:00:00Z");
            c.send_message().queue_url(&url).message_body(body).send().await.unwrap();
        }
        c.send_message().queue_url(&url).message_body("not an event").send().await.unwrap();
        let cloud = cloud(if by_url { &url } else { &name }).await;
        let got = read(&cloud, 3).await;
        let mut ids: Vec<&str> =
            got.iter().filter_map(|n| n.event.as_ref().ok()).map(|e| e.instance_ids[0].as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"], "by url: {by_url}");
        assert!(got.iter().filter_map(|n| n.event.as_ref().ok()).all(|e| e.kind == Kind::SpotInterruption));
        assert_eq!(got.iter().filter(|n| n.event.is_err()).count(), 1);
        assert!(got.iter().all(|n| !n.message_id.is_empty() && !n.receipt.is_empty()));
        // Received and hidden; acknowledging two deletes those two, the third stays in flight.
        assert_eq!(counts(&c, &url).await, (0, 3));
        for n in got.iter().filter(|n| n.event.is_ok()) {
            cloud.acknowledge(&n.receipt).await.expect("acknowledge");
        }
        assert_eq!(counts(&c, &url).await, (0, 1), "by url: {by_url}");
    }
}

#[tokio::test]
async fn a_missing_queue_is_a_typed_error() {
    let cloud = cloud(&unique("no-such-queue")).await;
    let mut last = Ok(Vec::new());
    for _ in 0..100 {
        last = cloud.notices().await;
        if last.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match last {
        Err(CloudError::InvalidConfig(m)) => assert!(m.contains("aws.interruption.queue"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// One EventBridge call (JSON 1.1) to moto; moto routes it by the credential scope.
fn events(action: &str, body: serde_json::Value) -> serde_json::Value {
    let u = url::Url::parse(&moto()).unwrap();
    let (host, port) = (u.host_str().unwrap().to_string(), u.port().unwrap_or(80));
    let body = body.to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: AWSEvents.{action}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/events/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = std::net::TcpStream::connect((host.as_str(), port)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, payload) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"), "{action}: {answer}");
    serde_json::from_str(payload).unwrap_or_default()
}

#[tokio::test]
async fn a_warning_routed_by_an_eventbridge_rule_reads_as_one() {
    let c = client().await;
    let (name, url) = queue(&c).await;
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = c.get_queue_attributes().queue_url(&url).attribute_names(A::QueueArn).send().await.unwrap();
    let arn = attrs.attributes().unwrap().get(&A::QueueArn).unwrap().clone();
    let rule = format!("{name}-SpotInterruption");
    let pattern = json!({"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]});
    events("PutRule", json!({"Name": rule, "EventPattern": pattern.to_string()}));
    events("PutTargets", json!({"Rule": rule, "Targets": [{"Id": "1", "Arn": arn}]}));
    let detail = json!({"instance-id": "i-0bbbbbbbbbbbbbbb1", "instance-action": "terminate"});
    let put = events(
        "PutEvents",
        json!({"Entries": [
            {"Source": "aws.ec2", "DetailType": "EC2 Spot Instance Interruption Warning", "Detail": detail.to_string()},
            // Matches no rule: never reaches the queue.
            {"Source": "aws.ec2", "DetailType": "EC2 Instance Launch Successful", "Detail": "{}"},
        ]}),
    );
    assert_eq!(put["FailedEntryCount"], 0, "{put}");
    let cloud = cloud(&name).await;
    // The reader says a message waits (the daemon runs a pass for it), without handing it over.
    let reader = cloud.interruptions.as_ref().unwrap();
    for _ in 0..100 {
        if reader.waiting() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reader.waiting(), "the warning arrived");
    let got = read(&cloud, 1).await;
    assert!(!reader.waiting(), "taken");
    let e = got[0].event.as_ref().expect("parsed");
    assert_eq!(e.kind, Kind::SpotInterruption);
    assert_eq!(e.instance_ids, ["i-0bbbbbbbbbbbbbbb1"]);
    cloud.acknowledge(&got[0].receipt).await.unwrap();
    assert_eq!(counts(&c, &url).await, (0, 0));
}

#[tokio::test]
async fn a_storm_is_read_in_one_round_and_hidden_for_two_minutes() {
    let c = client().await;
    let (name, url) = queue(&c).await;
    for n in 0..25 {
        let body = spot_warning(&format!("i-0{n:016x}"), "us-east-1", "2026-11-30T12:00:00Z");
        c.send_message().queue_url(&url).message_body(body).send().await.unwrap();
    }
    let cloud = cloud(&name).await;
    let reader = cloud.interruptions.as_ref().unwrap();
    // One round reads past SQS's ten a call, without a pass asking again.
    for _ in 0..200 {
        if counts(&c, &url).await == (0, 25) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counts(&c, &url).await, (0, 25));
    assert!(reader.waiting());
    assert_eq!(cloud.notices().await.unwrap().len(), 25);
    assert_eq!(sqs::VISIBILITY, Duration::from_secs(120));
}

/// A reader outlives the runtime its task ran on: the next call says so and starts it again.
#[test]
fn a_reader_whose_task_ended_starts_it_again() {
    let first = tokio::runtime::Runtime::new().unwrap();
    let (c, name, url) = first.block_on(async {
        let c = client().await;
        let (name, url) = queue(&c).await;
        (c, name, url)
    });
    let cloud = first.block_on(cloud(&name));
    drop(first);
    let second = tokio::runtime::Runtime::new().unwrap();
    drop(c);
    second.block_on(async {
        let c = client().await;
        let body = spot_warning("i-0ccccccccccccccc1", "us-east-1", "2026-11-30T12:00:00Z");
        c.send_message().queue_url(&url).message_body(body).send().await.unwrap();
        match cloud.notices().await {
            Err(CloudError::Api(m)) => assert!(m.contains("started again"), "{m}"),
            other => panic!("{other:?}"),
        }
        // The new task reads (a connection of the old runtime may fail once, and is retried).
        let mut got = Vec::new();
        for _ in 0..400 {
            got.extend(cloud.notices().await.unwrap_or_default());
            if !got.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].event.as_ref().unwrap().instance_ids, ["i-0ccccccccccccccc1"]);
    });
}
