//! Parity with Karpenter's v1 CRDs as of aws/karpenter-provider-aws commit 1d927085d (the 1.15
//! line; newest tag then v1.14.1): `karpenter.sh_nodepools.yaml`,
//! `karpenter.k8s.aws_ec2nodeclasses.yaml` and `karpenter.sh_nodeoverlays.yaml`.
//!
//! Each case starts from a document the CRD accepts, makes one edit (a few for rules across
//! fields), and says whether the CRD accepts the result, quoting the rule. A refusal must come
//! as an error at the edited field, naming the object, with a position and a hint.

mod nodeclass_ami;
mod nodeclass_fields;
mod nodeclass_network;
mod nodeclass_terms;
mod nodeoverlay;
mod nodepool;
mod nodepool_requirements;
mod nodepool_template;

use capstan::policy::{self, Diagnostic, Snapshot};
use serde_json::{Value, json};

/// Which document a case edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Pool,
    Class,
    Overlay,
}

/// What the CRD does with the edited document.
#[derive(Debug, Clone)]
pub enum Expect {
    /// Accepted, with no error.
    Accept,
    /// Accepted, with a warning whose message contains the text.
    Warn(&'static str),
    /// Refused: an error at a field starting with the first text, whose message contains the
    /// second.
    Reject(&'static str, &'static str),
}

/// One row of a table.
pub struct Case {
    pub name: &'static str,
    /// The CRD's rule: its CEL message or schema constraint.
    pub rule: &'static str,
    pub base: Base,
    /// Paths (`a.b[0].c`) and the values set there; `null` removes the field.
    pub edits: Vec<(&'static str, Value)>,
    pub expect: Expect,
}

pub fn accept(base: Base, name: &'static str, rule: &'static str, path: &'static str, value: Value) -> Case {
    Case { name, rule, base, edits: vec![(path, value)], expect: Expect::Accept }
}

pub fn reject(
    base: Base,
    name: &'static str,
    rule: &'static str,
    path: &'static str,
    value: Value,
    at: (&'static str, &'static str),
) -> Case {
    Case { name, rule, base, edits: vec![(path, value)], expect: Expect::Reject(at.0, at.1) }
}

impl Case {
    /// One more edit, for rules across fields.
    pub fn and(mut self, path: &'static str, value: Value) -> Case {
        self.edits.push((path, value));
        self
    }

    pub fn warns(mut self, part: &'static str) -> Case {
        self.expect = Expect::Warn(part);
        self
    }
}

pub fn pool() -> Value {
    json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "default"},
        "spec": {
            "template": {
                "metadata": {"labels": {"team": "a"}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                    "requirements": [
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}
                    ],
                    "expireAfter": "720h"
                }
            },
            "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "30s"},
            "limits": {"cpu": "100"}
        }
    })
}

pub fn class() -> Value {
    json!({
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "default"},
        "spec": {
            "amiFamily": "AL2023",
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "role": "KarpenterNodeRole",
            "subnetSelectorTerms": [{"tags": {"team": "a"}}],
            "securityGroupSelectorTerms": [{"tags": {"team": "a"}}]
        }
    })
}

pub fn overlay() -> Value {
    json!({
        "apiVersion": "karpenter.sh/v1alpha1",
        "kind": "NodeOverlay",
        "metadata": {"name": "default"},
        "spec": {
            "requirements": [
                {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["m5"]}
            ],
            "priceAdjustment": "-10%",
            "weight": 10
        }
    })
}

fn file(base: Base) -> &'static str {
    match base {
        Base::Pool => "base/nodepools/default.yaml",
        Base::Class => "base/nodeclasses/default.yaml",
        Base::Overlay => "base/nodeoverlays/default.yaml",
    }
}

/// Sets `value` at `path`, creating mappings on the way; `null` removes the field.
fn set(doc: &mut Value, path: &str, value: Value) {
    let mut steps: Vec<Result<String, usize>> = Vec::new();
    for part in path.split('.') {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        steps.push(Ok(key.to_string()));
        for index in rest.split('[').filter(|s| !s.is_empty()) {
            steps.push(Err(index.trim_end_matches(']').parse().expect("index")));
        }
    }
    let (last, walk) = steps.split_last().expect("path");
    let mut at = doc;
    for step in walk {
        at = match step {
            Ok(key) => at.as_object_mut().expect("mapping").entry(key.clone()).or_insert_with(|| json!({})),
            Err(i) => &mut at.as_array_mut().expect("list")[*i],
        };
    }
    match (last, value) {
        (Ok(key), Value::Null) => {
            at.as_object_mut().expect("mapping").remove(key);
        }
        (Ok(key), v) => {
            at.as_object_mut().expect("mapping").insert(key.clone(), v);
        }
        (Err(i), v) => at.as_array_mut().expect("list")[*i] = v,
    }
}

/// Validates the three base documents, one of them edited, and returns the findings that are not
/// organisation guardrails.
fn findings(case: &Case) -> Vec<Diagnostic> {
    let mut docs = [(Base::Pool, pool()), (Base::Class, class()), (Base::Overlay, overlay())];
    for (base, doc) in &mut docs {
        if *base == case.base {
            for (path, value) in &case.edits {
                set(doc, path, value.clone());
            }
        }
    }
    let mut snap = Snapshot::default();
    snap.insert("fleet.yaml", crate::common::FLEET);
    for (base, doc) in &docs {
        snap.insert(file(*base), serde_yaml::to_string(doc).expect("yaml"));
    }
    let v = policy::validate(&snap, None).expect("validate");
    v.diagnostics.sorted().into_iter().filter(|d| !d.message.starts_with("guardrail:")).collect()
}

/// What is wrong with `case`'s outcome, if anything.
fn failure(case: &Case) -> Option<String> {
    let found = findings(case);
    let errors: Vec<&Diagnostic> = found.iter().filter(|d| d.is_error()).collect();
    let shown = || found.iter().map(|d| format!("    {d}")).collect::<Vec<_>>().join("\n");
    match case.expect {
        Expect::Accept if errors.is_empty() => None,
        Expect::Warn(part) if errors.is_empty() && found.iter().any(|d| d.message.contains(part)) => None,
        Expect::Accept | Expect::Warn(_) => Some(format!("the CRD accepts it, capstan reported:\n{}", shown())),
        Expect::Reject(field, part) => {
            let hit = errors
                .iter()
                .find(|d| d.field.as_deref().is_some_and(|f| f.starts_with(field)) && d.message.contains(part));
            match hit {
                None => Some(format!("the CRD refuses it; no error at {field} containing {part:?} in:\n{}", shown())),
                Some(d) if !d.file.ends_with(file(case.base)) || d.line == 0 || d.column == 0 => {
                    Some(format!("the error has no position in the edited file: {d}"))
                }
                Some(d) if d.object.is_none() || d.hint.is_empty() => Some(format!("no object or hint: {d}")),
                Some(_) => None,
            }
        }
    }
}

/// Runs every case and fails listing each that does not hold, with the rule it checks.
pub fn run(cases: &[Case]) {
    assert!(!cases.is_empty());
    let failed: Vec<String> =
        cases.iter().filter_map(|c| failure(c).map(|why| format!("{} (rule: {}): {why}", c.name, c.rule))).collect();
    assert!(failed.is_empty(), "{} of {} cases fail:\n{}", failed.len(), cases.len(), failed.join("\n"));
}

#[test]
fn the_base_documents_are_accepted() {
    let unchanged = |base| Case { name: "unchanged", rule: "-", base, edits: vec![], expect: Expect::Accept };
    run(&[unchanged(Base::Pool), unchanged(Base::Class), unchanged(Base::Overlay)]);
}

#[test]
fn a_refusal_that_does_not_come_is_reported() {
    // The harness itself: a case expecting a refusal of a valid document must fail.
    let case = reject(Base::Pool, "valid weight", "maximum: 100", "spec.weight", json!(50), ("spec.weight", ""));
    assert!(failure(&case).is_some());
    let case = accept(Base::Pool, "bad weight", "maximum: 100", "spec.weight", json!(101));
    assert!(failure(&case).is_some());
}

/// A requirements list of one requirement.
pub fn req(key: &str, operator: &str, values: &[&str]) -> serde_json::Value {
    serde_json::json!([{"key": key, "operator": operator, "values": values}])
}
