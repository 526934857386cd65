//! Karpenter's own v1 examples load unmodified: every field they use is part of the model.
//! The fixtures are verbatim copies (see tests/fixtures/karpenter/SOURCES.md).

use capstan::policy::{self, Snapshot};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(crate::common::root().join("tests/fixtures/karpenter").join(name)).expect("fixture")
}

/// Validates a repository holding only the fixture (and a fleet), returning the findings that
/// are not organisation guardrails.
fn findings(name: &str) -> Vec<policy::Diagnostic> {
    let mut snap = Snapshot::default();
    snap.insert("fleet.yaml", crate::common::FLEET);
    snap.insert(format!("base/nodepools/{name}"), fixture(name));
    let v = policy::validate(&snap, None).expect("validate");
    v.diagnostics.sorted().into_iter().filter(|d| !d.message.starts_with("guardrail:")).collect()
}

fn errors(name: &str) -> Vec<policy::Diagnostic> {
    findings(name).into_iter().filter(|d| d.is_error()).collect()
}

#[test]
fn examples_from_the_karpenter_repository_load_without_errors() {
    for name in [
        "examples-v1-general-purpose.yaml",
        "examples-v1-spot.yaml",
        "examples-v1-multiple-ebs.yaml",
        "examples-v1-min-values-multiple-keys.yaml",
        "examples-v1-node-ttls.yaml",
        "examples-v1-instance-store-ephemeral-storage.yaml",
    ] {
        let errs = errors(name);
        assert!(errs.is_empty(), "{name}: {errs:#?}");
    }
}

#[test]
fn documentation_nodepool_uses_only_known_fields() {
    let found = errors("nodepool-v1-docs.yaml");
    let unknown: Vec<_> =
        found.iter().filter(|d| d.message.contains("unknown field") || d.message.contains("invalid type")).collect();
    assert!(unknown.is_empty(), "{unknown:#?}");
    // The page writes three values as "a | b" choices; Karpenter's API server refuses them as
    // written, and so do we, saying which field and what to do.
    let choices: Vec<_> =
        found.iter().filter(|d| d.hint.contains("lists alternatives")).map(|d| d.field.clone().unwrap()).collect();
    assert_eq!(
        choices,
        ["spec.template.spec.expireAfter", "spec.disruption.consolidationPolicy", "spec.disruption.consolidateAfter"]
    );
    let lines: Vec<usize> = found.iter().filter(|d| d.hint.contains("lists alternatives")).map(|d| d.line).collect();
    let text = String::from_utf8(fixture("nodepool-v1-docs.yaml")).unwrap();
    for (line, needle) in lines.iter().zip([
        "expireAfter: 720h | Never",
        "consolidationPolicy: WhenEmpty",
        "consolidateAfter: 1m | Never",
    ]) {
        assert!(text.lines().nth(line - 1).unwrap().contains(needle), "line {line} should hold {needle}");
    }
}

#[test]
fn documentation_ec2nodeclass_uses_only_known_fields() {
    let found = errors("ec2nodeclass-v1-docs.yaml");
    // Everything loads; the findings are the two pairs Karpenter's CRD forbids together (role and
    // instanceProfile; the placement group's name and id) and the page's NodePool stub, which
    // leaves out `requirements` (the CRD lists it under `required`).
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "missing field `requirements`",
            "role and instanceProfile are both set",
            "both name and id are set; Karpenter's rule: 'name' and 'id' are mutually exclusive"
        ],
        "{found:#?}"
    );
    let warnings: Vec<String> =
        findings("ec2nodeclass-v1-docs.yaml").into_iter().filter(|d| !d.is_error()).filter_map(|d| d.field).collect();
    for ignored in ["spec.placementGroupSelector", "spec.networkInterfaces", "status"] {
        assert!(
            warnings.iter().any(|w| w == ignored),
            "{ignored} should be reported as accepted but not acted on: {warnings:?}"
        );
    }
}

#[test]
fn documentation_examples_parse_into_the_typed_model_field_for_field() {
    // Parse the EC2NodeClass document directly and check representative fields survived.
    let docs = policy::document::parse_file("x.yaml", &fixture("ec2nodeclass-v1-docs.yaml")).unwrap();
    let class_doc = docs.iter().find(|d| d.value["kind"] == "EC2NodeClass").unwrap();
    let origin = policy::document::Origin::of(class_doc);
    let class: policy::nodeclass::EC2NodeClass =
        policy::document::typed(&origin, "EC2NodeClass/default", &class_doc.value).unwrap();
    let s = &class.spec;
    assert_eq!(s.kubelet.as_ref().unwrap().max_pods, Some(20));
    assert_eq!(
        s.block_device_mappings[0].ebs.as_ref().unwrap().kms_key_id.as_deref(),
        Some("1234abcd-12ab-34cd-56ef-1234567890ab")
    );
    assert_eq!(s.associate_public_ip_address, Some(true));
    assert_eq!(s.connection_tracking.as_ref().unwrap().udp_timeout, Some(45));
    assert_eq!(s.ami_selector_terms.len(), 4);
    let back: Value = serde_json::to_value(&class).unwrap();
    assert_eq!(back["spec"]["metadataOptions"]["httpProtocolIPv6"], "disabled");
}
