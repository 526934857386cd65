//! The EC2NodeClass kubelet block: what kOps's populated InstanceGroup kubelet says about
//! `maxPods`, `systemReserved` and `kubeReserved`.
//!
//! kOps starts a node IG's kubelet from the Cluster's `spec.kubelet` and merges the IG's
//! `spec.kubelet` over it field by field: a value the IG sets wins, and the reservation maps
//! merge key by key (an IG key replaces the cluster's, other cluster keys stay). Other kubelet
//! settings (evictionHard and the rest) only reach the node through nodeup, not the
//! EC2NodeClass, as in kOps.

use std::collections::BTreeMap;

use super::{TranslateError, err};
use crate::policy::kops::{Cluster, InstanceGroup, KopsKubelet};
use crate::policy::nodeclass::KubeletConfiguration;
use crate::policy::quantity::{QUANTITY_HINT, Quantity};

/// `None` when maxPods and both reservations are unset after the merge.
pub fn kubelet(ig: &InstanceGroup, cluster: Option<&Cluster>) -> Result<Option<KubeletConfiguration>, TranslateError> {
    let from_cluster = cluster.and_then(|c| c.spec.kubelet.as_ref());
    let from_ig = ig.spec.kubelet.as_ref();
    let max_pods = from_ig.and_then(|k| k.max_pods).or(from_cluster.and_then(|k| k.max_pods));
    let system = reserved(from_cluster, from_ig, "systemReserved", |k| k.system_reserved.as_ref())?;
    let kube = reserved(from_cluster, from_ig, "kubeReserved", |k| k.kube_reserved.as_ref())?;
    if max_pods.is_none() && system.is_none() && kube.is_none() {
        return Ok(None);
    }
    Ok(Some(KubeletConfiguration {
        max_pods,
        system_reserved: system,
        kube_reserved: kube,
        ..KubeletConfiguration::default()
    }))
}

/// The cluster's map with the IG's keys over it; `None` when the result is empty. A bad
/// quantity is reported at the IG field, or named as the Cluster's when it came from there.
fn reserved(
    from_cluster: Option<&KopsKubelet>,
    from_ig: Option<&KopsKubelet>,
    name: &str,
    get: impl Fn(&KopsKubelet) -> Option<&BTreeMap<String, String>>,
) -> Result<Option<BTreeMap<String, Quantity>>, TranslateError> {
    let mut out = BTreeMap::new();
    for (k, v) in from_cluster.and_then(&get).into_iter().flatten() {
        let q = Quantity::parse(v).ok_or_else(|| {
            err("spec", format!("the Cluster's spec.kubelet.{name}.{k} is not a quantity: `{v}`"), QUANTITY_HINT)
        })?;
        out.insert(k.clone(), q);
    }
    for (k, v) in from_ig.and_then(&get).into_iter().flatten() {
        let q = Quantity::parse(v).ok_or_else(|| {
            err(&format!("spec.kubelet.{name}.{k}"), format!("invalid quantity `{v}`"), QUANTITY_HINT)
        })?;
        out.insert(k.clone(), q);
    }
    Ok((!out.is_empty()).then_some(out))
}
