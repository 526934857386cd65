//! The cluster on a real Kubernetes API server. Reflectors (list + watch) keep Pods, Nodes,
//! DaemonSets and PodDisruptionBudgets in memory, so a snapshot costs no request; actions are
//! API calls: merge patches on Nodes, the Eviction API (policy/v1, or policy/v1beta1 on
//! servers older than 1.21, found by discovery), Node deletion, and events.k8s.io Events.
//! Pods are stored already converted ([`stored`]); other objects are trimmed ([`trim`]) to what
//! the loop reads before they enter a store.

pub mod connect;
pub mod karpenter;
pub mod lease;
pub mod objects;
pub mod stored;
pub mod trim;

pub use stored::{StoredPod, snapshot_of};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use kube::api::{Api, DeleteParams, EvictParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde_json::{Value, json};

use super::api::{ClusterApi, ClusterError, Subject};
use super::marks::{self, DISRUPTED_TAINT, DISRUPTION_PREFIX, DisruptionMarks, UNREGISTERED_TAINT};
use super::model::Snapshot;
use crate::clock::Clock;
use crate::policy::meta::{Labels, Taint};

/// How long the reflectors may take to list everything at start.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// The Kubernetes side of the capacity loop. Cheap to clone: stores and client are shared.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    pods: Store<StoredPod>,
    nodes: Store<Node>,
    daemonsets: Store<DaemonSet>,
    pdbs: Store<DynamicObject>,
    /// `v1` or `v1beta1`: the policy group version the server serves for PDBs and Eviction.
    policy_version: String,
    recorder: Recorder,
    /// node → (digest of its pods, when that last changed); Kubernetes keeps no such time.
    pod_history: Arc<Mutex<HashMap<String, (u64, Duration)>>>,
    /// When a change to a node's pods is seen (the system clock in the daemon).
    clock: Arc<dyn Clock>,
}

fn api_error(e: kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(s) if s.code == 404 => ClusterError::NotFound(s.message.clone()),
        kube::Error::Api(s) if s.code == 429 => ClusterError::Blocked(s.message.clone()),
        other => ClusterError::Api(other.to_string()),
    }
}

/// Waits for a reflector's first listing, up to [`SYNC_TIMEOUT`].
async fn synced<E>(what: &str, ready: impl std::future::Future<Output = Result<(), E>>) -> Result<(), ClusterError> {
    match tokio::time::timeout(SYNC_TIMEOUT, ready).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(ClusterError::Api(format!("could not list {what} within {}s", SYNC_TIMEOUT.as_secs()))),
    }
}

fn spawn_reflector<K>(api: Api<K>, writer: reflector::store::Writer<K>, trim: fn(&mut K))
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    let stream =
        watcher(api, watcher::Config::default()).default_backoff().modify(trim).reflect(writer).applied_objects();
    tokio::spawn(stream.for_each(|r| {
        if let Err(e) = r {
            tracing::warn!(error = %e, "watch failed; retrying with backoff");
        }
        futures_util::future::ready(())
    }));
}

/// Watches pods and stores each converted ([`StoredPod`]), its constraints shared with its
/// controller's other pods.
fn spawn_pod_store(api: Api<Pod>, mut writer: reflector::store::Writer<StoredPod>) {
    let mut sharing = stored::Sharing::default();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .map_ok(move |e| stored::map_event(e, |p| StoredPod::of(&p, &mut sharing), |p| StoredPod::key_of(&p)));
    tokio::spawn(stream.for_each(move |r| {
        match r {
            Ok(e) => writer.apply_watcher_event(&e),
            Err(e) => tracing::warn!(error = %e, "watch failed; retrying with backoff"),
        }
        futures_util::future::ready(())
    }));
}

impl KubeCluster {
    /// Discovers the policy version, starts the reflectors and waits until each has listed.
    /// `clock` dates the changes the adapter notices itself (a node's pods changing).
    pub async fn start(client: Client, identity: &str, clock: Arc<dyn Clock>) -> Result<KubeCluster, ClusterError> {
        let group = kube::discovery::group(&client, "policy").await.map_err(api_error)?;
        let policy_version = if group.versions().any(|v| v == "v1") { "v1" } else { "v1beta1" }.to_string();
        let (pods, w) = reflector::store();
        spawn_pod_store(Api::<Pod>::all(client.clone()), w);
        let (nodes, w) = reflector::store();
        spawn_reflector(Api::<Node>::all(client.clone()), w, trim::node);
        let (daemonsets, w) = reflector::store();
        spawn_reflector(Api::<DaemonSet>::all(client.clone()), w, trim::daemonset);
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("policy", &policy_version, "PodDisruptionBudget"));
        let w = reflector::store::Writer::new(ar.clone());
        let pdbs = w.as_reader();
        let stream = watcher(Api::<DynamicObject>::all_with(client.clone(), &ar), watcher::Config::default())
            .default_backoff()
            .modify(trim::pdb)
            .reflect(w)
            .applied_objects();
        tokio::spawn(stream.for_each(|_| futures_util::future::ready(())));
        synced("pods", pods.wait_until_ready()).await?;
        synced("nodes", nodes.wait_until_ready()).await?;
        synced("daemonsets", daemonsets.wait_until_ready()).await?;
        synced("poddisruptionbudgets", pdbs.wait_until_ready()).await?;
        let reporter = Reporter { controller: "capstan".into(), instance: Some(identity.to_string()) };
        Ok(KubeCluster {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            pods,
            nodes,
            daemonsets,
            pdbs,
            policy_version,
            pod_history: Default::default(),
            clock,
        })
    }

    pub fn policy_version(&self) -> &str {
        &self.policy_version
    }

    fn nodes_api(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// Merge-patches a node, with its resourceVersion so a concurrent change is not lost
    /// (409 → read again and retry).
    async fn edit_node(&self, node: &str, edit: impl Fn(&Node) -> Value) -> Result<(), ClusterError> {
        let api = self.nodes_api();
        for _ in 0..5 {
            let current = api.get(node).await.map_err(api_error)?;
            let mut patch = edit(&current);
            patch["metadata"]["resourceVersion"] = json!(current.metadata.resource_version);
            match api.patch(node, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(api_error(e)),
            }
        }
        Err(ClusterError::Api(format!("node {node} kept changing under the patch")))
    }

    fn pods_changed_at(&self, node: &str, pods: &[&super::model::ClusterPod], first_seen: Duration) -> Duration {
        let mut keys: Vec<String> = pods.iter().map(|p| p.key()).collect();
        keys.sort();
        let digest = crate::digest::fnv64(keys.join("\n").as_bytes());
        let now = self.clock.now();
        let mut h = self.pod_history.lock().expect("pod history");
        let newest_pod = pods.iter().map(|p| p.created_at).max().unwrap_or_default();
        let entry = h.entry(node.to_string()).or_insert((digest, first_seen.max(newest_pod)));
        if entry.0 != digest {
            *entry = (digest, now);
        }
        entry.1
    }
}

fn taints_with(current: &Node, add: &[Taint], remove: Option<&str>) -> Value {
    let mut list: Vec<Taint> =
        current.spec.as_ref().and_then(|s| s.taints.as_ref()).into_iter().flatten().map(objects::taint).collect();
    if let Some(key) = remove {
        list.retain(|t| t.key != key);
    }
    for t in add {
        if !list.iter().any(|x| x.key == t.key && x.effect == t.effect) {
            list.push(t.clone());
        }
    }
    Value::Array(list.iter().map(objects::k8s_taint).collect())
}

/// The one merge patch that registers a node: its NodePool's labels, taints and annotations, and
/// the `karpenter.sh/unregistered` taint (kOps bakes it into its nodes' kubelet) removed.
fn register_patch(current: &Node, labels: &Labels, taints: &[Taint], annotations: &Labels) -> Value {
    let mut patch = json!({"metadata": {}});
    if !labels.is_empty() {
        patch["metadata"]["labels"] = objects::string_map(labels);
    }
    if !annotations.is_empty() {
        patch["metadata"]["annotations"] = objects::string_map(annotations);
    }
    let unregistered = current
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == UNREGISTERED_TAINT));
    if !taints.is_empty() || unregistered {
        patch["spec"] = json!({"taints": taints_with(current, taints, Some(UNREGISTERED_TAINT))});
    }
    patch
}

/// The one merge patch that marks a node for disruption: cordon, taint and record together.
fn mark_patch(current: &Node, disrupted: &Taint, annotations: &Value) -> Value {
    json!({
        "metadata": {"annotations": annotations},
        "spec": {"unschedulable": true, "taints": taints_with(current, std::slice::from_ref(disrupted), None)},
    })
}

impl ClusterApi for KubeCluster {
    async fn snapshot(&self) -> Result<Snapshot, ClusterError> {
        let mut snapshot =
            snapshot_of(&self.pods.state(), &self.nodes.state(), &self.daemonsets.state(), &self.pdbs.state());
        let mut by_node: HashMap<&str, Vec<&super::model::ClusterPod>> = HashMap::new();
        for p in &snapshot.pods {
            if let Some(n) = &p.node {
                by_node.entry(n.as_str()).or_default().push(p);
            }
        }
        for n in &mut snapshot.nodes {
            let on = by_node.get(n.name.as_str()).map_or(&[][..], Vec::as_slice);
            n.pods_changed_at = self.pods_changed_at(&n.name, on, n.created_at);
        }
        Ok(snapshot)
    }

    async fn register(
        &self,
        node: &str,
        labels: &Labels,
        taints: &[Taint],
        annotations: &Labels,
    ) -> Result<(), ClusterError> {
        self.edit_node(node, |current| register_patch(current, labels, taints, annotations)).await
    }

    async fn mark_for_disruption(&self, node: &str, marks: &DisruptionMarks) -> Result<(), ClusterError> {
        let disrupted = marks::disrupted_taint();
        let annotations = objects::string_map(&marks.annotations());
        self.edit_node(node, |current| mark_patch(current, &disrupted, &annotations)).await
    }

    async fn uncordon(&self, node: &str) -> Result<(), ClusterError> {
        self.edit_node(node, |current| {
            let gone: serde_json::Map<String, Value> = current
                .metadata
                .annotations
                .iter()
                .flatten()
                .filter(|(k, _)| k.starts_with(DISRUPTION_PREFIX))
                .map(|(k, _)| (k.clone(), Value::Null))
                .collect();
            json!({"metadata": {"annotations": gone}, "spec": {"unschedulable": null, "taints": taints_with(current, &[], Some(DISRUPTED_TAINT))}})
        })
        .await
    }

    async fn evict(&self, namespace: &str, pod: &str) -> Result<(), ClusterError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let result = if self.policy_version == "v1" {
            api.evict(pod, &EvictParams::default()).await.map(|_| ())
        } else {
            let body = json!({"apiVersion": "policy/v1beta1", "kind": "Eviction", "metadata": {"name": pod, "namespace": namespace}});
            api.create_subresource::<_, Value>("eviction", pod, &PostParams::default(), &body).await.map(|_| ())
        };
        match result.map_err(api_error) {
            Err(ClusterError::NotFound(_)) => Ok(()),
            other => other,
        }
    }

    async fn delete_node(&self, node: &str) -> Result<(), ClusterError> {
        match self.nodes_api().delete(node, &DeleteParams::default()).await.map_err(api_error) {
            Ok(_) | Err(ClusterError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn event(&self, subject: &Subject, reason: &str, message: &str) {
        let reference = match subject {
            Subject::Pod { namespace, name } => ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: Some(namespace.clone()),
                name: Some(name.clone()),
                ..ObjectReference::default()
            },
            Subject::Node(name) => ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(name.clone()),
                // Events about cluster-scoped objects live in `default`; servers before 1.21
                // (those without policy/v1) also demand that the reference name that namespace.
                namespace: (self.policy_version != "v1").then(|| "default".to_string()),
                ..ObjectReference::default()
            },
            Subject::Lease { namespace, name } => ObjectReference {
                api_version: Some("coordination.k8s.io/v1".into()),
                kind: Some("Lease".into()),
                namespace: Some(namespace.clone()),
                name: Some(name.clone()),
                ..ObjectReference::default()
            },
        };
        let warning = matches!(reason, "FailedScaleUp" | "DisruptionBlocked" | "AnotherAutoscaler");
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.to_string(),
            note: Some(message.chars().take(1000).collect()),
            action: reason.to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, reason, "event not recorded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marking_is_one_patch_with_the_cordon_the_taint_and_the_record() {
        let current: Node = serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
        }))
        .unwrap();
        let marks = DisruptionMarks { reason: "drifted".into(), revision: "r".into(), replacements: vec!["a".into()] };
        let patch = mark_patch(&current, &marks::disrupted_taint(), &objects::string_map(&marks.annotations()));
        assert_eq!(patch["spec"]["unschedulable"], true);
        assert_eq!(
            patch["spec"]["taints"],
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, {"key": DISRUPTED_TAINT, "effect": "NoSchedule"}])
        );
        assert_eq!(patch["metadata"]["annotations"][marks::DISRUPTION_REPLACEMENTS], "a");
        assert_eq!(patch["metadata"]["annotations"][marks::DISRUPTION_REASON], "drifted");
        assert_eq!(patch["metadata"]["annotations"][marks::DISRUPTION_REVISION], "r");
    }

    #[test]
    fn registering_removes_the_unregistered_taint_kops_bakes_in() {
        let current: Node = serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "spec": {"taints": [{"key": UNREGISTERED_TAINT, "effect": "NoExecute"},
                                {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]},
        }))
        .unwrap();
        let pool_taint: Taint =
            serde_json::from_value(json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"})).unwrap();
        let labels: Labels = [("karpenter.sh/nodepool".to_string(), "gpu".to_string())].into();
        let patch = register_patch(&current, &labels, std::slice::from_ref(&pool_taint), &Labels::new());
        assert_eq!(
            patch["spec"]["taints"],
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}, {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
        );
        assert_eq!(patch["metadata"]["labels"]["karpenter.sh/nodepool"], "gpu");
        // No NodePool taints to add: the taint still goes.
        let patch = register_patch(&current, &Labels::new(), &[], &Labels::new());
        assert_eq!(patch["spec"]["taints"], json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]));
        // A node without it and nothing to add: the taints are left alone.
        let plain: Node = serde_json::from_value(json!({"metadata": {"name": "n"}})).unwrap();
        assert!(register_patch(&plain, &labels, &[], &Labels::new()).get("spec").is_none());
    }
}
