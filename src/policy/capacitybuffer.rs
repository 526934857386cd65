//! `autoscaling.x-k8s.io` CapacityBuffer, the API Cluster Autoscaler and Karpenter share, and
//! the core `v1` PodTemplate a buffer's `podTemplateRef` names. A buffer asks for spare room in
//! chunks: each chunk is one placeholder pod that exists only in capstan's scheduling
//! simulation. capstan also reads a window for the buffer from two annotations of its own.
//!
//! ```text
//! {base,clusters/<c>}/capacitybuffers/*.yaml ─► CapacityBuffer + PodTemplate
//!      ─check()─► Diagnostics          ─provisioning::buffer─► placeholder pods
//! ```

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;
use super::quantity::Quantity;

/// The API version capstan writes and Karpenter's CRD stores.
pub const API_VERSION: &str = "autoscaling.x-k8s.io/v1beta1";
/// The earlier version, read the same way with a warning: Karpenter's CRD serves only
/// v1beta1; Cluster Autoscaler's serves v1alpha1 as deprecated.
pub const ALPHA_API_VERSION: &str = "autoscaling.x-k8s.io/v1alpha1";
/// The only provisioning strategy: placeholder pods that make the autoscaler launch nodes.
pub const ACTIVE_CAPACITY: &str = "buffer.x-k8s.io/active-capacity";
/// The API version of PodTemplate.
pub const POD_TEMPLATE_API_VERSION: &str = "v1";
/// A five-field cron schedule: the buffer is kept only from each fire time …
pub const SCHEDULE_ANNOTATION: &str = "capstan.io/buffer-schedule";
/// … for this long (`10h`, `90m`). Both annotations or neither.
pub const DURATION_ANNOTATION: &str = "capstan.io/buffer-duration";
/// The workload kinds `scalableRef` may name (group `apps`).
pub const SCALABLE_KINDS: [&str; 3] = ["Deployment", "StatefulSet", "ReplicaSet"];

/// A CapacityBuffer: spare room for `replicas` chunks, or a percentage of a workload, capped by
/// `limits`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacityBuffer {
    /// `autoscaling.x-k8s.io/v1beta1` (or `v1alpha1`).
    pub api_version: String,
    /// `CapacityBuffer`.
    pub kind: String,
    /// Name, namespace (placeholders take it; `default` when unset) and the window annotations.
    pub metadata: ObjectMeta,
    /// What room to keep.
    pub spec: CapacityBufferSpec,
    /// Written by a controller; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub status: Option<serde_json::Value>,
}

/// What room a buffer keeps. Exactly one of `podTemplateRef` and `scalableRef`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacityBufferSpec {
    /// `buffer.x-k8s.io/active-capacity` (the default); other strategies are not acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_strategy: Option<String>,
    /// A PodTemplate of the config repository, in the buffer's namespace: the shape of a chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template_ref: Option<LocalObjectRef>,
    /// A Deployment, StatefulSet or ReplicaSet of the cluster: chunks are shaped like its pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalable_ref: Option<ScalableRef>,
    /// Chunks to keep; with `percentage` too, the larger of the two is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    /// Chunks as a percentage of the `scalableRef` workload's pods, rounded up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<i64>,
    /// Caps the chunks by their total requests (`cpu`, `memory`, …); alone, as many chunks as
    /// fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<BTreeMap<String, Quantity>>,
}

/// The name of an object in the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalObjectRef {
    pub name: String,
}

/// A workload with a scale subresource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalableRef {
    /// `apps`, or unset (read as `apps`). An explicit empty string is the core group, as the
    /// CRD says, which has none of the supported kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// Deployment, StatefulSet or ReplicaSet.
    pub kind: String,
    pub name: String,
}

/// A core `v1` PodTemplate: a pod's metadata and spec, as Kubernetes takes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodTemplate {
    /// `v1`.
    pub api_version: String,
    /// `PodTemplate`.
    pub kind: String,
    pub metadata: ObjectMeta,
    /// A PodTemplateSpec (`metadata`, `spec`); read with Kubernetes' own types.
    pub template: serde_json::Value,
}

impl CapacityBuffer {
    /// The namespace its placeholders and its references live in.
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// Whether capstan acts on it: the active-capacity strategy (or none given).
    pub fn active(&self) -> bool {
        self.spec.provisioning_strategy.as_deref().is_none_or(|s| s == ACTIVE_CAPACITY)
    }
}

impl PodTemplate {
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// The template in Kubernetes' types; `Err` carries serde's message.
    pub fn spec(&self) -> Result<k8s_openapi::api::core::v1::PodTemplateSpec, String> {
        serde_json::from_value(self.template.clone()).map_err(|e| e.to_string())
    }
}
