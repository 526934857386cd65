//! JSON Schemas for every document kind, for editors (`# yaml-language-server: $schema=…`).

use schemars::{JsonSchema, generate::SchemaSettings};

use super::capacitybuffer::CapacityBuffer;
use super::capstan::{ClusterPolicy, Fleet, Guardrails};
use super::commitment::Commitment;
use super::kops::{Cluster, InstanceGroup};
use super::nodeclass::EC2NodeClass;
use super::nodeoverlay::NodeOverlay;
use super::nodepool::NodePool;

/// `(file name, schema JSON)` for each kind.
pub fn all() -> Vec<(String, String)> {
    vec![
        one::<NodePool>("nodepool", "karpenter.sh/v1", "NodePool"),
        one::<EC2NodeClass>("ec2nodeclass", "karpenter.k8s.aws/v1", "EC2NodeClass"),
        one::<InstanceGroup>("instancegroup", "kops.k8s.io/v1alpha2", "InstanceGroup"),
        one::<Cluster>("cluster", "kops.k8s.io/v1alpha2", "Cluster"),
        one::<ClusterPolicy>("clusterpolicy", "capstan.io/v1alpha1", "ClusterPolicy"),
        one::<Fleet>("fleet", "capstan.io/v1alpha1", "Fleet"),
        one::<Guardrails>("guardrails", "capstan.io/v1alpha1", "Guardrails"),
        one::<NodeOverlay>("nodeoverlay", "karpenter.sh/v1alpha1", "NodeOverlay"),
        one::<Commitment>("commitment", "capstan.io/v1alpha1", "Commitment"),
        one::<CapacityBuffer>("capacitybuffer", "autoscaling.x-k8s.io/v1beta1", "CapacityBuffer"),
    ]
}

fn one<T: JsonSchema>(file: &str, api_version: &str, kind: &str) -> (String, String) {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<T>();
    let obj = schema.as_object_mut().expect("root schema is an object");
    obj.insert("title".into(), format!("{kind} ({api_version})").into());
    if let Some(props) = obj.get_mut("properties").and_then(|p| p.as_object_mut()) {
        props.insert("apiVersion".into(), serde_json::json!({"const": api_version}));
        props.insert("kind".into(), serde_json::json!({"const": kind}));
    }
    let text = serde_json::to_string_pretty(&schema).expect("schemas serialise") + "\n";
    (format!("{file}.schema.json"), text)
}
