//! The hand-over from another autoscaler (kOps's Karpenter addon, a cluster-autoscaler): capstan
//! acts — launches, disrupts, drains — only while no other autoscaler may act on the same
//! pending pods.
//!
//! ```text
//! API server ──observe (3 lists)──► Observed ──judge(now)──► Verdict { act, reasons, warnings }
//! ```
//!
//! [`judge`] is pure: plain structs and the time in, a verdict out. What the cluster holds is
//! read by [`KubeCluster::other_autoscalers`]; what cannot be read counts against acting, so a
//! missing permission or an API outage never lets capstan act beside Karpenter.
//!
//! Karpenter may act when any of these holds:
//! - a Lease named [`KARPENTER_LEASE`] (any namespace) is held: `renewTime` +
//!   `leaseDurationSeconds` is after now, and it has a holder;
//! - a Deployment whose pod template is labelled `app.kubernetes.io/name=karpenter` has, or
//!   asks for, a replica;
//! - NodePools (`karpenter.sh/v1`) exist: Karpenter provisions for them whenever it runs, and
//!   kOps's addon manager brings a scaled-down Karpenter back on its next update.
//!
//! A running cluster-autoscaler only warns: it acts on InstanceGroups with autoscaling on.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{ListParams, ObjectList};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde::de::DeserializeOwned;

use super::KubeCluster;

/// The Lease Karpenter's replicas elect their leader with (v0.31 through v1).
pub const KARPENTER_LEASE: &str = "karpenter-leader-election";
/// The pod-template label of Karpenter's Deployment (its Helm chart's and kOps's addon's).
pub const KARPENTER_APP: (&str, &str) = ("app.kubernetes.io/name", "karpenter");
/// Labels a cluster-autoscaler Deployment carries (on itself or its pods), either of them.
pub const CLUSTER_AUTOSCALER_APP: [(&str, &str); 2] =
    [("app", "cluster-autoscaler"), ("app.kubernetes.io/name", "cluster-autoscaler")];
/// client-go's default lease duration, for a Lease that states none.
const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long one observation may take before it counts as unreadable.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many NodePool names are named in a reason.
const NAMED_POOLS: usize = 5;

/// How to hand over from kOps's Karpenter; every blocking reason ends with it.
pub const HAND_OVER: &str = "Set `spec.karpenter.enabled: false` in the kOps Cluster spec, \
`kops update cluster --yes`, then `kubectl -n kube-system delete deployment karpenter` and delete \
the NodePools kOps made (`kubectl delete nodepools,ec2nodeclasses -l addon.kops.k8s.io/name=karpenter.sh`)";

/// A `karpenter-leader-election` Lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSeen {
    pub namespace: String,
    pub name: String,
    /// `spec.holderIdentity`; empty or absent once the holder released it.
    pub holder: Option<String>,
    /// `spec.renewTime`, since the Unix epoch.
    pub renewed: Option<Duration>,
    /// `spec.leaseDurationSeconds`.
    pub duration: Option<Duration>,
}

/// Which autoscaler a Deployment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Autoscaler {
    Karpenter,
    ClusterAutoscaler,
}

/// A Deployment of another autoscaler as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentSeen {
    pub namespace: String,
    pub name: String,
    pub runs: Autoscaler,
    /// `spec.replicas` (1 when absent, as Kubernetes defaults it).
    pub wanted: i32,
    /// `status.replicas`: pods that exist, ready or not.
    pub replicas: i32,
    /// `status.readyReplicas`.
    pub ready: i32,
}

/// A NodePool as read: its name and whether kOps made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePoolSeen {
    pub name: String,
    /// Labelled `addon.kops.k8s.io/name=karpenter.sh` (kOps 1.36+ makes one per `manager:
    /// Karpenter` InstanceGroup).
    pub by_kops: bool,
}

/// What could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// What was listed, e.g. "Leases in all namespaces".
    pub what: &'static str,
    /// The RBAC rule that allows it, for the reason's advice.
    pub rule: &'static str,
    pub error: String,
}

/// Everything the judgement looks at, as read from the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Leases named [`KARPENTER_LEASE`].
    pub leases: Vec<LeaseSeen>,
    /// Deployments of Karpenter or cluster-autoscaler.
    pub deployments: Vec<DeploymentSeen>,
    /// `karpenter.sh/v1` NodePools; none when the API group is not served.
    pub node_pools: Vec<NodePoolSeen>,
    pub unreadable: Vec<Unreadable>,
}

/// Whether capstan may act, and why not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// No other autoscaler may act: capstan launches, disrupts and drains.
    pub act: bool,
    /// Why capstan does not act, a sentence each naming the object and what to do; empty when
    /// `act`.
    pub reasons: Vec<String>,
    /// The objects behind `reasons` (`Lease kube-system/karpenter-leader-election`), which do
    /// not change from one look to the next as the sentences do ("renewed 3s ago").
    pub objects: Vec<String>,
    /// What does not stop capstan but deserves a look (a cluster-autoscaler, a Karpenter
    /// Deployment scaled to zero that kOps will scale up again).
    pub warnings: Vec<String>,
}

fn ago(now: Duration, then: Duration) -> String {
    match now.checked_sub(then) {
        Some(d) => format!("{}s ago", d.as_secs()),
        None => "just now".into(),
    }
}

/// Judges `observed` at `now` (time since the Unix epoch, on the daemon's clock).
pub fn judge(observed: &Observed, now: Duration) -> Verdict {
    let mut reasons = Vec::new();
    let mut objects = Vec::new();
    let mut warnings = Vec::new();
    for l in &observed.leases {
        let held = l.holder.as_deref().is_some_and(|h| !h.is_empty());
        let duration = l.duration.unwrap_or(DEFAULT_LEASE_DURATION);
        let Some(renewed) = l.renewed.filter(|r| held && *r + duration > now) else { continue };
        objects.push(format!("Lease {}/{}", l.namespace, l.name));
        reasons.push(format!(
            "Karpenter holds Lease {}/{} (renewed {}): capstan does not act while another autoscaler does. {HAND_OVER}",
            l.namespace,
            l.name,
            ago(now, renewed),
        ));
    }
    for d in &observed.deployments {
        let (ns, name) = (&d.namespace, &d.name);
        match d.runs {
            Autoscaler::Karpenter if d.replicas > 0 || d.ready > 0 || d.wanted > 0 => {
                objects.push(format!("Deployment {ns}/{name}"));
                reasons.push(format!(
                    "Karpenter runs as Deployment {ns}/{name} ({} of {} replicas ready): capstan does not act while another autoscaler may. {HAND_OVER}",
                    d.ready, d.wanted,
                ));
            }
            Autoscaler::Karpenter => warnings.push(format!(
                "Deployment {ns}/{name} runs Karpenter scaled to 0: kOps's addon manager scales it up again on its next update (a kOps or Kubernetes upgrade, an InstanceGroup edit); delete it: `kubectl -n {ns} delete deployment {name}`"
            )),
            Autoscaler::ClusterAutoscaler if d.ready > 0 => warnings.push(format!(
                "cluster-autoscaler runs as Deployment {ns}/{name} ({} ready): it scales InstanceGroups with autoscaling on and may act on the same pending pods; set `autoscale: false` on the `manager: Karpenter` InstanceGroups",
                d.ready,
            )),
            Autoscaler::ClusterAutoscaler => {}
        }
    }
    if !observed.node_pools.is_empty() {
        let mut names: Vec<&str> = observed.node_pools.iter().take(NAMED_POOLS).map(|p| p.name.as_str()).collect();
        let more = observed.node_pools.len().saturating_sub(NAMED_POOLS);
        if more > 0 {
            names.push("…");
        }
        objects.extend(observed.node_pools.iter().map(|p| format!("NodePool {}", p.name)));
        let by_kops = observed.node_pools.iter().filter(|p| p.by_kops).count();
        let delete = if by_kops == observed.node_pools.len() {
            "`kubectl delete nodepools,ec2nodeclasses -l addon.kops.k8s.io/name=karpenter.sh`".to_string()
        } else {
            "`kubectl delete nodepools --all` (capstan reads its NodePools from Git, not from the cluster)".to_string()
        };
        reasons.push(format!(
            "{} NodePool(s) exist in the cluster ({}; {by_kops} made by kOps): Karpenter provisions for them whenever it runs, and kOps's addon manager restarts it. Delete them: {delete}",
            observed.node_pools.len(),
            names.join(", "),
        ));
    }
    for u in &observed.unreadable {
        objects.push(format!("unreadable {}", u.what));
        reasons.push(format!(
            "capstan cannot list {} ({}): it does not act until it can tell that no other autoscaler does. Grant its ClusterRole {}",
            u.what, u.error, u.rule,
        ));
    }
    Verdict { act: reasons.is_empty(), reasons, objects, warnings }
}

fn has(labels: Option<&std::collections::BTreeMap<String, String>>, (k, v): (&str, &str)) -> bool {
    labels.and_then(|l| l.get(k)).is_some_and(|x| x == v)
}

/// The Lease as judged; `None` for a Lease of another name.
pub fn lease_seen(l: &Lease) -> Option<LeaseSeen> {
    let name = l.metadata.name.clone()?;
    if name != KARPENTER_LEASE {
        return None;
    }
    let spec = l.spec.clone().unwrap_or_default();
    let t = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime| {
        Duration::new(m.0.as_second().max(0) as u64, m.0.subsec_nanosecond().max(0) as u32)
    };
    Some(LeaseSeen {
        namespace: l.metadata.namespace.clone().unwrap_or_default(),
        name,
        holder: spec.holder_identity,
        renewed: spec.renew_time.as_ref().map(t),
        duration: spec.lease_duration_seconds.map(|s| Duration::from_secs(s.max(0) as u64)),
    })
}

/// The Deployment as judged; `None` when it runs neither Karpenter nor cluster-autoscaler.
pub fn deployment_seen(d: &Deployment) -> Option<DeploymentSeen> {
    let spec = d.spec.as_ref();
    let template = spec.and_then(|s| s.template.metadata.as_ref()).and_then(|m| m.labels.as_ref());
    let own = d.metadata.labels.as_ref();
    let runs = if has(template, KARPENTER_APP) {
        Autoscaler::Karpenter
    } else if CLUSTER_AUTOSCALER_APP.iter().any(|&l| has(template, l) || has(own, l)) {
        Autoscaler::ClusterAutoscaler
    } else {
        return None;
    };
    let status = d.status.clone().unwrap_or_default();
    Some(DeploymentSeen {
        namespace: d.metadata.namespace.clone().unwrap_or_default(),
        name: d.metadata.name.clone().unwrap_or_default(),
        runs,
        wanted: spec.and_then(|s| s.replicas).unwrap_or(1),
        replicas: status.replicas.unwrap_or(0),
        ready: status.ready_replicas.unwrap_or(0),
    })
}

/// A NodePool as judged.
pub fn node_pool_seen(o: &DynamicObject) -> NodePoolSeen {
    NodePoolSeen {
        name: o.metadata.name.clone().unwrap_or_default(),
        by_kops: has(o.metadata.labels.as_ref(), ("addon.kops.k8s.io/name", "karpenter.sh")),
    }
}

/// Every page of a list (500 objects a page).
async fn list_all<K>(api: &Api<K>, params: ListParams) -> Result<Vec<K>, kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut params = params.limit(500);
    loop {
        let page: ObjectList<K> = api.list(&params).await?;
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => params = params.continue_token(&c),
            None => return Ok(out),
        }
    }
}

fn unreadable(what: &'static str, rule: &'static str, error: String) -> Unreadable {
    Unreadable { what, rule, error }
}

/// What the API server said, without the status object around it.
fn said(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

impl KubeCluster {
    /// Reads what [`judge`] looks at: Leases named [`KARPENTER_LEASE`] in all namespaces, all
    /// Deployments, `karpenter.sh` NodePools of v1 or v1beta1 (a server without them answers
    /// 404: none). A
    /// list that fails or takes longer than [`OBSERVE_TIMEOUT`] is recorded as unreadable.
    pub async fn other_autoscalers(&self) -> Observed {
        let mut seen = Observed::default();
        let leases: Api<Lease> = Api::all(self.client.clone());
        let by_name = ListParams::default().fields(&format!("metadata.name={KARPENTER_LEASE}"));
        const LEASES: (&str, &str) =
            ("Leases in all namespaces", "`list` on `leases` in API group `coordination.k8s.io`");
        match tokio::time::timeout(OBSERVE_TIMEOUT, list_all(&leases, by_name)).await {
            Ok(Ok(items)) => seen.leases = items.iter().filter_map(lease_seen).collect(),
            Ok(Err(e)) => seen.unreadable.push(unreadable(LEASES.0, LEASES.1, said(e))),
            Err(_) => seen.unreadable.push(unreadable(LEASES.0, LEASES.1, "timed out".into())),
        }
        let deployments: Api<Deployment> = Api::all(self.client.clone());
        const DEPLOYMENTS: (&str, &str) =
            ("Deployments in all namespaces", "`list` on `deployments` in API group `apps`");
        // From the API server's watch cache (`resourceVersion=0`): one cheap answer, even with
        // many thousands of Deployments.
        let cached = async { deployments.list(&ListParams::default().match_any()).await.map(|l| l.items) };
        match tokio::time::timeout(OBSERVE_TIMEOUT, cached).await {
            Ok(Ok(items)) => seen.deployments = items.iter().filter_map(deployment_seen).collect(),
            Ok(Err(e)) => seen.unreadable.push(unreadable(DEPLOYMENTS.0, DEPLOYMENTS.1, said(e))),
            Err(_) => seen.unreadable.push(unreadable(DEPLOYMENTS.0, DEPLOYMENTS.1, "timed out".into())),
        }
        const POOLS: (&str, &str) = ("NodePools", "`list` on `nodepools` in API group `karpenter.sh`");
        // v1 (Karpenter 1.x), then v1beta1 (0.32–0.37) where v1 is not served.
        for version in ["v1", "v1beta1"] {
            let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("karpenter.sh", version, "NodePool"));
            let pools: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
            match tokio::time::timeout(OBSERVE_TIMEOUT, list_all(&pools, ListParams::default())).await {
                Ok(Ok(items)) => {
                    seen.node_pools = items.iter().map(node_pool_seen).collect();
                    break;
                }
                // This version is not served: the next, or no NodePools.
                Ok(Err(kube::Error::Api(s))) if s.code == 404 => {}
                Ok(Err(e)) => {
                    seen.unreadable.push(unreadable(POOLS.0, POOLS.1, said(e)));
                    break;
                }
                Err(_) => {
                    seen.unreadable.push(unreadable(POOLS.0, POOLS.1, "timed out".into()));
                    break;
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: Duration = Duration::from_secs(1_800_000_000);

    fn lease(holder: Option<&str>, renewed: Duration, seconds: Option<u64>) -> LeaseSeen {
        LeaseSeen {
            namespace: "kube-system".into(),
            name: KARPENTER_LEASE.into(),
            holder: holder.map(str::to_string),
            renewed: Some(renewed),
            duration: seconds.map(Duration::from_secs),
        }
    }

    fn karpenter(wanted: i32, replicas: i32, ready: i32) -> DeploymentSeen {
        DeploymentSeen {
            namespace: "kube-system".into(),
            name: "karpenter".into(),
            runs: Autoscaler::Karpenter,
            wanted,
            replicas,
            ready,
        }
    }

    fn with(f: impl FnOnce(&mut Observed)) -> Verdict {
        let mut o = Observed::default();
        f(&mut o);
        judge(&o, NOW)
    }

    #[test]
    fn nothing_seen_lets_capstan_act() {
        assert_eq!(judge(&Observed::default(), NOW), Verdict { act: true, ..Verdict::default() });
    }

    #[test]
    fn a_held_lease_blocks_until_it_expires() {
        let v = with(|o| o.leases.push(lease(Some("karpenter-7d9f"), NOW - Duration::from_secs(3), Some(15))));
        assert!(!v.act);
        assert_eq!(v.reasons.len(), 1, "{v:?}");
        assert!(
            v.reasons[0].starts_with("Karpenter holds Lease kube-system/karpenter-leader-election (renewed 3s ago)"),
            "{v:?}"
        );
        assert!(v.reasons[0].contains("spec.karpenter.enabled: false"), "{v:?}");
        // Expired: renewTime + leaseDurationSeconds is not after now.
        let v = with(|o| o.leases.push(lease(Some("karpenter-7d9f"), NOW - Duration::from_secs(15), Some(15))));
        assert!(v.act, "{v:?}");
        // Renewed ahead of our clock (skew) still counts.
        let v = with(|o| o.leases.push(lease(Some("k"), NOW + Duration::from_secs(2), Some(15))));
        assert!(!v.act && v.reasons[0].contains("renewed just now"), "{v:?}");
    }

    #[test]
    fn a_released_lease_or_one_never_renewed_does_not_block() {
        assert!(with(|o| o.leases.push(lease(Some(""), NOW, Some(15)))).act);
        assert!(with(|o| o.leases.push(lease(None, NOW, Some(15)))).act);
        assert!(
            with(|o| o.leases.push(LeaseSeen { renewed: None, ..lease(Some("k"), NOW, Some(15)) })).act,
            "no renewTime"
        );
        // No duration stated: client-go's 15 s.
        assert!(!with(|o| o.leases.push(lease(Some("k"), NOW - Duration::from_secs(14), None))).act);
        assert!(with(|o| o.leases.push(lease(Some("k"), NOW - Duration::from_secs(16), None))).act);
    }

    #[test]
    fn a_karpenter_deployment_with_replicas_blocks_and_one_at_zero_warns() {
        for (wanted, replicas, ready) in [(1, 1, 0), (1, 1, 1), (0, 1, 0), (0, 0, 1), (2, 0, 0)] {
            let v = with(|o| o.deployments.push(karpenter(wanted, replicas, ready)));
            assert!(!v.act, "{wanted} {replicas} {ready}: {v:?}");
            assert!(v.reasons[0].starts_with("Karpenter runs as Deployment kube-system/karpenter"), "{v:?}");
        }
        let v = with(|o| o.deployments.push(karpenter(0, 0, 0)));
        assert!(v.act, "{v:?}");
        assert_eq!(v.warnings.len(), 1);
        assert!(v.warnings[0].contains("kubectl -n kube-system delete deployment karpenter"), "{v:?}");
    }

    #[test]
    fn node_pools_block_and_the_advice_depends_on_who_made_them() {
        let v = with(|o| {
            o.node_pools = vec![
                NodePoolSeen { name: "nodes-karpenter".into(), by_kops: true },
                NodePoolSeen { name: "gpu".into(), by_kops: true },
            ]
        });
        assert!(!v.act);
        assert!(v.reasons[0].starts_with("2 NodePool(s) exist in the cluster (nodes-karpenter, gpu; 2 made by kOps)"));
        assert!(v.reasons[0].contains("-l addon.kops.k8s.io/name=karpenter.sh"), "{v:?}");
        let v =
            with(|o| o.node_pools = (0..7).map(|i| NodePoolSeen { name: format!("p{i}"), by_kops: false }).collect());
        assert!(v.reasons[0].contains("(p0, p1, p2, p3, p4, …; 0 made by kOps)"), "{v:?}");
        assert!(v.reasons[0].contains("kubectl delete nodepools --all"), "{v:?}");
    }

    #[test]
    fn a_cluster_autoscaler_only_warns() {
        let ca = DeploymentSeen {
            runs: Autoscaler::ClusterAutoscaler,
            name: "cluster-autoscaler".into(),
            ..karpenter(1, 1, 1)
        };
        let v = with(|o| o.deployments.push(ca.clone()));
        assert!(v.act && v.reasons.is_empty(), "{v:?}");
        assert!(v.warnings[0].contains("autoscale: false"), "{v:?}");
        assert!(with(|o| o.deployments.push(DeploymentSeen { ready: 0, ..ca })).warnings.is_empty());
    }

    #[test]
    fn what_cannot_be_read_blocks_and_names_the_permission() {
        let v = with(|o| {
            o.unreadable.push(unreadable(
                "NodePools",
                "`list` on `nodepools` in API group `karpenter.sh`",
                "forbidden".into(),
            ))
        });
        assert!(!v.act);
        assert!(v.reasons[0].contains("cannot list NodePools (forbidden)"), "{v:?}");
        assert!(v.reasons[0].contains("`list` on `nodepools` in API group `karpenter.sh`"), "{v:?}");
    }

    #[test]
    fn every_reason_is_given() {
        let v = with(|o| {
            o.leases.push(lease(Some("k"), NOW, Some(15)));
            o.deployments.push(karpenter(1, 1, 1));
            o.node_pools.push(NodePoolSeen { name: "a".into(), by_kops: true });
        });
        assert_eq!(v.reasons.len(), 3, "{v:?}");
        assert_eq!(
            v.objects,
            ["Lease kube-system/karpenter-leader-election", "Deployment kube-system/karpenter", "NodePool a"]
        );
    }

    #[test]
    fn objects_are_read_as_kops_leaves_them() {
        let l: Lease = serde_json::from_value(json!({
            "metadata": {"name": KARPENTER_LEASE, "namespace": "kube-system"},
            "spec": {"holderIdentity": "karpenter-5b7d_1f", "leaseDurationSeconds": 15,
                     "renewTime": "2027-01-15T08:00:00.000000Z"},
        }))
        .unwrap();
        let seen = lease_seen(&l).unwrap();
        assert_eq!(seen.holder.as_deref(), Some("karpenter-5b7d_1f"));
        assert_eq!(seen.duration, Some(Duration::from_secs(15)));
        assert_eq!(seen.renewed, Some(Duration::from_secs(1_800_000_000)));
        let other: Lease = serde_json::from_value(json!({"metadata": {"name": "capstan-e2e"}})).unwrap();
        assert_eq!(lease_seen(&other), None);

        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "karpenter", "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "karpenter"}},
                     "template": {"metadata": {"labels": {"app.kubernetes.io/name": "karpenter"}}}},
            "status": {"replicas": 1, "readyReplicas": 1},
        }))
        .unwrap();
        assert_eq!(deployment_seen(&d), Some(karpenter(1, 1, 1)));
        let ca: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "cluster-autoscaler", "namespace": "kube-system", "labels": {"app": "cluster-autoscaler"}},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"readyReplicas": 1},
        }))
        .unwrap();
        assert_eq!(deployment_seen(&ca).map(|d| d.runs), Some(Autoscaler::ClusterAutoscaler));
        let web: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {}, "template": {"metadata": {"labels": {"app": "web"}}}},
        }))
        .unwrap();
        assert_eq!(deployment_seen(&web), None);

        let pool: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            "metadata": {"name": "nodes", "labels": {"addon.kops.k8s.io/name": "karpenter.sh", "app.kubernetes.io/managed-by": "kops"}},
        }))
        .unwrap();
        assert_eq!(node_pool_seen(&pool), NodePoolSeen { name: "nodes".into(), by_kops: true });
    }
}
