//! The digest of a cluster's effective policy: what decides whether a revision changes
//! anything on that cluster. The Fleet's rollout controls (waves, soaks, approvals, pause) are
//! left out, so a commit that only approves or pauses starts no rollout.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::policy::EffectivePolicy;

pub fn of(p: &EffectivePolicy) -> String {
    let doc = json!({
        "nodePools": p.node_pools.iter().map(|l| &l.value).collect::<Vec<_>>(),
        "nodeClasses": p.node_classes.iter().map(|l| &l.value).collect::<Vec<_>>(),
        "instanceGroups": p.instance_groups.iter().map(|l| &l.value).collect::<Vec<_>>(),
        "clusterPolicy": p.cluster_policy.as_ref().map(|l| &l.value),
        "clusterSpec": p.cluster_spec.as_ref().map(|l| &l.value),
        "fleetEntry": p.fleet_entry,
    });
    let bytes = serde_json::to_vec(&doc).expect("policies serialise");
    hex::encode(&Sha256::digest(&bytes)[..12])
}
