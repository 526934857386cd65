//! kOps InstanceGroup and Cluster documents round-trip (parse → write → parse) with every
//! field kept, including fields capstan does not model.

use capstan::policy::document::{self, Origin};
use capstan::policy::kops::{Cluster, InstanceGroup};
use serde_json::Value;

fn kops_fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = crate::common::root().join("tests/fixtures/kops");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// Typed parse, YAML write, and parse again: the JSON value must be what was written.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(file: &str, doc: &document::RawDoc) {
    let typed: T = document::typed(&Origin::of(doc), file, &doc.value).unwrap_or_else(|d| panic!("{file}: {d}"));
    let written = serde_yaml::to_string(&typed).unwrap();
    let again = document::parse_file(file, written.as_bytes()).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].value, doc.value, "{file}: round trip changed the document:\n{written}");
}

#[test]
fn every_kops_fixture_round_trips() {
    let mut igs = 0;
    let mut clusters = 0;
    for (file, bytes) in kops_fixtures() {
        for doc in document::parse_file(&file, &bytes).unwrap() {
            match doc.value["kind"].as_str() {
                Some("InstanceGroup") => {
                    round_trip::<InstanceGroup>(&file, &doc);
                    igs += 1;
                }
                Some("Cluster") => {
                    round_trip::<Cluster>(&file, &doc);
                    clusters += 1;
                }
                other => panic!("{file}: unexpected kind {other:?}"),
            }
        }
    }
    assert!(igs >= 15 && clusters >= 4, "fixtures read: {igs} IGs, {clusters} Clusters");
}

#[test]
fn fields_capstan_does_not_model_survive() {
    let text = "apiVersion: kops.k8s.io/v1alpha2\nkind: InstanceGroup\nmetadata:\n  name: nodes\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\n  labels:\n    kops.k8s.io/cluster: dev.example.com\nspec:\n  role: Node\n  futureField:\n    nested: [1, 2, {deep: true}]\n  mixedInstancesPolicy:\n    instances: [m5.large]\n    spotInstancePools: 3\n  kubelet:\n    maxPods: 40\n    anonymousAuth: false\n  rootVolume:\n    size: 50\n    optimization: true\nstatus:\n  observed: 1\n";
    let doc = document::parse_file("ig.yaml", text.as_bytes()).unwrap().remove(0);
    round_trip::<InstanceGroup>("ig.yaml", &doc);
    let ig: InstanceGroup = document::typed(&Origin::of(&doc), "ig", &doc.value).unwrap();
    assert_eq!(ig.spec.extra["futureField"]["nested"][2]["deep"], Value::Bool(true));
    assert_eq!(ig.spec.kubelet.as_ref().unwrap().extra["anonymousAuth"], Value::Bool(false));
    assert_eq!(ig.extra["status"]["observed"], Value::from(1));
    assert_eq!(ig.metadata.extra["creationTimestamp"], "2024-01-01T00:00:00Z");
}

#[test]
fn a_changed_field_is_written_and_the_rest_kept() {
    let bytes = std::fs::read(crate::common::root().join("tests/fixtures/kops/ig-mixed-instances.yaml")).unwrap();
    let doc = document::parse_file("ig", &bytes).unwrap().remove(0);
    let mut ig: InstanceGroup = document::typed(&Origin::of(&doc), "ig", &doc.value).unwrap();
    ig.spec.max_size = Some(99);
    let written = serde_json::to_value(&ig).unwrap();
    let mut expected = doc.value.clone();
    expected["spec"]["maxSize"] = Value::from(99);
    assert_eq!(written, expected);
}
