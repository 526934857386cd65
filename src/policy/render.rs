//! The effective NodePools and EC2NodeClasses of a cluster as YAML, in a stable order:
//! NodePools then EC2NodeClasses, then NodeOverlays, each sorted by name; the fleet's
//! commitments this cluster uses are header comments with the cluster's share.

use super::effective::EffectivePolicy;

/// Renders the cluster's effective policy. Header comments say where the kOps Cluster spec
/// came from and what is still unresolved.
pub fn render(policy: &EffectivePolicy) -> Result<String, serde_yaml::Error> {
    let mut out = format!(
        "# capstan render: cluster {} (kOps cluster {})\n# kOps Cluster spec: {}\n",
        policy.cluster, policy.kops_name, policy.cluster_spec_source
    );
    for note in &policy.notes {
        out.push_str(&format!("# note: {note}\n"));
    }
    for line in super::commitment::render_lines(policy) {
        out.push_str(&format!("# commitment: {line}\n"));
    }
    for pool in &policy.node_pools {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&pool.value)?);
    }
    for class in &policy.node_classes {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&class.value)?);
    }
    for overlay in &policy.node_overlays {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&overlay.value)?);
    }
    Ok(out)
}
