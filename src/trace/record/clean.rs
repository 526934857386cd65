//! Objects as a trace records them, and what a change of one means for the trace.
//!
//! ```text
//! object as served ──clean──▶ object as `kubectl apply` takes it (or why it is not recorded)
//! (old, new) cleaned ──change──▶ scale | create | delete | nothing
//! ```
//!
//! Plain functions over `serde_json::Value`, no I/O.

use std::fmt;

use serde_json::{Map, Value, json};

use crate::cluster::workload;
use crate::trace::{Action, MAX_REPLICAS, ObjectRef, Scale};

/// A kind recorded; starting workloads are listed in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Deployment,
    StatefulSet,
    Job,
    DaemonSet,
    PodDisruptionBudget,
}

impl Kind {
    pub const ALL: [Kind; 5] =
        [Kind::Deployment, Kind::StatefulSet, Kind::Job, Kind::DaemonSet, Kind::PodDisruptionBudget];

    /// The kind as Kubernetes and the trace spell it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::Job => "Job",
            Kind::DaemonSet => "DaemonSet",
            Kind::PodDisruptionBudget => "PodDisruptionBudget",
        }
    }

    /// The resource RBAC rules name.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::StatefulSet => "statefulsets",
            Kind::Job => "jobs",
            Kind::DaemonSet => "daemonsets",
            Kind::PodDisruptionBudget => "poddisruptionbudgets",
        }
    }

    /// The API group RBAC rules name.
    pub fn group(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet => "apps",
            Kind::Job => "batch",
            Kind::PodDisruptionBudget => "policy",
        }
    }

    /// The version the trace writes: PDBs always as `policy/v1`, whatever the server serves.
    fn api_version(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet => "apps/v1",
            Kind::Job => "batch/v1",
            Kind::PodDisruptionBudget => "policy/v1",
        }
    }

    fn scalable(self) -> bool {
        matches!(self, Kind::Deployment | Kind::StatefulSet)
    }
}

/// One object of the cluster, by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn of(kind: Kind, object: &Value) -> Key {
        let meta = &object["metadata"];
        Key {
            kind,
            namespace: meta["namespace"].as_str().unwrap_or("default").to_string(),
            name: meta["name"].as_str().unwrap_or_default().to_string(),
        }
    }
}

/// Why an object the server holds is left out of the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Its controller is itself of a recorded kind, and would create it again on replay.
    Owned { kind: String, name: String },
    /// A `policy/v1beta1` PDB with an empty selector protects no pod; as `policy/v1` it would
    /// protect every pod of its namespace.
    SelectsNothing,
    /// The simulated cluster cannot replay it: the trace would not load.
    NotReplayable(String),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::Owned { kind, name } => write!(f, "its controller {kind}/{name} is recorded and creates it"),
            Skip::SelectsNothing => {
                write!(f, "a policy/v1beta1 PodDisruptionBudget with an empty selector selects no pod")
            }
            Skip::NotReplayable(why) => write!(f, "the simulated cluster cannot replay it: {why}"),
        }
    }
}

/// Annotations Kubernetes itself writes: re-applying them means nothing, and their changes are
/// not the workload's.
const SERVER_ANNOTATIONS: [&str; 3] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deprecated.daemonset.template.generation",
];

/// Labels the API server puts on a Job's pod template along with the selector it generates.
const JOB_LABELS: [&str; 4] =
    ["controller-uid", "job-name", "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name"];

/// The object `raw` (as served, with its `apiVersion`) as `kubectl apply` would take it again:
/// only `apiVersion`, `kind`, `spec` and the metadata a user writes (name, namespace, labels,
/// annotations other than those Kubernetes writes). So `status`, `managedFields`, `uid`,
/// `resourceVersion`, `generation`, `creationTimestamp`, `selfLink` and `ownerReferences` go.
///
/// Objects whose controller is not recorded are kept: a Job of a CronJob, a StatefulSet of an
/// operator. Nothing replays their controller, so the trace must hold them to hold their pods.
pub fn clean(kind: Kind, raw: &Value) -> Result<Value, Skip> {
    let meta = &raw["metadata"];
    if let Some(owner) = meta["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["controller"] == true && workload::KINDS.contains(&o["kind"].as_str().unwrap_or_default()))
    {
        let text = |f: &str| owner[f].as_str().unwrap_or_default().to_string();
        return Err(Skip::Owned { kind: text("kind"), name: text("name") });
    }
    let mut spec = raw.get("spec").cloned().unwrap_or_else(|| json!({}));
    let generated_selector = kind == Kind::Job && spec["manualSelector"] != true;
    let mut metadata = Map::new();
    for field in ["name", "namespace"] {
        if let Some(v) = meta.get(field).filter(|v| !v.is_null()) {
            metadata.insert(field.to_string(), v.clone());
        }
    }
    // A Job's own labels default to its template's, generated ones included.
    let labels_dropped: &[&str] = if generated_selector { &JOB_LABELS } else { &[] };
    if let Some(labels) = without(&meta["labels"], labels_dropped) {
        metadata.insert("labels".to_string(), labels);
    }
    if let Some(annotations) = without(&meta["annotations"], &SERVER_ANNOTATIONS) {
        metadata.insert("annotations".to_string(), annotations);
    }
    if let Some(t) = spec.pointer_mut("/template/metadata").and_then(Value::as_object_mut) {
        t.remove("creationTimestamp");
    }
    secrets_out(&mut spec);
    match kind {
        Kind::Job if generated_selector => {
            remove(&mut spec, "", "selector");
            for label in JOB_LABELS {
                remove(&mut spec, "/template/metadata/labels", label);
            }
        }
        Kind::StatefulSet => {
            for claim in spec.get_mut("volumeClaimTemplates").and_then(Value::as_array_mut).into_iter().flatten() {
                remove(claim, "", "status");
                remove(claim, "/metadata", "creationTimestamp");
            }
        }
        Kind::PodDisruptionBudget if raw["apiVersion"] == "policy/v1beta1" && selects_nothing(&spec["selector"]) => {
            return Err(Skip::SelectsNothing);
        }
        _ => {}
    }
    let object = json!({"apiVersion": kind.api_version(), "kind": kind.name(), "metadata": metadata, "spec": spec});
    replayable(kind, &object)?;
    Ok(object)
}

/// Fields of a container that the scheduler does not read and that may hold secrets
/// (environment values, command lines); a trace is meant to be committed.
const CONTAINER_SECRETS: [&str; 5] = ["env", "envFrom", "args", "command", "lifecycle"];

/// Removes what may hold secrets from the pod template's containers.
fn secrets_out(spec: &mut Value) {
    let Some(pod) = spec.pointer_mut("/template/spec") else { return };
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in pod.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(c) = c.as_object_mut() {
                for field in CONTAINER_SECRETS {
                    c.remove(field);
                }
            }
        }
    }
}

/// Whether the trace's loader takes `object`: its pod template converts, its replicas fit.
fn replayable(kind: Kind, object: &Value) -> Result<(), Skip> {
    let key = Key::of(kind, object);
    let label = format!("{} {}/{}", kind.name(), key.namespace, key.name);
    match workload::from_value(&label, 1, object.clone()) {
        Ok(w) => match w.and_then(|w| w.replicas()) {
            Some(n) if n > MAX_REPLICAS => {
                Err(Skip::NotReplayable(format!("{n} replicas; a trace holds at most {MAX_REPLICAS}")))
            }
            _ => Ok(()),
        },
        Err(e) => Err(Skip::NotReplayable(e.to_string())),
    }
}

/// A map of labels or annotations without the keys `dropped`; `None` if nothing is left.
fn without(map: &Value, dropped: &[&str]) -> Option<Value> {
    let kept: Map<String, Value> = map
        .as_object()?
        .iter()
        .filter(|(k, _)| !dropped.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!kept.is_empty()).then_some(Value::Object(kept))
}

/// Whether a label selector has no requirement (missing, `{}`, or empty lists and maps).
fn selects_nothing(selector: &Value) -> bool {
    selector["matchLabels"].as_object().is_none_or(Map::is_empty)
        && selector["matchExpressions"].as_array().is_none_or(Vec::is_empty)
}

fn remove(v: &mut Value, pointer: &str, field: &str) {
    if let Some(m) = v.pointer_mut(pointer).and_then(Value::as_object_mut) {
        m.remove(field);
    }
}

/// What the trace records when a cleaned object goes from `old` to `new` (`None`: absent or
/// not recorded): a replicas-only change of a Deployment or StatefulSet is a `scale`, any other
/// change a `create` of the whole new object (apply replaces), a disappearance a `delete`.
pub fn change(key: &Key, old: Option<&Value>, new: Option<&Value>) -> Option<Action> {
    match (old, new) {
        (None, None) => None,
        (None, Some(new)) => Some(Action::Create(new.clone())),
        (Some(_), None) => Some(Action::Delete(ObjectRef {
            kind: key.kind.name().to_string(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
        })),
        (Some(old), Some(new)) if old == new => None,
        (Some(old), Some(new)) => {
            let replicas = new["spec"]["replicas"].as_u64().and_then(|n| u32::try_from(n).ok());
            match replicas {
                Some(replicas) if key.kind.scalable() && without_replicas(old) == without_replicas(new) => {
                    Some(Action::Scale(Scale {
                        kind: key.kind.name().to_string(),
                        namespace: key.namespace.clone(),
                        name: key.name.clone(),
                        replicas,
                    }))
                }
                _ => Some(Action::Create(new.clone())),
            }
        }
    }
}

fn without_replicas(v: &Value) -> Value {
    let mut v = v.clone();
    remove(&mut v, "/spec", "replicas");
    v
}
