//! `kops.k8s.io/v1alpha2` InstanceGroup and Cluster.
//!
//! Only the fields capstan reads are typed; every other field is kept in `extra` maps so that a
//! parse → write → parse round trip loses nothing kOps (or a newer kOps) wrote.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::meta::Labels;

pub const API_VERSION: &str = "kops.k8s.io/v1alpha2";

/// Metadata of a kOps document; anything besides name and labels is kept as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KopsMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceGroup {
    pub api_version: String,
    pub kind: String,
    pub metadata: KopsMeta,
    pub spec: InstanceGroupSpec,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceGroupSpec {
    /// Node, Master (ControlPlane), Bastion or APIServer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// CloudGroup (an autoscaling group, the default) or Karpenter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// One type, or a comma-separated list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_labels: Option<Labels>,
    /// `key=value:Effect` or `key:Effect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taints: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_duration_in_minutes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixed_instances_policy: Option<MixedInstancesPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_volume: Option<RootVolume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_volume_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_volume_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_volume_iops: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_volume_throughput: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_volume_encryption: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_volume_encryption_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<KopsKubelet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associate_public_ip: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_override: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_security_groups: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MixedInstancesPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<String>>,
    /// Attribute-based selection; kOps 1.37 turns it into NodePool requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_requirements: Option<InstanceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_base: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_above_base: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_allocation_strategy: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `mixedInstancesPolicy.instanceRequirements`: vCPU and memory ranges and excluded types.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRequirements {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<MinMax>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MinMax>,
    /// Instance types, or `<family>.*`, that the group must not use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_instance_types: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A range of Kubernetes quantities. The bounds stay as written (`2`, `"2"`, `"64Gi"`) so that a
/// round trip does not turn a number into a string.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MinMax {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The text of a quantity written as a YAML string or number.
pub fn quantity_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RootVolume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The parts of kOps's kubelet spec that the translation reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KopsKubelet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pods: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_reserved: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_reserved: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_labels: Option<Labels>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl InstanceGroup {
    pub fn is_karpenter(&self) -> bool {
        self.spec.manager.as_deref() == Some("Karpenter")
    }

    pub fn role(&self) -> &str {
        self.spec.role.as_deref().unwrap_or("Node")
    }

    /// Master and ControlPlane are the same role under two names.
    pub fn is_control_plane(&self) -> bool {
        matches!(self.role(), "Master" | "ControlPlane")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub api_version: String,
    pub kind: String,
    pub metadata: KopsMeta,
    pub spec: ClusterSpec,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub karpenter: Option<KarpenterConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_issuer_discovery: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets: Option<Vec<ClusterSubnet>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<KopsKubelet>,
    /// `aws` in v1alpha2; a map with one provider key in newer API versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_provider: Option<Value>,
    /// Where v1alpha2 keeps the AWS Node Termination Handler settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_termination_handler: Option<NodeTerminationHandler>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The parts of the AWS Node Termination Handler settings that decide the instance tag kOps adds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeTerminationHandler {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Queue-processor mode; kOps counts an unset value as on.
    #[serde(default, rename = "enableSQSTerminationDraining", skip_serializing_if = "Option::is_none")]
    pub enable_sqs_termination_draining: Option<bool>,
    /// The tag the handler looks for before it drains an instance.
    #[serde(default, rename = "managedASGTag", skip_serializing_if = "Option::is_none")]
    pub managed_asg_tag: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KarpenterConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSubnet {
    #[serde(default)]
    pub name: String,
    /// Public, Private, Utility or DualStack.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub subnet_type: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Cluster {
    pub fn karpenter_enabled(&self) -> bool {
        self.spec.karpenter.as_ref().and_then(|k| k.enabled) == Some(true)
    }

    /// The IRSA settings Karpenter needs on kOps 1.34+.
    pub fn irsa_enabled(&self) -> bool {
        let sa = self.spec.service_account_issuer_discovery.as_ref();
        sa.and_then(|v| v["enableAWSOIDCProvider"].as_bool()) == Some(true)
    }

    /// The subnets the spec lists, in order, as (name, type): `spec.subnets`, else the newer
    /// `spec.networking.subnets`.
    pub fn subnets(&self) -> Vec<(String, Option<String>)> {
        if let Some(subnets) = &self.spec.subnets {
            return subnets.iter().map(|s| (s.name.clone(), s.subnet_type.clone())).collect();
        }
        let nested = self.spec.extra.get("networking").and_then(|n| n.get("subnets")).and_then(|s| s.as_array());
        let name_and_type = |s: &Value| {
            let name = s["name"].as_str()?.to_string();
            Some((name, s["type"].as_str().map(str::to_string)))
        };
        nested.into_iter().flatten().filter_map(name_and_type).collect()
    }

    /// The subnets kOps gives a node InstanceGroup that names none: those that are neither
    /// DualStack nor Utility, else those that are not Utility.
    pub fn default_node_subnets(&self) -> Vec<String> {
        let all = self.subnets();
        let pick = |skip: &[&str]| -> Vec<String> {
            let kept = all.iter().filter(|(_, t)| !t.as_deref().is_some_and(|t| skip.contains(&t)));
            kept.map(|(n, _)| n.clone()).collect()
        };
        let first = pick(&["DualStack", "Utility"]);
        if first.is_empty() { pick(&["Utility"]) } else { first }
    }

    /// The type of a named subnet, when the spec lists it.
    /// Looks in `spec.subnets` and, for newer kOps, `spec.networking.subnets`.
    pub fn subnet_type(&self, name: &str) -> Option<String> {
        if let Some(subnets) = &self.spec.subnets
            && let Some(s) = subnets.iter().find(|s| s.name == name)
        {
            return s.subnet_type.clone();
        }
        let nested = self.spec.extra.get("networking")?.get("subnets")?.as_array()?;
        let found = nested.iter().find(|s| s["name"].as_str() == Some(name))?;
        found["type"].as_str().map(str::to_string)
    }
}

/// Annotation on the kOps Cluster document naming the kOps release whose translation rules
/// capstan follows for the cluster's `manager: Karpenter` InstanceGroups (`1.36` or `1.37`).
pub const KOPS_VERSION_ANNOTATION: &str = "capstan.io/kops-version";

/// The kOps release whose InstanceGroup → NodePool/EC2NodeClass rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KopsRules {
    /// kOps 1.36 (as of 1.36.2): `instanceRequirements` is not translated.
    V1_36,
    /// kOps 1.37: `instanceRequirements` becomes cpu, memory and exclusion requirements.
    V1_37,
}

impl KopsRules {
    /// Used when the Cluster spec is missing or does not say.
    pub const DEFAULT: KopsRules = KopsRules::V1_37;

    /// Reads `1.36`, `v1.36`, `1.36.2`, `1.37.0-alpha.1` and so on. Releases after 1.37 follow
    /// the 1.37 rules; releases before 1.36 had no Karpenter translation and give `None`.
    pub fn parse(text: &str) -> Option<KopsRules> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let mut parts = text.split(['.', '-']);
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next()?.parse().ok()?;
        match (major, minor) {
            (1, 36) => Some(KopsRules::V1_36),
            (1, m) if m >= 37 => Some(KopsRules::V1_37),
            (m, _) if m > 1 => Some(KopsRules::V1_37),
            _ => None,
        }
    }

    /// The rules for a cluster: its [`KOPS_VERSION_ANNOTATION`], else [`KopsRules::DEFAULT`].
    /// The second value explains a value that could not be used.
    pub fn for_cluster(cluster: Option<&Cluster>) -> (KopsRules, Option<String>) {
        let Some(text) = cluster.and_then(|c| c.annotation(KOPS_VERSION_ANNOTATION)) else {
            return (KopsRules::DEFAULT, None);
        };
        match KopsRules::parse(&text) {
            Some(rules) => (rules, None),
            None => (
                KopsRules::DEFAULT,
                Some(format!(
                    "Cluster annotation {KOPS_VERSION_ANNOTATION}: `{text}` is not 1.36 or later; following the kOps {} rules",
                    KopsRules::DEFAULT.label()
                )),
            ),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            KopsRules::V1_36 => "1.36",
            KopsRules::V1_37 => "1.37",
        }
    }

    /// Whether `mixedInstancesPolicy.instanceRequirements` becomes NodePool requirements.
    pub fn translates_instance_requirements(self) -> bool {
        self >= KopsRules::V1_37
    }
}

impl Cluster {
    /// A `metadata.annotations` value.
    pub fn annotation(&self, key: &str) -> Option<String> {
        let annotations = self.metadata.extra.get("annotations")?;
        annotations.get(key)?.as_str().map(str::to_string)
    }

    /// True unless the spec names a cloud other than AWS (capstan launches on AWS only).
    pub fn is_aws(&self) -> bool {
        match &self.spec.cloud_provider {
            None => true,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("aws"),
            Some(Value::Object(m)) => m.contains_key("aws"),
            Some(_) => false,
        }
    }

    /// The Node Termination Handler settings: v1alpha2's `spec.nodeTerminationHandler`, else the
    /// newer `spec.cloudProvider.aws.nodeTerminationHandler`.
    pub fn node_termination_handler(&self) -> Option<NodeTerminationHandler> {
        if let Some(nth) = &self.spec.node_termination_handler {
            return Some(nth.clone());
        }
        let nested = self.spec.cloud_provider.as_ref()?.get("aws")?.get("nodeTerminationHandler")?;
        serde_json::from_value(nested.clone()).ok()
    }
}
