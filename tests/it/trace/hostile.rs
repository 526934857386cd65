//! Traces written to break `simulate`: each is refused at load with its place and field, before
//! any replay runs.

use capstan::trace::parse;

const HEAD: &str = "apiVersion: capstan.io/v1alpha1\nkind: Trace\nmetadata: {name: t}\nspec:\n  duration: 1h\n";

fn web(replicas: &str) -> String {
    format!(
        "  workloads:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: web}}
    spec:
      replicas: {replicas}
      selector: {{matchLabels: {{app: web}}}}
      template:
        metadata: {{labels: {{app: web}}}}
        spec: {{containers: [{{name: c, image: pause, resources: {{requests: {{cpu: 100m}}}}}}]}}
"
    )
}

/// The error for `body` appended to a one-hour trace.
fn refused(body: &str) -> String {
    let text = format!("{HEAD}{body}");
    match parse("t.yaml", text.as_bytes()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(d) => d.to_string(),
    }
}

fn assert_refused(body: &str, wants: &[&str]) {
    let e = refused(body);
    assert!(e.starts_with("t.yaml:"), "{e}");
    for w in wants {
        assert!(e.contains(w), "wanted {w:?} in:\n{e}");
    }
}

#[test]
fn an_event_holds_exactly_one_known_action() {
    let two = format!(
        "{}  events:\n  - {{at: 5m, scale: {{name: web, replicas: 2}}, delete: {{kind: Deployment, name: web}}}}\n",
        web("1")
    );
    assert_refused(&two, &["spec.events[0]", "one action"]);
    let typo = format!("{}  events:\n  - {{at: 5m, scale: {{name: web, replicas: 2}}, typo: 1}}\n", web("1"));
    assert_refused(&typo, &["typo"]);
    assert_refused("  events:\n  - {at: 5m}\n", &["one action"]);
}

#[test]
fn events_act_on_workloads_that_exist_then() {
    assert_refused(
        "  events:\n  - {at: 5m, scale: {name: nosuch, replicas: 2}}\n",
        &["t.yaml:7:", "no Deployment default/nosuch"],
    );
    let deleted = format!(
        "{}  events:\n  - {{at: 5m, delete: {{kind: Deployment, name: web}}}}\n  - {{at: 6m, scale: {{name: web, replicas: 2}}}}\n",
        web("1")
    );
    assert_refused(&deleted, &["spec.events[1].scale.name"]);
    let other_kind =
        format!("{}  events:\n  - {{at: 5m, scale: {{kind: StatefulSet, name: web, replicas: 2}}}}\n", web("1"));
    assert_refused(&other_kind, &["no StatefulSet default/web"]);
}

#[test]
fn an_event_at_the_end_has_no_time_to_act() {
    let at_end = format!("{}  events:\n  - {{at: 1h, scale: {{name: web, replicas: 5}}}}\n", web("1"));
    assert_refused(&at_end, &["spec.events[0].at", "not before the trace ends"]);
}

#[test]
fn counts_amounts_and_durations_stay_in_range() {
    assert_refused(&web("-3"), &["spec.workloads[0]", "negative"]);
    assert_refused(&web("100001"), &["100001 replicas"]);
    let pdb = "  workloads:\n  - {apiVersion: policy/v1, kind: PodDisruptionBudget, metadata: {name: p}, spec: {minAvailable: \"9223372036854775807%\", selector: {matchLabels: {app: web}}}}\n";
    assert_refused(pdb, &["spec.minAvailable", "percentage"]);
    let job = "  workloads:\n  - apiVersion: batch/v1\n    kind: Job\n    metadata: {name: j, annotations: {capstan.io/pod-runtime: 18446744073709551615s}}\n    spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: x}]}}}\n";
    assert_refused(job, &["capstan.io/pod-runtime"]);
    assert_refused("  events:\n  - {at: 5m, shortage: {instanceType: m5.large, for: 0s}}\n", &["shortage.for"]);
    assert_refused(
        "  events:\n  - {at: 5m, shortage: {instanceType: m5.large, for: 18446744073709551615s}}\n",
        &["shortage.for"],
    );
}

#[test]
fn instance_types_and_zones_are_ones_the_simulator_offers() {
    assert_refused(
        "  nodes:\n  - {instanceType: m5.xlarge, zone: mars-1z, count: 3}\n",
        &["spec.nodes[0].zone", "mars-1z"],
    );
    assert_refused("  nodes:\n  - {instanceType: m99.huge, zone: us-east-1a}\n", &["spec.nodes[0].instanceType"]);
    assert_refused("  nodes:\n  - {instanceType: m5.large, zone: us-east-1a, count: 2001}\n", &["spec.nodes[0].count"]);
    assert_refused("  events:\n  - {at: 5m, interrupt: {zone: atlantis-1a}}\n", &["interrupt.zone"]);
    assert_refused("  events:\n  - {at: 5m, shortage: {instanceType: nope.large}}\n", &["shortage.instanceType"]);
}

#[test]
fn too_many_pods_at_once_are_refused_before_a_replay() {
    let many: String = (0..3)
        .map(|i| web("10000").replace("  workloads:\n", "").replace("name: web}", &format!("name: web{i}}}")))
        .collect();
    assert_refused(&format!("  workloads:\n{many}"), &["30000 pods at once"]);
}

#[test]
fn names_follow_kubernetes() {
    let long = "x".repeat(300);
    let text =
        format!("apiVersion: capstan.io/v1alpha1\nkind: Trace\nmetadata: {{name: {long}}}\nspec:\n  duration: 1h\n");
    let e = parse("t.yaml", text.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("metadata.name"), "{e}");
}
