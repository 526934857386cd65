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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_base: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_above_base: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_allocation_strategy: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
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
